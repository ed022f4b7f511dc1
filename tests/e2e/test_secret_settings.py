"""Secrets outside the TOML: env, file and systemd credentials reach the function, never the logs."""

from __future__ import annotations

import json
from typing import Any

import pytest

ENV_SECRET = "env-Secret-4f1c9a"
FILE_SECRET = "file-Secret-77b2e0"
CRED_SECRET = "cred-Secret-d03e5b"

LEAKY = """
async function onTrack(event, settings) {
  console.log("settings are " + JSON.stringify(settings))
  const res = await fetch(settings.url + "/hook?key=" + settings.apiKey, {
    method: "post",
    headers: {authorization: "Bearer " + settings.token},
    body: JSON.stringify({hook: settings.hook}),
  })
  return {status: res.status, echoed: settings.hook}
}
async function onIdentify(event, settings) {
  throw new Error("broken with " + settings.token + " and " + settings.hook)
}
"""


def test_env_file_and_credential_secrets_reach_the_function_and_never_the_logs(
    daemon: Any, sink: Any, tmp_path
) -> None:
    (tmp_path / "token.txt").write_text(FILE_SECRET + "\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "hook").write_text(CRED_SECRET)
    d = daemon(
        f"""
[functions.fn.settings]
url = "{sink.url}"
apiKey = {{ env = "SEGFUNCD_E2E_KEY" }}
token = {{ file = "token.txt" }}
hook = {{ credential = "hook" }}
""",
        plugins={"fn": LEAKY},
        env={"SEGFUNCD_E2E_KEY": ENV_SECRET, "CREDENTIALS_DIRECTORY": str(creds)},
    )
    assert d.post("/v1/track", {"userId": "u", "event": "E"}).status_code == 200
    assert d.post("/v1/identify", {"userId": "u"}).status_code == 200
    (got,) = sink.wait_for(1)
    assert got.path == f"/hook?key={ENV_SECRET}"
    assert got.headers["authorization"] == f"Bearer {FILE_SECRET}"
    assert got.json() == {"hook": CRED_SECRET}
    d.wait_until(lambda: d.function_status("fn").get("dead") == 1, what="identify dead-lettered")
    d.wait_until(lambda: "settings are" in d.ctl("logs", "-n", "200").stdout, what="the console line")

    listing = json.loads(d.ctl("deliveries", "--json", "-n", "10").stdout)["deliveries"]
    shown = [d.ctl("deliveries", "show", str(row["id"])).stdout for row in listing]
    shown += [d.ctl("deliveries", "show", "--json", str(row["id"])).stdout for row in listing]
    everything = "\n".join(
        [*shown, d.ctl("logs", "-n", "1000").stdout, d.ctl("logs", "--json", "-n", "1000").stdout, d.stderr()]
    )
    assert "broken with" in everything and "settings are" in everything
    for secret in (ENV_SECRET, FILE_SECRET, CRED_SECRET):
        assert secret not in everything
    assert "[redacted]" in everything


def test_a_missing_secret_stops_the_daemon_with_the_key_named(daemon: Any) -> None:
    with pytest.raises(AssertionError, match="exited with 2") as info:
        daemon('[functions.fn]\nsettings = { apiKey = { env = "SEGFUNCD_E2E_ABSENT" } }\n', plugins={"fn": LEAKY})
    assert "functions.fn.settings.apiKey: environment variable SEGFUNCD_E2E_ABSENT is not set" in str(info.value)
