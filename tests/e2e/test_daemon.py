"""The daemon end to end: real segfuncd processes, a real plugins directory, a real sink."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from conftest import BIN, DaemonProc, free_port, make_config, wait_until  # type: ignore[import-not-found]

FORWARD = """
async function onTrack(event, settings) {
  const res = await fetch(settings.sink + "/%s/" + event.event, {
    method: "post", headers: {"Content-Type": "application/json"}, body: JSON.stringify(event)})
  if (res.status >= 500) throw new RetryError("sink said " + res.status)
  return res.status
}
"""


def sink_config(sink_url: str, name: str = "fwd", extra: str = "") -> str:
    return f'[functions.{name}]\nsettings = {{ sink = "{sink_url}" }}\n{extra}'


def paths(sink) -> list[str]:
    return [r.path for r in sink.requests]


def test_dropped_plugin_goes_live_and_delivers(daemon, sink) -> None:
    d = daemon(sink_config(sink.url))
    d.write_plugin("fwd", FORWARD % "v1")
    d.wait_until(lambda: d.function_status("fwd").get("state") == "live", what="fwd live")
    assert d.post("/v1/track", {"userId": "u1", "event": "Signed Up"}).json() == {"success": True}
    got = sink.wait_for(1)
    assert got[0].path == "/v1/Signed%20Up"
    assert got[0].json()["userId"] == "u1"
    assert got[0].headers["user-agent"].startswith("segfuncd/")


def test_edit_swaps_version_and_syntax_error_keeps_the_old_one(daemon, sink) -> None:
    d = daemon(sink_config(sink.url), plugins={"fwd": FORWARD % "v1"})
    first = d.function_status("fwd")["version"]
    d.post("/v1/track", {"userId": "u", "event": "a"})
    sink.wait_for(1)

    d.write_plugin("fwd", FORWARD % "v2")
    d.wait_until(lambda: d.function_status("fwd").get("version") not in (None, first), what="new version")
    d.post("/v1/track", {"userId": "u", "event": "b"})
    sink.wait_for(2)
    assert paths(sink)[1] == "/v2/b"

    d.write_plugin("fwd", "async function onTrack(event) {\n  return (\n}\n")
    status = d.wait_until(lambda: (s := d.function_status("fwd")).get("error") and s, what="load error in status")
    assert "fwd.js:" in status["error"] and "SyntaxError" in status["error"]
    d.post("/v1/track", {"userId": "u", "event": "c"})
    sink.wait_for(3)
    assert paths(sink)[2] == "/v2/c"  # the old version keeps delivering


def test_removed_plugin_gets_no_new_events(daemon, sink) -> None:
    d = daemon(sink_config(sink.url), plugins={"fwd": FORWARD % "v1", "other": FORWARD % "o"})
    (d.plugins_dir / "fwd.js").unlink()
    d.wait_until(lambda: d.function_status("fwd").get("state") == "removed", what="fwd removed")
    d.post("/v1/track", {"userId": "u", "event": "after"})
    # "other" gets it (its settings have no sink: it fails), "fwd" never sees it.
    d.wait_until(
        lambda: d.function_status("other").get("attempts", 0) >= 1 or d.function_status("other").get("dead", 0) >= 1,
        what="other attempted",
    )
    assert d.function_status("fwd").get("delivered", 0) == 0
    assert not sink.requests


def test_plugin_that_never_loaded_keeps_events_until_fixed(daemon, sink) -> None:
    d = daemon(sink_config(sink.url), plugins={"fwd": "async function onTrack(e) { oops( }"})
    assert "SyntaxError" in d.function_status("fwd")["error"]
    assert d.post("/v1/track", {"userId": "u", "event": "kept"}).status_code == 200
    d.write_plugin("fwd", FORWARD % "fixed")
    got = sink.wait_for(1, timeout=15)
    assert got[0].path == "/fixed/kept"


def test_sighup_reloads_settings(daemon, sink) -> None:
    d = daemon(sink_config(sink.url + "/one"), plugins={"fwd": FORWARD % "x"})
    d.post("/v1/track", {"userId": "u", "event": "a"})
    sink.wait_for(1)
    d.config_path.write_text(d.config_path.read_text().replace(sink.url + "/one", sink.url + "/two"))
    d.signal(signal.SIGHUP)
    d.wait_until(lambda: "reloaded" in d.stderr(), what="reload logged")
    d.post("/v1/track", {"userId": "u", "event": "b"})
    sink.wait_for(2)
    assert paths(sink) == ["/one/x/a", "/two/x/b"]


def test_bad_config_on_reload_keeps_the_old_one(daemon, sink) -> None:
    d = daemon(sink_config(sink.url), plugins={"fwd": FORWARD % "x"})
    d.config_path.write_text(d.config_path.read_text().replace("[retry]\n", "[retry]\nmax_atempts = 3\n"))
    out = d.ctl("reload")
    assert "max_atempts" in out.stdout + out.stderr
    d.post("/v1/track", {"userId": "u", "event": "still"})
    assert sink.wait_for(1)[0].path == "/x/still"


def test_sigterm_drains_and_nothing_is_lost(daemon, sink) -> None:
    sink.behaviour.delay_s = 0.3
    d = daemon(sink_config(sink.url, extra="[runtime]\ndrain_timeout_s = 0.5\n"), plugins={"fwd": FORWARD % "d"})
    n = 30
    r = d.post("/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": f"e{i}"} for i in range(n)]})
    assert r.json()["success"] is True
    sink.wait_for(1)
    assert d.stop() == 0
    assert "daemon_stopped" in d.stderr()
    sink.behaviour.delay_s = 0
    d.start()
    sink.wait_for(n, timeout=30)
    delivered = {r.path for r in sink.requests}
    assert delivered == {f"/d/e{i}" for i in range(n)}
    print(f"duplicates after drain + restart: {len(sink.requests) - n}")


def test_killed_runner_is_replaced_and_its_events_delivered(daemon, sink) -> None:
    sink.behaviour.delay_s = 1.0
    d = daemon(sink_config(sink.url), plugins={"fwd": FORWARD % "k"})
    runners = children(d.pid)
    assert runners, "no runner processes"
    d.post("/v1/track", {"userId": "u", "event": "survivor"})
    time.sleep(0.5)  # the sink holds each request 1 s: the invocation is now in flight
    for pid in runners:
        os.kill(pid, signal.SIGKILL)
    sink.behaviour.delay_s = 0
    d.wait_until(
        lambda: (
            any(r.path == "/k/survivor" for r in sink.requests)
            and len([r for r in sink.requests if r.path == "/k/survivor"]) >= 1
        ),
        timeout=20,
        what="redelivery",
    )
    d.wait_until(lambda: d.status()["runners"]["restarts"] >= 1, what="runner restart counted")
    assert set(children(d.pid)) - set(runners), "the runner was not replaced"


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_config_typo_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "segfuncd.toml"
    cfg.write_text('[retry]\nmax_attempts = "ten"\n')
    proc = subprocess.run([str(BIN / "segfuncd"), "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f'segfuncd: {cfg}: retry.max_attempts: expected an integer, got "ten"'


def test_bad_filter_is_a_config_error_at_start(tmp_path: Path) -> None:
    cfg = tmp_path / "segfuncd.toml"
    cfg.write_text('[[functions.a.filters]]\nif = "type = "\naction = "drop"\n')
    proc = subprocess.run([str(BIN / "segfuncd"), "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "functions.a" in proc.stderr and "Traceback" not in proc.stderr


def test_second_daemon_on_the_same_state_refuses(daemon, tmp_path: Path) -> None:
    d = daemon()
    proc = subprocess.run(
        [str(BIN / "segfuncd"), "--config", str(d.config_path)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1
    assert "already running" in proc.stderr and "Traceback" not in proc.stderr
    assert d.status()  # the first one is unharmed


def test_ready_reaches_notify_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(30)
        d = DaemonProc(tmp_path, make_config(tmp_path), {}, env={"NOTIFY_SOCKET": path})
        try:
            d.start()
            assert server.recv(64) == b"READY=1"
            assert d.stop() == 0
            assert server.recv(64) == b"STOPPING=1"
        finally:
            d.kill()


def test_runs_on_built_in_defaults(tmp_path: Path) -> None:
    """No config at all: plugins in ./plugins, state in ./var, intake on 127.0.0.1:8088."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8088)) == 0:
            pytest.skip("something already listens on 127.0.0.1:8088")
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "hello.js").write_text(
        "async function onTrack(e) { console.log('hi ' + e.userId); return 1 }"
    )
    env = {k: v for k, v in os.environ.items() if k != "SEGFUNCD_CONFIG"}
    proc = subprocess.Popen([str(BIN / "segfuncd")], cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    try:
        sock = tmp_path / "var" / "admin.sock"
        wait_until(sock.exists, timeout=30, what="admin socket")
        ctl = [str(BIN / "segfuncctl")]
        status = wait_until(
            lambda: (
                (
                    p := subprocess.run(
                        [*ctl, "status", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True
                    )
                ).returncode
                == 0
                and json.loads(p.stdout)
            ),
            timeout=30,
            what="status",
        )
        assert (tmp_path / "var" / "segfuncd.db").exists()
        assert any(f["name"] == "hello" for f in status["functions"])
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


def test_metrics_on_the_optional_tcp_address(daemon, sink) -> None:
    port = free_port()
    d = daemon(
        sink_config(sink.url) + f'\n[admin]\nmetrics_listen = "127.0.0.1:{port}"\n', plugins={"fwd": FORWARD % "m"}
    )
    d.post("/v1/track", {"userId": "u", "event": "a"})
    sink.wait_for(1)
    text = d.wait_until(
        lambda: (
            (r := httpx.get(f"http://127.0.0.1:{port}/metrics")).status_code == 200
            and 'function="fwd"' in r.text
            and r.text
        ),
        what="metrics for fwd",
    )
    assert "# TYPE" in text
    assert httpx.get(f"http://127.0.0.1:{port}/status").status_code == 404  # only /metrics over TCP


def test_second_sigterm_exits_at_once_and_loses_nothing(daemon, sink) -> None:
    sink.behaviour.delay_s = 3.0
    d = daemon(sink_config(sink.url, extra="[runtime]\ndrain_timeout_s = 60.0\n"), plugins={"fwd": FORWARD % "s"})
    assert d.post("/v1/track", {"userId": "u", "event": "held"}).status_code == 200
    time.sleep(0.5)  # the invocation is now waiting on the slow sink
    d.signal(signal.SIGTERM)
    time.sleep(0.3)
    d.signal(signal.SIGTERM)
    assert d.proc is not None and d.proc.wait(15) == 0  # not the 60 s drain
    assert "daemon_stopping_now" in d.stderr()
    sink.behaviour.delay_s = 0
    d.start()
    d.wait_until(
        lambda: any(r.path == "/s/held" and r.finished for r in sink.requests),
        timeout=30,
        what="the held event delivered after restart",
    )


def test_address_in_use_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = tmp_path / "segfuncd.toml"
        cfg.write_text(f'[intake]\nlisten = "127.0.0.1:{port}"\n')
        proc = subprocess.run([str(BIN / "segfuncd"), "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"segfuncd: cannot listen on 127.0.0.1:{port}: Address already in use" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_state_directory_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    cfg = tmp_path / "segfuncd.toml"
    cfg.write_text('[storage]\npath = "file/state/q.db"\n')
    proc = subprocess.run([str(BIN / "segfuncd"), "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "segfuncd: cannot create" in proc.stderr and "Traceback" not in proc.stderr
