"""Plugin files (issue 11, items 8 and 9): no symlink out of plugins_dir, never half a file."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

SECRET = "root:$6$TOPSECRETHASH:19000:0:99999:7:::"


def test_a_symlink_out_of_plugins_dir_is_refused_without_showing_the_target(daemon: Any, tmp_path: Path) -> None:
    outside = tmp_path / "shadow"
    outside.write_text(SECRET + "\n")
    d = daemon(plugins={"ok": "async function onTrack(e) { return 1 }"})
    (d.plugins_dir / "evil.js").symlink_to(outside)
    (d.plugins_dir / "alias.js").symlink_to(d.plugins_dir / "ok.js")  # a link inside plugins_dir is fine
    d.ctl("reload")
    evil = d.wait_until(lambda: d.function_status("evil").get("error"), what="evil's load error")
    assert "is a symlink to a file outside" in evil and "refusing to load it" in evil
    d.wait_until(lambda: d.function_status("alias").get("state") == "live", what="alias live")
    shown = d.ctl("status").stdout + d.ctl("status", "--json").stdout + d.ctl("logs", "-n", "200").stdout + d.stderr()
    assert "TOPSECRET" not in shown and "root:$6" not in shown


def test_a_plugin_written_in_place_goes_live_only_once_complete(daemon: Any) -> None:
    v1 = "async function onTrack(e) { return 'v1' }\nasync function onIdentify(e) { return 'v1' }\n"
    d = daemon(plugins={"up": v1})
    d.wait_until(lambda: d.function_status("up").get("state") == "live", what="v1 live")
    first = d.function_status("up")["version"]
    # An upload in place: a complete onTrack first (it compiles!), onIdentify only at the end.
    path = d.plugins_dir / "up.js"
    with open(path, "w", encoding="utf-8") as f:
        f.write("async function onTrack(e) { return 'v2' }\n")
        f.flush()
        for i in range(12):  # keeps writing for a while: 12 x 80 ms, with an event in the middle
            time.sleep(0.08)
            f.write(f"// chunk {i}\n")
            f.flush()
            os.fsync(f.fileno())
            if i == 6:
                assert d.post("/v1/identify", {"userId": "u1", "traits": {"a": 1}}).status_code == 200
        f.write("async function onIdentify(e) { return 'v2' }\n")
    d.wait_until(lambda: d.function_status("up").get("delivered") == 1, what="the identify delivered")
    d.wait_until(lambda: d.function_status("up")["version"] != first, what="the complete v2 live")
    st = d.function_status("up")
    assert st["discarded"] == {} and st["delivered"] == 1, st  # never met the half-written file
    out = d.ctl("test", "up", "-", input='{"type": "identify", "userId": "u"}')
    assert out.returncode == 0 and '"v2"' in out.stdout, out.stdout
