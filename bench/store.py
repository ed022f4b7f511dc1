"""Accepted events/s through the store's group commit, beside a raw-SQLite baseline; and the
store's flat costs under big queues (issue 12).

    .venv/bin/python bench/store.py [--events 100000] [--accepters 64] [--per-call 1 20 100] [--repeat 3]
    .venv/bin/python bench/store.py --only backlog [--drain 10000 300000] [--measure 10000] [--prune-rows 200000]

Backlog figures (`--only backlog`, or `--only all`): the drain rate (lease 100 + complete as
delivered, 4 tasks, as the dispatcher does) over the first `--measure` rows of a backlog of
each `--drain` size (issue 12: the 10k and 300k rates must match within 20%); the process
RSS before and after pruning `--prune-rows` finished rows; the DB and WAL size after the
largest backlog drained and was pruned. Backlogs are built straight in SQLite (one
INSERT ... SELECT per table, through the real schema), not through accept.

    .venv/bin/python bench/store.py [--attempts 2000]

It also prints the bytes stored per attempt with attempt records on (a typical record:
the return value, two console lines, two requests with small JSON bodies), as JSON and
as pages of the attempts table on disk.

Each event goes to 2 enabled functions, so one accepted event is 1 event row + 1 dedupe
key + 2 delivery rows (+ the per-function counters). The store is driven by many
concurrent trio tasks calling `Store.accept()`, each returning only after its commit.

The baseline, measured in the same run on a fresh file with the same schema and pragmas:
one Python loop that serialises the same events and writes the same rows with
`executemany` in ONE transaction — what SQLite can take when nobody waits for anything.
Target (issue 3): store >= 50% of the baseline and >= 20,000 events/s on a 2-core box.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from segfuncd.attempts import attempt_detail  # noqa: E402
from segfuncd.delivery import completion_for  # noqa: E402
from segfuncd.outcomes import DeliveryState, InvocationResult, LogLine, Outcome, RequestRecord  # noqa: E402
from segfuncd.store import Completion, NewEvent, open_store  # noqa: E402
from segfuncd.store.schema import connect, migrate  # noqa: E402

FUNCTIONS = ("teams", "warehouse")


def make_event(i: int) -> dict[str, object]:
    """A typical enriched track event (~700 bytes of JSON)."""
    return {
        "type": "track",
        "event": "Order Completed",
        "messageId": str(uuid.uuid4()),
        "userId": f"user-{i % 5000}",
        "anonymousId": "3f2b8c1e-6a4d-4c8e-9b1a-0d5e7f9a2c41",
        "timestamp": "2026-11-26T07:00:00.000Z",
        "receivedAt": "2026-11-26T07:00:00.120Z",
        "sentAt": "2026-11-26T07:00:00.100Z",
        "originalTimestamp": "2026-11-26T07:00:00.000Z",
        "properties": {
            "orderId": f"o-{i}",
            "total": 42.5,
            "currency": "EUR",
            "products": [{"sku": "A-1", "price": 20.0, "quantity": 1}, {"sku": "B-2", "price": 22.5, "quantity": 1}],
        },
        "context": {
            "library": {"name": "analytics-python", "version": "2.3.3"},
            "ip": "203.0.113.7",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
            "page": {"path": "/checkout", "url": "https://shop.example/checkout"},
        },
        "integrations": {},
        "writeKey": "bench",
    }


def raw_baseline(path: Path, events: list[dict[str, object]], *, synchronous: str) -> float:
    """Seconds to write the same rows with executemany in one transaction."""
    migrate(path)
    conn = connect(path, synchronous=synchronous)
    started = time.perf_counter()
    now = time.time()
    ev_rows, seen_rows, del_rows = [], [], []
    did = 1
    for eid, e in enumerate(events, start=1):
        mid = str(e["messageId"])
        ev_rows.append((eid, mid, "track", json.dumps(e, separators=(",", ":"), ensure_ascii=False), now))
        seen_rows.append((mid, now))
        for f in FUNCTIONS:
            del_rows.append((did, eid, f, now, now, now))
            did += 1
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT OR REPLACE INTO seen (message_id, at) VALUES (?, ?)", seen_rows)
    conn.executemany("INSERT INTO events (id, message_id, type, body, received_at) VALUES (?, ?, ?, ?, ?)", ev_rows)
    conn.executemany(
        "INSERT INTO deliveries (id, event_id, function, state, attempts, due_at, created_at, updated_at) "
        "VALUES (?, ?, ?, 'pending', 0, ?, ?, ?)",
        del_rows,
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


async def through_store(
    path: Path, events: list[dict[str, object]], *, accepters: int, per_call: int, synchronous: str, window_s: float
) -> tuple[float, int, int]:
    """Seconds for `accepters` tasks to accept all events, `per_call` per accept()."""
    items = [NewEvent(message_id=str(e["messageId"]), type="track", body=e, functions=FUNCTIONS) for e in events]
    calls = [items[i : i + per_call] for i in range(0, len(items), per_call)]
    async with open_store(path, synchronous=synchronous, max_pending=10**9, commit_window_s=window_s) as store:
        next_call = 0

        async def accepter() -> None:
            nonlocal next_call
            while next_call < len(calls):
                batch = calls[next_call]
                next_call += 1
                await store.accept(batch)

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(accepters):
                nursery.start_soon(accepter)
        elapsed = time.perf_counter() - started
        st = store.statistics()
        assert st.events_stored == len(events), st
    return elapsed, st.commits, st.largest_group


# --- backlog figures (issue 12) ----------------------------------------------------------------

SEED_BODY = json.dumps(make_event(0), separators=(",", ":"))


def seed(path: Path, n: int, *, state: str, at: float) -> None:
    """`n` events with one delivery each for 'teams', in `state`, straight into the real schema."""
    migrate(path)
    conn = sqlite3.connect(str(path), isolation_level=None)
    finished = state == "delivered"
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?) "
        "INSERT INTO events (id, message_id, type, body, received_at) SELECT i, 'b-' || i, 'track', ?, ? FROM k",
        (n, SEED_BODY, at),
    )
    conn.execute(
        "INSERT INTO deliveries (event_id, function, state, attempts, due_at, created_at, updated_at) "
        "SELECT id, 'teams', ?, ?, ?, ?, ? FROM events",
        (state, int(finished), None if finished else at, at, at),
    )
    if finished:
        conn.execute(
            "INSERT INTO attempts (delivery_id, number, at, outcome, duration_ms) "
            "SELECT id, 1, ?, 'delivered', 1.0 FROM deliveries",
            (at,),
        )
    conn.execute(
        "INSERT INTO function_stats (function, accepted, pending) VALUES ('teams', ?, ?)", (n, 0 if finished else n)
    )
    conn.execute("COMMIT")
    conn.close()


def rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


DELIVERED = InvocationResult(outcome=Outcome.DELIVERED, duration_ms=1.0)


async def drain(path: Path, *, measure: int, until_empty: bool) -> float:
    """Rows/s over the first `measure` rows drained (then, if asked, drain everything)."""
    async with open_store(path, max_pending=10**9, retention_s=0.0, prune_interval_s=math.inf) as store:
        done = 0
        started = time.perf_counter()
        rate = 0.0

        async def worker() -> None:
            nonlocal done, rate
            while True:
                if not until_empty and done >= measure:
                    return
                leases = await store.lease(limit=100, lease_s=300)
                if not leases:
                    return
                await store.complete(
                    [
                        Completion(
                            delivery_id=x.id,
                            function=x.function,
                            result=DELIVERED,
                            version="v",
                            state=DeliveryState.DELIVERED,
                        )
                        for x in leases
                    ]
                )
                done += len(leases)
                if not rate and done >= measure:
                    rate = done / (time.perf_counter() - started)

        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(worker)
        if not rate:
            rate = done / (time.perf_counter() - started)
    return rate


async def prune_rss(path: Path) -> tuple[int, int, float]:
    async with open_store(path, retention_s=3600, prune_interval_s=math.inf, clock=lambda: time.time() + 7200) as store:
        before = rss_bytes()
        started = time.perf_counter()
        await store.prune()
        took = time.perf_counter() - started
        return before, rss_bytes(), took


async def backlog_sizes_open(path: Path) -> tuple[int, int]:
    """DB and WAL size a running store keeps after the drained backlog is pruned (the WAL
    is measured while the store is open: SQLite deletes it on close)."""
    async with open_store(path, max_pending=10**9, retention_s=0.0, prune_interval_s=math.inf) as store:
        await store.prune()
        wal = path.with_name(path.name + "-wal")
        return path.stat().st_size, wal.stat().st_size if wal.exists() else 0


def backlog_figures(args: argparse.Namespace) -> None:
    print(f"backlog bench: SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, 4 drain tasks, 100 rows/lease")
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="segfuncd-bench-") as tmp:
        largest = max(args.drain)
        for n in args.drain:
            path = Path(tmp) / f"drain-{n}.db"
            seed(path, n, state="pending", at=time.time() - 60)
            rate = trio.run(functools.partial(drain, path, measure=min(args.measure, n), until_empty=n == largest))
            rates[n] = rate
            print(f"drain rate, backlog {n:>9,}: {rate:>10,.0f} rows/s (first {min(args.measure, n):,} rows)")
            if n == largest:
                db, wal = trio.run(backlog_sizes_open, path)
                print(
                    f"after the {n:,} backlog drained and was pruned: DB {db / 2**20:.1f} MiB, WAL {wal / 2**20:.1f} MiB"
                )
        small, big = min(rates), max(rates)
        if small != big:
            ratio = rates[big] / rates[small]
            verdict = "ok" if 0.8 <= ratio <= 1.2 else "OVER 20%"
            print(f"drain rate {big:,} vs {small:,}: {ratio:.2f} ({verdict})")
        path = Path(tmp) / "prune.db"
        seed(path, args.prune_rows, state="delivered", at=time.time() - 86_400)
        before, after, took = trio.run(prune_rss, path)
        print(
            f"prune {args.prune_rows:,} finished rows in {took:.1f} s: RSS {before / 2**20:.1f} MiB -> "
            f"{after / 2**20:.1f} MiB ({(after - before) / 2**20:+.1f} MiB; limit +20)"
        )


def typical_result(i: int) -> InvocationResult:
    """What a destination function posting to an API twice leaves behind."""
    headers = (("content-type", "application/json"), ("authorization", "Bearer x"), ("user-agent", "segfuncd/0.1"))
    reply = (("content-type", "application/json"), ("content-length", "27"), ("date", "Thu, 26 Nov 2026 07:00:00 GMT"))
    body = json.dumps({"event": "Order Completed", "userId": f"user-{i}", "properties": {"total": 42.5}})
    requests = tuple(
        RequestRecord(
            method="POST",
            url=f"https://api.example.com/v1/{path}",
            status=200,
            duration_ms=41.2,
            request_headers=headers,
            request_body=body,
            response_headers=reply,
            response_body='{"ok":true,"id":"r-12345678"}',
        )
        for path in ("track", "identify")
    )
    logs = (
        LogLine(level="log", message=f"sending Order Completed for user-{i}", time=1.0),
        LogLine(level="log", message="statuses 200 200", time=1.0),
    )
    return InvocationResult(
        outcome=Outcome.DELIVERED, value={"ok": True}, logs=logs, requests=requests, duration_ms=90.0, runner=4242
    )


async def attempt_bytes(path: Path, n: int) -> tuple[float, float | None]:
    """(JSON bytes per attempt record, on-disk bytes per attempt row) for n typical attempts."""
    events = [make_event(i) for i in range(n)]
    items = [NewEvent(message_id=str(e["messageId"]), type="track", body=e, functions=("teams",)) for e in events]
    record_bytes = 0
    async with open_store(path, synchronous="normal", max_pending=10**9) as store:
        await store.accept(items)
        done = 0
        while done < n:
            leases = await store.lease(limit=500, lease_s=60)
            completions = []
            for lease in leases:
                result = typical_result(lease.id)
                detail = attempt_detail(result, started_at=time.time())
                record_bytes += len(detail.encode())
                completions.append(
                    completion_for(
                        lease, result, version="v", now=time.time(), max_attempts=3, base_delay_s=1, detail=detail
                    )
                )
            await store.complete(completions)
            done += len(leases)
    conn = sqlite3.connect(str(path))
    try:
        (disk,) = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'attempts'").fetchone()
    except sqlite3.OperationalError:  # SQLite built without dbstat
        disk = None
    conn.close()
    return record_bytes / n, None if disk is None else disk / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--accepters", type=int, default=64)
    parser.add_argument("--per-call", type=int, nargs="+", default=[1, 20, 100])
    parser.add_argument("--synchronous", default="normal", choices=("normal", "full"))
    parser.add_argument("--window-ms", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the best is shown (shared CPUs are noisy)")
    parser.add_argument("--only", choices=("accept", "backlog", "all"), default="accept")
    parser.add_argument("--drain", type=int, nargs="+", default=[10_000, 300_000], help="backlog sizes to drain")
    parser.add_argument("--measure", type=int, default=10_000, help="rows over which the drain rate is taken")
    parser.add_argument("--prune-rows", type=int, default=200_000)

    parser.add_argument("--attempts", type=int, default=2000, help="attempts recorded for the bytes-per-attempt figure")
    args = parser.parse_args()
    if args.only in ("backlog", "all"):
        backlog_figures(args)
        if args.only == "backlog":
            return

    events = [make_event(i) for i in range(args.events)]
    best: dict[str, tuple[float, int, int]] = {}
    with tempfile.TemporaryDirectory(prefix="segfuncd-bench-") as tmp:
        # Interleaved rounds, so a burst of load from elsewhere hurts every row alike.
        for round_ in range(args.repeat):
            raw_s = raw_baseline(Path(tmp) / f"raw-{round_}.db", events, synchronous=args.synchronous)
            if raw_s < best.get("raw", (math.inf, 1, 0))[0]:
                best["raw"] = (raw_s, 1, 0)
            for per_call in args.per_call:
                path = Path(tmp) / f"store-{per_call}-{round_}.db"
                result = trio.run(
                    functools.partial(
                        through_store,
                        path,
                        events,
                        accepters=args.accepters,
                        per_call=per_call,
                        synchronous=args.synchronous,
                        window_s=args.window_ms / 1000,
                    )
                )
                key = f"per-call-{per_call}"
                if result[0] < best.get(key, (math.inf, 0, 0))[0]:
                    best[key] = result
    raw_rate = args.events / best["raw"][0]
    print(
        f"store bench: {args.events:,} events x {len(FUNCTIONS)} functions (1 event + 1 dedupe key + "
        f"{len(FUNCTIONS)} delivery rows each), synchronous={args.synchronous}, window {args.window_ms} ms, "
        f"{os.cpu_count()} CPUs, SQLite {sqlite3.sqlite_version}, best of {args.repeat}"
    )
    print(f"{'path':<48} {'events/s':>10} {'commits':>8} {'max group':>9} {'vs raw':>7}")
    print(f"{'raw SQLite: executemany, one transaction':<48} {raw_rate:>10,.0f} {1:>8} {'-':>9} {'1.00':>7}")
    for per_call in args.per_call:
        s, commits, group = best[f"per-call-{per_call}"]
        rate = args.events / s
        label = f"Store.accept: {args.accepters} tasks x {per_call} event(s)/call"
        print(f"{label:<48} {rate:>10,.0f} {commits:>8,} {group:>9} {rate / raw_rate:>7.2f}")
    if args.attempts:
        with tempfile.TemporaryDirectory(prefix="segfuncd-bench-") as tmp:
            record, disk = trio.run(attempt_bytes, Path(tmp) / "attempts.db", args.attempts)
        on_disk = f"{disk:,.0f} bytes" if disk is not None else "n/a (no dbstat)"
        print(
            f"attempt records: {record:,.0f} bytes of JSON per attempt (2 requests, 2 log lines); "
            f"attempts table on disk: {on_disk} per attempt ({args.attempts:,} attempts)"
        )


if __name__ == "__main__":
    main()
