"""Benchmark the function runtime: ONE runner process vs Node running the same .js file.

    .venv/bin/python bench/runtime.py [--events-a N] [--events-b N]

(a) a trivial handler; (b) one fetch POST per event to a loopback Node sink
(bench/node_sink.mjs); (c) one AWS S3 putObject per event against a local moto server
(tests/helpers.moto_server; Node runs aws-sdk v2 from tests/fixtures/node, so `npm ci` there
first, else only our row is shown). segfuncd is driven through the pool API the dispatcher uses
(`invoke(version, batch_of_events, settings)`, several batches in flight); Node runs the
file via bench/node_harness.mjs with its own fetch. Latency is per event: for segfuncd
the runner's own measure (trigger queued -> handler settled), for Node the handler call.
Bounded: a fixed number of events per case, loopback only. Targets (issue 2):
(a) >= 10,000 events/s per runner; (b) >= 0.5x Node.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segfuncd.outcomes import Outcome  # noqa: E402
from segfuncd.runner import PluginVersion, open_runner_pool  # noqa: E402
from segfuncd.runner.sandbox import lodash_path  # noqa: E402

PLUGINS = ROOT / "tests" / "plugins"
AWS_SDK_DIR = ROOT / "tests" / "fixtures" / "node"  # npm ci there installs aws-sdk v2


@dataclass
class Row:
    case: str
    runtime: str
    events: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))]


def event(i: int) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Bench",
        "messageId": f"m-{i}",
        "properties": {"n": i, "plan": "pro"},
        "userId": f"u-{i % 100}",
        "timestamp": "2024-01-01T00:00:00.000Z",
    }


async def run_segfuncd(
    case: str, plugin: Path, *, events: int, batch: int, in_flight: int, sink: str, extra: dict[str, Any] | None = None
) -> Row:
    version = PluginVersion.from_file(plugin)
    settings = {"url": sink, "apiKey": "bench", **(extra or {})}
    durations: list[float] = []
    errors = 0
    # loopback egress allowed explicitly: the sink and moto listen on 127.0.0.1
    async with open_runner_pool(workers=1, timeout_ms=30_000, cpu_ms=10_000, egress_allow=("127.0.0.1",)) as pool:
        await pool.invoke(version, [event(-1)], settings)  # load + warm up
        batches = [[event(i) for i in range(s, min(events, s + batch))] for s in range(0, events, batch)]
        it = iter(batches)

        async def worker() -> None:
            nonlocal errors
            for b in it:
                for r in await pool.invoke(version, b, settings):
                    durations.append(r.duration_ms)
                    errors += r.outcome is not Outcome.DELIVERED

        t0 = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(in_flight):
                nursery.start_soon(worker)
        seconds = time.perf_counter() - t0
    return Row(case, "segfuncd (1 runner)", events, seconds, pct(durations, 0.5), pct(durations, 0.99), errors)


def run_node(
    case: str, plugin: Path, *, events: int, concurrency: int, sink: str, extra: dict[str, Any] | None = None
) -> Row:
    cmd = [
        "node",
        str(ROOT / "bench" / "node_harness.mjs"),
        str(plugin),
        "--events",
        str(events),
        "--concurrency",
        str(concurrency),
        "--sink",
        sink,
        "--lodash",
        str(lodash_path()),
    ]
    if extra is not None:
        cmd += ["--settings", json.dumps(extra), "--aws", str(AWS_SDK_DIR)]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300).stdout)
    return Row(case, "node (same file)", out["events"], out["seconds"], out["p50_ms"], out["p99_ms"], out["errors"])


def run_aws_case(events: int, concurrency: int, sink: str) -> list[Row]:
    from tests.helpers import moto_server

    case = "(c) AWS S3 putObject/event"
    plugin = PLUGINS / "bench_aws.js"
    with moto_server() as moto:
        moto.client("s3").create_bucket(Bucket="bench")
        extra = {"endpoint": moto.endpoint, "accessKeyId": moto.access_key, "secretAccessKey": moto.secret_key}
        extra["bucket"] = "bench"
        rows = [
            trio.run(lambda: run_segfuncd(case, plugin, events=events, batch=25, in_flight=4, sink=sink, extra=extra))
        ]
        if (AWS_SDK_DIR / "node_modules" / "aws-sdk").is_dir():
            rows.append(run_node(case, plugin, events=events, concurrency=concurrency, sink=sink, extra=extra))
    return rows


def start_sink() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(["node", str(ROOT / "bench" / "node_sink.mjs")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = json.loads(proc.stdout.readline())["url"]
    return proc, url


def print_table(rows: list[Row]) -> None:
    print(f"{'case':<26} {'runtime':<22} {'events':>7} {'events/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for r in rows:
        print(
            f"{r.case:<26} {r.runtime:<22} {r.events:>7} {r.rate:>10.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>6}"
        )
    for case in dict.fromkeys(r.case for r in rows):
        ours = next(r for r in rows if r.case == case and r.runtime.startswith("segfuncd"))
        node = next((r for r in rows if r.case == case and r.runtime.startswith("node")), None)
        if node is not None:
            print(f"{case}: segfuncd / node = {ours.rate / node.rate:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events-a", type=int, default=20_000)
    parser.add_argument("--events-b", type=int, default=3_000)
    parser.add_argument("--events-c", type=int, default=500, help="AWS putObject events (0 skips the case)")
    parser.add_argument("--node-concurrency", type=int, default=16)
    args = parser.parse_args()
    sink_proc, sink = start_sink()
    rows: list[Row] = []
    try:
        trivial, post = PLUGINS / "bench_trivial.js", PLUGINS / "bench_post.js"
        rows.append(
            trio.run(
                lambda: run_segfuncd(
                    "(a) trivial handler", trivial, events=args.events_a, batch=100, in_flight=4, sink=sink
                )
            )
        )
        rows.append(
            run_node("(a) trivial handler", trivial, events=args.events_a, concurrency=args.node_concurrency, sink=sink)
        )
        rows.append(
            trio.run(
                lambda: run_segfuncd(
                    "(b) one fetch POST/event", post, events=args.events_b, batch=50, in_flight=4, sink=sink
                )
            )
        )
        rows.append(
            run_node(
                "(b) one fetch POST/event", post, events=args.events_b, concurrency=args.node_concurrency, sink=sink
            )
        )
        if args.events_c:
            rows += run_aws_case(args.events_c, args.node_concurrency, sink)
    finally:
        sink_proc.terminate()
        sink_proc.wait(5)
    print_table(rows)


if __name__ == "__main__":
    main()
