"""Pieces shared by the end-to-end benchmarks (bench/e2e.py, bench/isolation.py).

A real `segfuncd --config X` process in a temp dir (free port, the given plugins and
config), the Node loopback sink (bench/e2e_sink.mjs: latency per run, deduplicated by
messageId), posters that send /v1/batch requests (optionally paced), and CPU accounting
from /proc. Every wait has a deadline (`deadline_s`, shared by a whole script's run).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Budget:
    """The end of a script's time budget; waits are cut to what is left of it."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def cap(self, timeout: float) -> float:
        return min(timeout, max(1.0, self.end - time.monotonic()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> dict[int, float]:
    """utime + stime in seconds of `pid` and each of its live descendants (Linux /proc)."""
    out: dict[int, float] = {}
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            out[p] = (int(fields[11]) + int(fields[12])) / CLK_TCK
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            pass
    return out


def cpu_delta(pid: int, before: dict[int, float]) -> tuple[float, float]:
    """CPU seconds since `before`: (the daemon itself, its runner processes)."""
    now = cpu_s(pid)
    own = now.get(pid, 0.0) - before.get(pid, 0.0)
    return own, sum(v - before.get(p, 0.0) for p, v in now.items() if p != pid)


class Sink:
    """bench/e2e_sink.mjs: POST /... records events; POST /delay/MS answers after MS ms."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.proc = subprocess.Popen(["node", str(HERE / "e2e_sink.mjs")], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = json.loads(self.proc.stdout.readline())["url"]
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def stats(self, run: str) -> dict[str, Any]:
        out: dict[str, Any] = self.http.get("/stats", params={"run": run}).json()
        return out

    def wait(self, run: str, n: int, *, timeout: float, alive: Any = None) -> dict[str, Any]:
        timeout = self.budget.cap(timeout)
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats(run)
            if s["distinct"] >= n:
                return s
            if alive is not None:
                alive()
            if time.monotonic() > deadline:
                raise SystemExit(f"timeout: the sink saw {s['distinct']} of {n} events of run {run!r} in {timeout}s")
            time.sleep(0.02)

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Daemon:
    """A real segfuncd in `tmp` with `plugins` ({name: source}) and `config` (TOML, no [intake])."""

    def __init__(self, tmp: Path, *, config: str, plugins: Mapping[str, str]) -> None:
        self.dir = tmp
        self.port = free_port()
        self.functions = tuple(plugins)
        (tmp / "plugins").mkdir()
        for name, source in plugins.items():
            (tmp / "plugins" / f"{name}.js").write_text(source)
        (tmp / "segfuncd.toml").write_text(
            f"""
[intake]
listen = "127.0.0.1:{self.port}"
[admin]
socket = "var/admin.sock"
{config}
"""
        )
        self.stderr = open(tmp / "segfuncd.stderr", "wb")
        exe = BIN / "segfuncd"
        argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "segfuncd.daemon"]
        self.proc = subprocess.Popen(
            [*argv, "--config", str(tmp / "segfuncd.toml")],
            cwd=tmp,
            stdout=self.stderr,
            stderr=self.stderr,
            env={k: v for k, v in os.environ.items() if k != "SEGFUNCD_CONFIG"},
        )
        self.admin = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(tmp / "var" / "admin.sock")), base_url="http://segfuncd", timeout=10
        )
        self.intake_url = f"http://127.0.0.1:{self.port}/v1/batch"

    def alive(self) -> None:
        if self.proc.poll() is not None:
            raise SystemExit(f"segfuncd exited with {self.proc.returncode}:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return (self.dir / "segfuncd.stderr").read_text(errors="replace")[-3000:]

    def wait_ready(self, timeout: float = 30) -> None:
        """Until every plugin has a live version."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.alive()
            try:
                live = {f["name"] for f in self.status()["functions"] if f.get("version")}
                if live >= set(self.functions):
                    return
            except (httpx.TransportError, OSError, ValueError):
                pass
            time.sleep(0.05)
        raise SystemExit(f"segfuncd not ready in {timeout}s:\n{self.log_tail()}")

    def status(self) -> dict[str, Any]:
        r = self.admin.get("/status")
        r.raise_for_status()
        out: dict[str, Any] = r.json()
        return out

    def function(self, name: str) -> dict[str, Any]:
        return next((f for f in self.status()["functions"] if f["name"] == name), {})

    def stop(self, timeout: float = 20) -> int:
        self.admin.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.stderr.close()
        return self.proc.returncode


def batch_body(run: str, poster: int, start: int, n: int, extra: Mapping[str, Any] | None = None) -> bytes:
    sent_ms = time.time() * 1000
    events = [
        {
            "type": "track",
            "event": "Bench",
            "userId": f"u-{i % 100}",
            "messageId": f"{run}-{poster}-{i}",
            "properties": {"run": run, "poster": poster, "n": i, "sent_ms": sent_ms, "plan": "pro", **(extra or {})},
        }
        for i in range(start, start + n)
    ]
    return json.dumps({"batch": events}, separators=(",", ":")).encode()


def post_all(
    url: str,
    run: str,
    events: int,
    *,
    posters: int,
    batch: int,
    rate: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> float:
    """Post `events` events in batches from `posters` threads; at `rate` events/s if given.

    Returns when every request was answered 200 (SystemExit otherwise); the start time."""
    per = [events // posters + (1 if p < events % posters else 0) for p in range(posters)]
    errors: list[str] = []
    t0 = time.monotonic()
    interval = batch * posters / rate if rate else 0.0  # seconds between one poster's batches

    def poster(p: int) -> None:
        with httpx.Client(timeout=30, headers={"content-type": "application/json"}) as c:
            k = 0
            for start in range(0, per[p], batch):
                if interval:
                    delay = t0 + (p / posters + k) * interval - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                k += 1
                try:
                    r = c.post(url, content=batch_body(run, p, start, min(batch, per[p] - start), extra))
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:200]}")
                    return

    threads = [threading.Thread(target=poster, args=(p,)) for p in range(posters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"intake refused a batch: {errors[0]}")
    return t0
