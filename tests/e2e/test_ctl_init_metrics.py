"""`segfuncctl init` output runs as is; GET /metrics on the admin socket after deliveries."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from conftest import _exe, free_port  # type: ignore[import-not-found]


def test_init_then_the_daemon_runs_its_config_and_example_plugin(daemon: Any, tmp_path: Path) -> None:
    site = tmp_path / "site"
    out = subprocess.run([*_exe("segfuncctl", "segfuncd.ctl"), "init", str(site)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = (site / "segfuncd.toml").read_text().replace("127.0.0.1:8088", f"127.0.0.1:{free_port()}")
    d = daemon(text, plugins={"example": (site / "plugins" / "example.js").read_text()}, subdir="run")
    d.wait_until(lambda: d.function_status("example").get("state") == "live", what="example live")
    tested = d.ctl("test", "example")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "set functions.example.settings.endpoint" in tested.stdout
    ident = d.ctl("test", "example", "-", input='{"type": "identify", "userId": "u1"}')
    assert ident.returncode == 1 and "InvalidEventPayload: identify needs traits.email" in ident.stdout


def test_metrics_after_deliveries(daemon: Any) -> None:
    d = daemon(plugins={"m": "async function onTrack(e) { if (e.event === 'bad') throw new Error('no'); return 1 }"})
    d.wait_until(lambda: d.function_status("m").get("state") == "live", what="m live")
    for name in ("a", "b", "bad"):
        assert d.post("/v1/track", {"userId": "u", "event": name}).status_code == 200
    d.wait_until(
        lambda: d.function_status("m").get("dead") == 1 and d.function_status("m").get("delivered") == 2,
        what="3 outcomes",
    )
    r = d.admin_get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'segfuncd_invocations_total{function="m",outcome="delivered"} 2' in text
    assert 'segfuncd_invocations_total{function="m",outcome="failed"} 1' in text
    assert 'segfuncd_invocation_duration_seconds_count{function="m"} 3' in text
    assert 'segfuncd_deliveries{function="m",state="dead"} 1' in text
    assert re.search(r'segfuncd_intake_requests_total\{status="200"\} [1-9]', text)
    assert re.search(r"^segfuncd_runners_alive 1$", text, re.M)
    assert "segfuncd_runner_restarts_total 0" in text and 'segfuncd_function_live{function="m"} 1' in text
