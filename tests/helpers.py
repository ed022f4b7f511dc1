"""Helpers shared by the tests: builders, waiters and small real servers.

Each section is owned by the area it serves; keep helpers here, not in test_*.py files.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ---- built-ins (crypto, jsonwebtoken, AWS): Node fixtures ------------------------------------
FIXTURES = Path(__file__).parent / "fixtures"


def builtin_fixture(name: str) -> dict[str, Any]:
    """tests/fixtures/<name>.json, made by tests/fixtures/node/make_<name>.mjs under Node 20."""
    return json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))  # type: ignore[no-any-return]


def fixture_keys() -> dict[str, str]:
    """The PEM keys the fixtures use, under the names make_*.mjs gives them (K.rsa, K.ecPub...)."""
    keys = FIXTURES / "keys"
    names = {"rsa": "rsa", "rsaPub": "rsa.pub", "ec": "ec", "ecPub": "ec.pub", "ec384": "ec384"}
    names |= {"ec384Pub": "ec384.pub", "ed": "ed25519", "edPub": "ed25519.pub"}
    return {k: (keys / f"{v}.pem").read_text("ascii") for k, v in names.items()}


def fixture_case_plugin(fixture: dict[str, Any]) -> str:
    """A plugin whose onTrack runs case number `event.i` of a fixture, with K = settings.K,
    and returns its value through the fixture's NORM (errors become {error: [name, code]})."""
    bodies = ",\n".join(f"async (K) => ({c['code']})" for c in fixture["cases"])
    return (
        f"{fixture['norm']}\nconst CASES = [\n{bodies}\n];\n"
        "async function onTrack(event, settings) {\n"
        "  try { return norm(await CASES[event.i](settings.K)); } catch (e) { return norm(e); }\n}\n"
    )


# ---- AWS: a local moto server that checks SigV4 signatures ----------------------------------
@dataclass(frozen=True)
class MotoServer:
    """moto's server mode on a free loopback port, with IAM auth on: every request after the
    first three (which create the `fn` user, its allow-all policy and its access key) must be
    signed with that key, so a wrong secret is refused with SignatureDoesNotMatch."""

    endpoint: str
    access_key: str
    secret_key: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )


@contextmanager
def moto_server(*, auth: bool = True) -> Iterator[MotoServer]:
    """auth=False: moto checks no signature at all (its IAM mode cannot serve presigned URLs)."""
    import boto3

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "AWS_", "MOTO_"))}
    if auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        endpoint = None
        deadline = time.monotonic() + 30
        while endpoint is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"Running on (http://127\.0\.0\.1:\d+)", line)
            if m:
                endpoint = m.group(1)
        if endpoint is None:
            raise RuntimeError("moto server did not start")
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining its log
        if not auth:
            yield MotoServer(endpoint, "AKIDTESTING", "testing-secret")
            return
        iam = boto3.client(
            "iam",
            region_name="us-east-1",
            endpoint_url=endpoint,
            aws_access_key_id="boot",
            aws_secret_access_key="boot",
        )
        iam.create_user(UserName="fn")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="fn", PolicyName="all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="fn")["AccessKey"]
        yield MotoServer(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
