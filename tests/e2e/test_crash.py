"""kill -9 mid-delivery, restart: every accepted event reaches the sink at least once.

Real processes throughout: tests/e2e/crash_worker.py runs the store, the dispatcher and
the real runner pool (QuickJS runner processes fetching to the test's sink).
"""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

WORKER = Path(__file__).with_name("crash_worker.py")
ROOT = Path(__file__).resolve().parents[2]
EVENTS = 1500


def start(db: Path, sink_url: str, load: int, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(db), sink_url, str(load), *extra],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def expect_line(proc: subprocess.Popen[str], text: str) -> None:
    assert proc.stdout is not None
    for _ in range(100):  # bounded: a few lines of output at most
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"worker exited (rc={proc.wait()}) before printing {text!r}")
        if line.strip().startswith(text):
            return
    raise AssertionError(f"worker never printed {text!r}")


def delivered_ids(sink: Any) -> list[str]:
    return [parse_qs(urlparse(r.path).query)["mid"][0] for r in list(sink.requests) if r.path.startswith("/deliver")]


def test_kill_9_mid_delivery_then_restart_delivers_every_accepted_event(tmp_path: Path, sink: Any) -> None:
    db = tmp_path / "crash.db"
    sink.behaviour.delay_s = 0.002  # slow enough that the kill lands mid-delivery
    first = start(db, sink.url, EVENTS)
    try:
        expect_line(first, "accepted")
        sink.wait_for(EVENTS // 5, timeout=60)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its runner processes, no goodbye
        first.wait()
    at_kill = len(delivered_ids(sink))
    assert at_kill < EVENTS, "the kill came after everything was delivered; nothing was tested"

    second = start(db, sink.url, 0, "--exit-when-empty")
    try:
        expect_line(second, "empty")
        assert second.wait(timeout=60) == 0
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)

    ids = delivered_ids(sink)
    expected = {f"crash-{i}" for i in range(EVENTS)}
    assert set(ids) == expected, f"{len(expected - set(ids))} accepted events never reached the sink"
    counts = collections.Counter(ids)
    duplicates = sum(n - 1 for n in counts.values())
    print(
        f"\ncrash test: {EVENTS} events accepted, {at_kill} delivered before kill -9, "
        f"{len(ids)} sink requests in all, {duplicates} duplicates ({len(expected)} unique)"
    )
    conn = sqlite3.connect(str(db))
    states = dict(conn.execute("SELECT state, count(*) FROM deliveries GROUP BY state").fetchall())
    conn.close()
    assert states == {"delivered": EVENTS}
