"""Egress policy through the real daemon, in a network namespace that has only loopback.

Runs tests/e2e/netns_egress.py under `unshare --net` (root, or unprivileged user
namespaces), after bringing `lo` up with stand-in addresses: 10.99.0.1 (an internal
service, private: allowed), 169.254.169.254, 100.100.100.200 and fd00:ec2::254 (the
metadata services: denied). Skipped, saying why, where namespaces are not permitted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = " && ".join(
    [
        "ip link set lo up",
        "ip addr add 10.99.0.1/32 dev lo",
        "ip addr add 169.254.169.254/32 dev lo",
        "ip addr add 100.100.100.200/32 dev lo",
        "ip -6 addr add fd00:ec2::254/128 dev lo",
    ]
)


def _namespace_problem() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare(1) and ip(8)"
    probe = subprocess.run(["unshare", "--net", "sh", "-c", "ip link set lo up"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"network namespaces are not permitted here: {probe.stderr.strip()}"
    return None


def test_egress_cases_in_a_loopback_only_network_namespace() -> None:
    problem = _namespace_problem()
    if problem:
        pytest.skip(problem)
    inner = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    short = tempfile.mkdtemp(prefix="sfe-")  # AF_UNIX paths are short: not under tmp_path
    inner += ["--basetemp", short, str(ROOT / "tests/e2e/netns_egress.py")]
    cmd = ["unshare", "--net", "sh", "-c", f'{SETUP} && exec "$@"', "netns", *inner]
    env = {**os.environ, "SEGFUNCD_IN_NETNS": "1"}
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        env.pop(var, None)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert out.returncode == 0, out.stdout[-8000:] + out.stderr[-4000:]
    assert " passed" in out.stdout and "skipped" not in out.stdout, out.stdout[-2000:]
