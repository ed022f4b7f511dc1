"""The admin socket: mode 0600, the unreachable-daemon message, and secret redaction."""

from __future__ import annotations

import os
import stat
from typing import Any

LEAKY = """
async function onTrack(event, settings) {
  console.log(`key=${settings.apiKey} token=${settings.token} channel=${settings.channel}`)
  console.log(JSON.stringify(settings))
  return { ok: true }
}
"""
CONFIG = """
[functions.leaky]
settings = { apiKey = "sk-live-0123456789", token = "tok-abcdefghij", channel = "ops-room" }
secret_settings = ["token"]
"""


def test_admin_socket_is_mode_0600(daemon: Any) -> None:
    d = daemon()
    assert stat.S_ISSOCK(os.stat(d.admin_socket).st_mode)
    assert stat.S_IMODE(os.stat(d.admin_socket).st_mode) == 0o600


def test_unreachable_daemon_is_one_line_naming_the_socket(daemon: Any) -> None:
    d = daemon()
    assert d.ctl("status").returncode == 0
    assert d.stop() == 0
    out = d.ctl("status")
    assert out.returncode == 3 and out.stdout == ""
    assert out.stderr.startswith(f"segfuncctl: cannot reach the daemon at {d.admin_socket}: ")
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_secrets_printed_by_a_plugin_are_redacted(daemon: Any) -> None:
    d = daemon(CONFIG, plugins={"leaky": LEAKY})
    d.wait_until(lambda: d.function_status("leaky").get("state") == "live", what="leaky live")
    assert d.post("/v1/track", {"userId": "u1", "event": "E"}).status_code == 200
    d.wait_until(lambda: d.function_status("leaky").get("delivered") == 1, what="the delivery")

    logs = d.ctl("logs", "-n", "100", "leaky")
    assert logs.returncode == 0
    assert "key=[redacted] token=[redacted] channel=ops-room" in logs.stdout
    tested = d.ctl("test", "leaky")
    assert "key=[redacted] token=[redacted] channel=ops-room" in tested.stdout
    for text in (logs.stdout, tested.stdout, d.ctl("logs", "--json", "-n", "1000").stdout):
        assert "sk-live-0123456789" not in text and "tok-abcdefghij" not in text

    # Not only hidden on the way out: never written to the log store either.
    d.stop()
    stored = b"".join(p.read_bytes() for p in d.admin_socket.parent.glob("segfuncd.db*"))
    assert b"sk-live-0123456789" not in stored and b"tok-abcdefghij" not in stored
