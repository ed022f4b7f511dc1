"""Stopping drains however the signal is sent (issue 13): to the daemon, to its whole process
group (Ctrl-C in a terminal, `kill -- -PGID`), or to the runners themselves (systemd's
control-group kill); the runners never outlive the daemon.
"""

from __future__ import annotations

import os
import signal

import pytest
from conftest import wait_until  # type: ignore[import-not-found]
from helpers import child_pids, pid_alive

SLOW_FORWARD = """
async function onTrack(event, settings) {
  const res = await fetch(settings.sink + "/g/" + event.event, {method: "post", body: JSON.stringify(event)})
  return res.status
}
"""


def config(sink_url: str) -> str:
    return f'[functions.fwd]\nsettings = {{ sink = "{sink_url}" }}\n[runtime]\ndrain_timeout_s = 20.0\n'


def assert_each_event_once_and_no_crash(d, sink, events: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Exactly one request per event reached the sink, and the store recorded one clean attempt each."""
    assert sorted(r.path for r in sink.requests) == sorted(f"/g/{e}" for e in events)
    d.start()  # a fresh daemon on the same state: what did the stopped one record?
    fn = d.function_status("fwd")
    assert fn["delivered"] == len(events), fn
    assert fn["attempts"] == len(events), fn  # no RunnerCrashed retry used an attempt
    assert fn["retrying"] == 0 and fn["dead"] == 0, fn
    assert fn["last_error"] is None, fn


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_to_the_process_group_mid_fetch_lets_the_function_finish(daemon, sink, sig: signal.Signals) -> None:
    sink.behaviour.delay_s = 1.0
    d = daemon(config(sink.url), plugins={"fwd": SLOW_FORWARD}, process_group=True)
    runners = child_pids(d.pid)
    assert runners, "no runner processes"
    events = ["a", "b", "c"]
    r = d.post("/v1/batch", {"batch": [{"type": "track", "userId": "u", "event": e} for e in events]})
    assert r.json()["success"] is True
    sink.wait_arrived(len(events))  # every fetch is now in flight, held by the sink
    os.killpg(d.pid, sig)  # as Ctrl-C or `kill -- -PGID` does: the daemon and everything in its group
    assert d.proc is not None and d.proc.wait(30) == 0
    err = d.stderr()
    assert "daemon_stopped" in err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    wait_until(lambda: not any(pid_alive(p) for p in runners), timeout=5, what="runners gone with the daemon")
    sink.behaviour.delay_s = 0
    assert_each_event_once_and_no_crash(d, sink, events)


def test_runners_ignore_stop_signals_sent_to_them(daemon, sink) -> None:
    """systemd's default KillMode=control-group signals every process: the daemon decides, not them."""
    sink.behaviour.delay_s = 1.0
    d = daemon(config(sink.url), plugins={"fwd": SLOW_FORWARD})
    runners = child_pids(d.pid)
    d.post("/v1/track", {"userId": "u", "event": "one"})
    sink.wait_arrived(1)
    for pid in runners:
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGINT)
    sink.wait_for(1)
    d.wait_until(lambda: d.function_status("fwd").get("delivered") == 1, what="delivered once")
    assert all(pid_alive(p) for p in runners)
    assert d.status()["runners"]["restarts"] == 0
    assert d.stop() == 0
    sink.behaviour.delay_s = 0
    assert_each_event_once_and_no_crash(d, sink, ["one"])


def test_runners_exit_when_the_daemon_is_killed(daemon) -> None:
    d = daemon()
    runners = child_pids(d.pid)
    assert runners
    d.kill()
    wait_until(lambda: not any(pid_alive(p) for p in runners), timeout=5, what="runners exited after the daemon")


def test_second_sigint_to_the_group_exits_at_once_with_one_line(daemon, sink) -> None:
    sink.behaviour.delay_s = 5.0
    d = daemon(config(sink.url).replace("20.0", "60.0"), plugins={"fwd": SLOW_FORWARD}, process_group=True)
    d.post("/v1/track", {"userId": "u", "event": "held"})
    sink.wait_arrived(1)
    os.killpg(d.pid, signal.SIGINT)
    d.wait_until(lambda: "daemon_stopping" in d.stderr(), what="draining")
    os.killpg(d.pid, signal.SIGINT)
    assert d.proc is not None and d.proc.wait(15) == 0  # not the 60 s drain
    err = d.stderr()
    assert err.count("daemon_stopping_now") == 1
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_idle_daemon_exits_promptly(daemon) -> None:
    """No task holds the stop (the plugin watcher used to keep an idle daemon ~5 s)."""
    d = daemon()
    d.signal(signal.SIGTERM)
    assert d.proc is not None and d.proc.wait(3) == 0
