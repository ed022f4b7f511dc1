"""End-to-end: /v1/batch -> SQLite -> plugin (one fetch POST per event) -> loopback sink.

    .venv/bin/python bench/e2e.py [--events 20000] [--posters 4] [--workers 2]

A real `segfuncd --config X` process (temp dir, free port, runtime.workers = 2,
storage.synchronous = "normal": every event is committed before intake answers 200) runs
bench/e2e_plugin.js, which POSTs each event to bench/e2e_sink.mjs. Events are posted in
batches of 100 by a few concurrent posters (httpx, keep-alive); each event carries
`properties.sent_ms`, the wall clock just before its request left, and the sink computes
latency on arrival (deduplicated by messageId).

  throughput  N events posted as fast as intake takes them; delivered/s = N / (first post
              -> last event at the sink). Its latency is mostly the time spent queued
              behind the backlog (intake is much faster than delivery).
  paced       a fixed offered load (--paced-rate, default 50% of the measured throughput)
              for --paced-seconds: the intake-to-sink latency when not saturated.
  node        bench/node_harness.mjs runs the SAME plugin file in one Node process with its
              own fetch against the same sink (closed loop; one row per --node-concurrency,
              16 and 64 requests in flight by default); latency is the handler call (no
              queue, no durability).

Throughput runs --rounds times per runtime (same daemon, fresh Node process each time) and
the best round of each is shown: the box may be shared, and a round that lost the CPU to
something else says little. CPU s is the user+system time of the daemon and its runner processes (or of the Node
process) over the measured phase. Bounded: every wait has a deadline; loopback only.
Targets: segfuncd throughput >= 1.0x a single Node.js process (issue 5); issue 18: >= 1.2x the
better Node row, CPU per delivered event <= each Node row's, paced p99 <= 40 ms. The last
lines of the output say which are met.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import Budget, Daemon, Sink, cpu_delta, cpu_s, post_all

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PLUGIN = HERE / "e2e_plugin.js"
FUNCTION = PLUGIN.stem
BUDGET_S = 170.0  # the whole run, waits included, stays under 3 minutes
BUDGET = Budget(BUDGET_S)
# A key shaped like a real one. (It used to be "bench", which the redactor rightly found in
# every event named "Bench": each attempt record then took the re-validation path.)
API_KEY = "k3Yq9vTz8WbN2mLr5XcP7dHs"


@dataclass
class Row:
    case: str
    runtime: str
    events: int
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_s: float
    errors: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


# --- the cases --------------------------------------------------------------------------


def run_segfuncd(sink: Sink, args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="segfuncd-e2e-") as tmp:
        config = f"""
[storage]
path = "var/segfuncd.db"
synchronous = "normal"
[runtime]
plugins_dir = "plugins"
workers = {args.workers}
egress_allow = ["127.0.0.1"]  # the sink is on loopback, which fetch may not reach by default
[functions.{FUNCTION}]
settings = {{ url = "{sink.url}", apiKey = "{API_KEY}" }}
"""
        d = Daemon(Path(tmp), config=config, plugins={FUNCTION: PLUGIN.read_text()})
        try:
            d.wait_ready()
            tag = uuid.uuid4().hex[:6]
            # warm up: runners' contexts, connection pools, SQLite pages
            warm = f"warm-{tag}"
            post_all(d.intake_url, warm, args.warmup, posters=args.posters, batch=args.batch)
            sink.wait(warm, args.warmup, timeout=60, alive=d.alive)

            best: Row | None = None
            for rnd in range(args.rounds):
                run = f"tput-{tag}-{rnd}"
                spy = profile(d.proc.pid, args.profile) if args.profile and rnd == 0 else None
                cpu0 = cpu_s(d.proc.pid)
                wall0 = time.time() * 1000
                poster0 = time.process_time()
                post_all(d.intake_url, run, args.events, posters=args.posters, batch=args.batch)
                posted_s = time.time() * 1000 - wall0
                poster_cpu = time.process_time() - poster0
                s = sink.wait(run, args.events, timeout=args.timeout, alive=d.alive)
                own, runners = cpu_delta(d.proc.pid, cpu0)
                cpu = own + runners
                seconds = (s["last_ms"] - wall0) / 1000
                if spy is not None:
                    spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
                    spy.wait(30)
                row = Row(
                    "throughput (burst)",
                    f"segfuncd ({args.workers} runners)",
                    args.events,
                    seconds,
                    s["p50_ms"],
                    s["p99_ms"],
                    cpu,
                    errors_of(d),
                )
                best = row if best is None or row.rate > best.rate else best
                print(
                    f"  segfuncd round {rnd + 1}: {row.rate:.0f}/s; {args.events} events posted in "
                    f"{posted_s / 1000:.2f}s ({args.events / posted_s * 1000:.0f}/s intake), "
                    f"delivered in {seconds:.2f}s; "
                    f"CPU: daemon {own:.2f}s, runners {runners:.2f}s, posters {poster_cpu:.2f}s",
                    file=sys.stderr,
                )
            assert best is not None
            rows.append(best)

            rate = args.paced_rate or max(100.0, 0.5 * rows[0].rate)
            n = int(rate * args.paced_seconds) // args.batch * args.batch
            run = f"paced-{tag}"
            cpu0 = cpu_s(d.proc.pid)
            wall0 = time.time() * 1000
            post_all(d.intake_url, run, n, posters=args.posters, batch=args.batch, rate=rate)
            s = sink.wait(run, n, timeout=args.timeout, alive=d.alive)
            cpu = sum(cpu_delta(d.proc.pid, cpu0))
            rows.append(
                Row(
                    f"paced ({rate:.0f} ev/s offered)",
                    f"segfuncd ({args.workers} runners)",
                    n,
                    (s["last_ms"] - wall0) / 1000,
                    s["p50_ms"],
                    s["p99_ms"],
                    cpu,
                    errors_of(d),
                )
            )
        finally:
            code = d.stop()
            if code != 0:
                print(f"segfuncd exited with {code} after SIGTERM:\n{d.log_tail()}", file=sys.stderr)
    return rows


def profile(pid: int, out: str) -> subprocess.Popen[bytes]:
    """py-spy (PY_SPY or on PATH) sampling the daemon and its runners, collapsed stacks to `out`."""
    exe = os.environ.get("PY_SPY", "py-spy")
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--format",
            "raw",
            "--rate",
            "200",
            "--nonblocking",
            "-o",
            out,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def errors_of(d: Daemon) -> int:
    """Attempts that did not deliver, since the daemon started (GET /status)."""
    fn: dict[str, Any] = next((f for f in d.status()["functions"] if f["name"] == FUNCTION), {})
    return int(fn.get("attempts", 0)) - int(fn.get("delivered", 0))


def run_node(sink: Sink, args: argparse.Namespace, concurrency: int) -> Row:
    sys.path.insert(0, str(ROOT))
    from segfuncd.runner.sandbox import lodash_path

    cmd = [
        "node",
        str(HERE / "node_harness.mjs"),
        str(PLUGIN),
        "--events",
        str(args.events),
        "--concurrency",
        str(concurrency),
        "--sink",
        sink.url,
        "--lodash",
        str(lodash_path()),
    ]
    before = os.times()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=BUDGET.cap(args.timeout))
    except subprocess.TimeoutExpired:
        raise SystemExit("timeout: the node harness did not finish in time") from None
    after = os.times()
    if done.returncode != 0:
        raise SystemExit(f"node harness failed:\n{done.stderr}")
    out = json.loads(done.stdout)
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return Row(
        "throughput (burst)",
        f"node (1 process, c={concurrency})",
        out["events"],
        out["seconds"],
        out["p50_ms"],
        out["p99_ms"],
        cpu,
        out["errors"],
    )


def print_table(rows: list[Row]) -> None:
    print(
        f"{'case':<28} {'runtime':<24} {'events':>7} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'CPU s':>6} {'CPU us/ev':>9} {'errors':>6}"
    )
    for r in rows:
        per = r.cpu_s / r.events * 1e6 if r.events else 0.0
        print(
            f"{r.case:<28} {r.runtime:<24} {r.events:>7} {r.rate:>9.0f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} "
            f"{r.cpu_s:>6.2f} {per:>9.0f} {r.errors:>6}"
        )
    ours = next(r for r in rows if r.runtime.startswith("segfuncd") and r.case.startswith("throughput"))
    paced = next((r for r in rows if r.case.startswith("paced")), None)
    nodes = [r for r in rows if r.runtime.startswith("node") and r.events]
    if not nodes:
        return
    node = max(nodes, key=lambda r: r.rate)
    ratio = ours.rate / node.rate if node.rate else 0.0
    print(
        f"throughput: segfuncd / best node row = {ratio:.2f}x "
        f"(issue 5: >= 1.00x {'met' if ratio >= 1.0 else 'NOT met'}; issue 18: >= 1.20x {'met' if ratio >= 1.2 else 'NOT met'})"
    )
    per = ours.cpu_s / ours.events * 1e6 if ours.events else 0.0
    for n in nodes:
        theirs = n.cpu_s / n.events * 1e6
        if not per or not theirs:
            continue
        verdict = "met" if per <= theirs else "NOT met"
        print(
            f"CPU per event: segfuncd {per:.0f} us / {n.runtime} {theirs:.0f} us = {per / theirs:.2f}x (issue 18: <= 1.00x {verdict})"
        )
    if paced is not None:
        print(
            f"paced p99 intake->sink: {paced.p99_ms:.1f} ms (issue 18: <= 40 ms {'met' if paced.p99_ms <= 40 else 'NOT met'})"
        )
    print(
        "latency: segfuncd = poster send -> sink arrival (burst: incl. backlog; paced: unsaturated); "
        "node = handler call"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--posters", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds per runtime; the best is shown")
    parser.add_argument(
        "--node-concurrency", type=int, nargs="+", default=[16, 64], help="one Node row per value (requests in flight)"
    )
    parser.add_argument("--paced-rate", type=float, default=0.0, help="events/s; 0: half the measured throughput")
    parser.add_argument("--paced-seconds", type=float, default=4.0)
    parser.add_argument("--timeout", type=float, default=60.0, help="bound on each wait for the sink")
    parser.add_argument("--profile", metavar="OUT", help="py-spy the throughput phase into OUT (collapsed stacks)")
    parser.add_argument("--skip-node", action="store_true")
    args = parser.parse_args()
    t0 = time.monotonic()
    sink = Sink(BUDGET)
    try:
        rows = run_segfuncd(sink, args)
        if not args.skip_node:
            for concurrency in args.node_concurrency:
                runs = [run_node(sink, args, concurrency) for _ in range(args.rounds)]
                print(f"  node c={concurrency} rounds: " + ", ".join(f"{r.rate:.0f}/s" for r in runs), file=sys.stderr)
                rows.append(max(runs, key=lambda r: r.rate))
    finally:
        sink.close()
    print(f"  total {time.monotonic() - t0:.1f}s, {os.cpu_count()} CPUs", file=sys.stderr)
    if args.skip_node:
        rows.append(Row("throughput (burst)", "node (skipped)", 0, 0, 0, 0, 0, 0))
    print_table(rows)


if __name__ == "__main__":
    main()
