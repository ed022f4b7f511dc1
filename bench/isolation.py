"""Fair share (issue 10): a healthy function's delivery alone, then beside each attacker.

    .venv/bin/python bench/isolation.py [--rate 50] [--seconds 12] [--workers 2]

One real segfuncd (bench/harness.py) runs four functions; every event goes to each:
  healthy  bench/e2e_plugin.js: one POST per event to the Node sink (bench/e2e_sink.mjs)
  hung     one fetch to /delay/600000 of another sink: never resolves before timeout_ms
  storm    a fetch storm: ~1,000 concurrent fetches in all (at --rate) to /delay/2000 there
  burner   a busy loop: runs until cpu_ms stops it
An attacker acts only on the events of its own phase (`properties.attack`) and returns at
once on the others, so the first phase measures the healthy function alone. The attackers'
destination is a sink process of its own, as another service would be: a thousand requests
held open by the healthy function's own destination would measure that process, not segfuncd.

Per phase, --rate events/s are offered for --seconds. For the healthy function: delivered
events/s (distinct events at the sink / first post -> last arrival), p50/p99 latency from
just before the /v1/batch request left to arrival at the sink, duplicates at the sink
(received - distinct), retried (attempts beyond one per event, from GET /status) and lost
(not at the sink within --wait). Retries are scheduled after the run (base_delay_s 600),
so a healthy event that failed shows as lost, never as a late success.
Target: healthy p99 within 1.5x of its solo figure; no healthy event lost or retried.
Bounded: every wait has a deadline and the whole run stays under 3 minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness import Budget, Daemon, Sink, post_all

HERE = Path(__file__).resolve().parent
BUDGET = Budget(170.0)
SLOW_MS = 2000  # the storm's slow destination
STORM_IN_FLIGHT = 1000  # fetches the storm keeps open at --rate (it asks; the runners ration)
TIMEOUT_MS = 5000
CPU_MS = 500

HUNG_JS = """
async function onTrack(event, settings) {
  if (event.properties.attack !== "hung") return "idle"
  await fetch(settings.url + "/delay/600000", { method: "POST", body: "x" })
}
"""
STORM_JS = """
async function onTrack(event, settings) {
  if (event.properties.attack !== "storm") return "idle"
  const calls = []
  for (let i = 0; i < settings.fanout; i++) calls.push(fetch(settings.url + settings.path, { method: "POST", body: "x" }))
  await Promise.all(calls)
}
"""
BURNER_JS = """
async function onTrack(event, settings) {
  if (event.properties.attack !== "burner") return "idle"
  let x = 0
  for (;;) x++
}
"""
PHASES = ("alone", "hung", "storm", "burner")


@dataclass
class Row:
    phase: str
    offered: float
    events: int
    delivered_per_s: float
    p50_ms: float
    p99_ms: float
    duplicates: int
    retried: int
    lost: int


def run_phase(d: Daemon, sink: Sink, phase: str, tag: str, args: argparse.Namespace) -> Row:
    run = f"{phase}-{tag}"
    n = int(args.rate * args.seconds) // args.batch * args.batch
    before = d.function("healthy")
    wall0 = time.time() * 1000
    post_all(d.intake_url, run, n, posters=args.posters, batch=args.batch, rate=args.rate, extra={"attack": phase})
    try:
        s = sink.wait(run, n, timeout=args.wait, alive=d.alive)
    except SystemExit as exc:
        print(f"  {phase}: {exc}", file=sys.stderr)
        s = sink.stats(run)
    deadline = time.monotonic() + BUDGET.cap(10)
    after = d.function("healthy")
    while after.get("attempts", 0) - before.get("attempts", 0) < s["distinct"] and time.monotonic() < deadline:
        time.sleep(0.05)  # the completions are committed just after the sink answered
        after = d.function("healthy")
    attempts = after.get("attempts", 0) - before.get("attempts", 0)
    if after.get("last_error") != before.get("last_error"):
        print(f"  {phase}: the healthy function's last error: {after.get('last_error')}", file=sys.stderr)
    seconds = (s.get("last_ms", wall0) - wall0) / 1000
    return Row(
        phase=phase,
        offered=args.rate,
        events=n,
        delivered_per_s=s["distinct"] / seconds if seconds > 0 else 0.0,
        p50_ms=s.get("p50_ms", 0.0),
        p99_ms=s.get("p99_ms", 0.0),
        duplicates=s["received"] - s["distinct"],
        retried=max(0, attempts - s["distinct"]),
        lost=n - s["distinct"],
    )


def print_table(rows: list[Row]) -> None:
    solo = rows[0]
    print(
        f"{'healthy function beside':<24} {'offered/s':>9} {'events':>7} {'delivered/s':>11} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'p99/solo':>8} {'dups':>5} {'retried':>7} {'lost':>5}"
    )
    for r in rows:
        ratio = r.p99_ms / solo.p99_ms if solo.p99_ms else 0.0
        name = "nothing (alone)" if r.phase == "alone" else f"a {r.phase} function"
        print(
            f"{name:<24} {r.offered:>9.0f} {r.events:>7} {r.delivered_per_s:>11.1f} {r.p50_ms:>8.1f} "
            f"{r.p99_ms:>8.1f} {ratio:>8.2f} {r.duplicates:>5} {r.retried:>7} {r.lost:>5}"
        )
    for r in rows[1:]:
        ok_latency = solo.p99_ms > 0 and r.p99_ms <= 1.5 * solo.p99_ms
        ok_clean = r.lost == 0 and r.retried == 0 and r.duplicates == 0
        verdict = "met" if ok_latency and ok_clean else "NOT met"
        print(f"beside {r.phase}: p99 within 1.5x of alone and nothing lost, retried or duplicated: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0, help="events/s offered per phase")
    parser.add_argument(
        "--seconds",
        type=float,
        default=12.0,
        help="length of each phase (600 events at 50/s: a p99 steadier than 400 gave)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=10, help="events per /v1/batch request")
    parser.add_argument("--posters", type=int, default=2)
    parser.add_argument("--wait", type=float, default=20.0, help="bound on each wait for the sink")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated; 'alone' always runs first")
    args = parser.parse_args()
    phases = ["alone"] + [p for p in args.phases.split(",") if p in PHASES and p != "alone"]
    t0 = time.monotonic()
    sink = Sink(BUDGET)
    theirs = Sink(BUDGET)  # the attackers' destination
    rows: list[Row] = []
    fanout = max(1, round(STORM_IN_FLIGHT / (args.rate * SLOW_MS / 1000)))
    config = f"""
[storage]
path = "var/segfuncd.db"
[runtime]
plugins_dir = "plugins"
workers = {args.workers}
timeout_ms = {TIMEOUT_MS}
cpu_ms = {CPU_MS}
egress_allow = ["127.0.0.1"]  # the sink is on loopback, which fetch may not reach by default
[retry]
max_attempts = 2
base_delay_s = 600.0
[functions.healthy]
settings = {{ url = "{sink.url}", apiKey = "bench" }}
[functions.hung]
settings = {{ url = "{theirs.url}" }}
[functions.storm]
settings = {{ url = "{theirs.url}", path = "/delay/{SLOW_MS}", fanout = {fanout} }}
"""
    plugins = {
        "healthy": (HERE / "e2e_plugin.js").read_text(),
        "hung": HUNG_JS,
        "storm": STORM_JS,
        "burner": BURNER_JS,
    }
    try:
        with tempfile.TemporaryDirectory(prefix="segfuncd-isolation-") as tmp:
            d = Daemon(Path(tmp), config=config, plugins=plugins)
            try:
                d.wait_ready()
                tag = uuid.uuid4().hex[:6]
                warm = f"warm-{tag}"
                post_all(d.intake_url, warm, 200, posters=args.posters, batch=args.batch, extra={"attack": "none"})
                sink.wait(warm, 200, timeout=30, alive=d.alive)
                settle = time.monotonic() + BUDGET.cap(10)
                while d.function("healthy").get("attempts", 0) < 200 and time.monotonic() < settle:
                    time.sleep(0.05)  # the warm-up's attempts must not count in the first phase
                for phase in phases:
                    rows.append(run_phase(d, sink, phase, tag, args))
                    r = rows[-1]
                    print(
                        f"  {phase}: {r.delivered_per_s:.1f}/s p50 {r.p50_ms:.0f} ms p99 {r.p99_ms:.0f} ms "
                        f"({time.monotonic() - t0:.0f}s)",
                        file=sys.stderr,
                    )
                    if phase != "alone":
                        time.sleep(min(TIMEOUT_MS / 1000 + 1, max(0.0, BUDGET.end - time.monotonic() - 30)))
            finally:
                code = d.stop()
                if code != 0:
                    print(f"segfuncd exited with {code} after SIGTERM:\n{d.log_tail()}", file=sys.stderr)
    finally:
        sink.close()
        theirs.close()
    print(f"  total {time.monotonic() - t0:.1f}s, {os.cpu_count()} CPUs, workers = {args.workers}", file=sys.stderr)
    print_table(rows)


if __name__ == "__main__":
    main()
