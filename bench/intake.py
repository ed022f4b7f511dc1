"""Intake throughput: /v1/batch (100 events per request) and /v1/track, beside a Node baseline.

    .venv/bin/python bench/intake.py [--seconds 5] [--connections 32] [--rounds 4]

Both servers get the same load from bench/intake_load.mjs (Node, keep-alive, closed loop,
a fresh messageId per event so nothing is a duplicate): segfuncd's intake in its own
process with the real SQLite store (synchronous=normal, one function routed, so every
event also gets its delivery row), and bench/intake_baseline.mjs, a minimal Node server
that parses the JSON and answers 200. After the runs, the rows in the SQLite file are
counted: events/s is what was committed, not what was answered.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

EVENT = (
    '{"type":"track","event":"Order Completed","userId":"user-42","messageId":"__MID__",'
    '"properties":{"revenue":42.5,"currency":"EUR","products":[{"sku":"A-1","qty":2}]},'
    '"context":{"library":{"name":"analytics-node","version":"1.0"},"ip":"10.0.0.1"},'
    '"timestamp":"2024-05-01T12:00:00.000Z"}'
)
BATCH = '{"sentAt":"2024-05-01T12:00:01.000Z","batch":[' + ",".join([EVENT] * 100) + "]}"


def serve(db: str) -> None:
    """Child mode: run intake + store until stdin closes; print the port once listening."""
    sys.path.insert(0, str(ROOT))
    import structlog
    import trio

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout carries the port
    from segfuncd.intake import Intake, serve_intake
    from segfuncd.store import open_store

    async def main() -> None:
        async with open_store(Path(db)) as store:
            intake = Intake(store, routable=lambda: ("bench",), write_keys=())
            async with trio.open_nursery() as nursery:
                server = await nursery.start(
                    lambda task_status: serve_intake(intake, listen="127.0.0.1:0", task_status=task_status)
                )
                print(server.addresses[0][1], flush=True)
                await trio.to_thread.run_sync(sys.stdin.read)  # the parent closes stdin to stop us
                nursery.cancel_scope.cancel()

    trio.run(main)


def load(url: str, template: str, connections: int, seconds: float) -> dict:
    opts = {"url": url, "connections": connections, "seconds": seconds, "template": template}
    out = subprocess.run(
        ["node", str(HERE / "intake_load.mjs"), json.dumps(opts)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def start(cmd: list[str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise SystemExit(f"server did not start: {cmd}")
    return proc, int(line)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdin:
        proc.stdin.close()
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--serve", metavar="DB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "bench.db")
        node, node_port = start(["node", str(HERE / "intake_baseline.mjs")])
        ours, our_port = start([sys.executable, str(Path(__file__).resolve()), "--serve", db])
        rows = []
        load_before = os.getloadavg()[0]
        try:
            for name, path, template, per in (
                ("/v1/batch x100", "/v1/batch", BATCH, 100),
                ("/v1/track", "/v1/track", EVENT, 1),
            ):
                # Interleaved rounds, best of each: the machine may be shared, and a
                # neighbour's burst should not decide either number.
                results, bases = [], []
                for _ in range(args.rounds):
                    bases.append(load(f"http://127.0.0.1:{node_port}{path}", template, args.connections, args.seconds))
                    results.append(load(f"http://127.0.0.1:{our_port}{path}", template, args.connections, args.seconds))
                best = lambda runs: max(runs, key=lambda r: r["ok"] / r["seconds"])  # noqa: E731
                rows.append((name, per, best(results), best(bases), results))
        finally:
            stop(ours)
            stop(node)
        with sqlite3.connect(db) as conn:
            (committed,) = conn.execute("SELECT count(*) FROM events").fetchone()
    answered = sum(sum(r["ok"] for r in row[4]) * row[1] for row in rows)
    print(
        f"intake benchmark: {args.connections} keep-alive connections, best of {args.rounds} x {args.seconds:g} s, "
        f"load from Node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}, "
        f"{os.cpu_count()} CPUs, load average before {load_before:.2f}"
    )
    print(
        f"{'endpoint':<16}{'metric':<12}{'segfuncd':>12}{'node baseline':>16}{'ratio':>8}{'non-200':>10}   all rounds"
    )
    for name, per, res, base, runs in rows:
        metric = "events/s" if per > 1 else "requests/s"
        ours_rate = res["ok"] * per / res["seconds"]
        base_rate = base["ok"] * per / base["seconds"]
        every = "/".join(f"{r['ok'] * per / r['seconds']:,.0f}" for r in runs)
        failed = sum(r["failed"] for r in runs)
        print(
            f"{name:<16}{metric:<12}{ours_rate:>12,.0f}{base_rate:>16,.0f}{ours_rate / base_rate:>8.2f}{failed:>10}   {every}"
        )
    print(f"events committed to SQLite (incl. warm-ups): {committed:,}; answered 200 in the timed runs: {answered:,}")
    if committed < answered:
        raise SystemExit("fewer events in SQLite than acknowledged: a bug")


if __name__ == "__main__":
    main()
