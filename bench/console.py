"""Web console page times with a large store: every page should answer in < 200 ms.

    .venv/bin/python bench/console.py [--deliveries 1000000] [--functions 5] [--repeat 5] [--keep DIR]

Fills a fresh state directory quickly, directly in SQL through the real schema
(`migrate()` creates it; recursive CTEs insert events, deliveries and one attempt each,
spread over the last 24 hours: 95% delivered, 2% discarded, 2% dead, 1% retrying with
their next attempt tomorrow, so the daemon has nothing to do), then derives the
counters the way the migrations backfill them (function_stats, the console's per-minute
timeline and error groups) and writes 50,000 log lines. Then starts a real `segfuncd` on
that directory with one trivial plugin per function, logs in to the console with the
token, and prints each page's time (median and worst of --repeat runs, after one warm-up).
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from segfuncd.console.token import read_token  # noqa: E402
from segfuncd.store.schema import migrate  # noqa: E402

TARGET_MS = 200.0
BIN = Path(sys.executable).parent
PLUGIN = "async function onTrack(event, settings) { return 1 }\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill(db: Path, *, deliveries: int, functions: list[str], now: float) -> None:
    """Events, deliveries, attempts, counters, timeline and logs, all in SQL."""
    migrate(db)
    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")
    n_fn = len(functions)
    n_events = max(1, deliveries // n_fn)
    conn.execute("CREATE TEMP TABLE fns (k INTEGER PRIMARY KEY, name TEXT)")
    conn.executemany("INSERT INTO fns VALUES (?, ?)", list(enumerate(functions)))
    conn.execute("BEGIN")
    # Events spread evenly over the last 24 h, oldest first (ids grow with time, as in life).
    conn.execute(
        """
        WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)
        INSERT INTO events (id, message_id, type, body, received_at)
        SELECT x, 'bench-' || x, 'track',
               json_object('type', 'track', 'event', 'Order Completed', 'userId', 'user-' || (x % 5000),
                           'messageId', 'bench-' || x, 'properties', json_object('revenue', x % 100)),
               ? - 86000.0 + 86000.0 * x / ?
        FROM c
        """,
        (n_events, now, n_events),
    )
    # One delivery per (event, function); the state from a cheap hash of the id.
    conn.execute(
        """
        INSERT INTO deliveries (event_id, function, state, attempts, due_at, created_at, updated_at, version,
                                last_error, note)
        SELECT eid, fname,
               CASE WHEN h < 95 THEN 'delivered' WHEN h < 97 THEN 'discarded' WHEN h < 99 THEN 'dead'
                    ELSE 'pending' END,
               1,
               CASE WHEN h >= 99 THEN ? + 86400 END,
               t, t + 0.05, 'benchversion0',
               CASE WHEN h >= 97 THEN 'TypeError: cannot read properties of undefined (reading ''x' || (h % 3) || ''')'
                    WHEN h >= 95 THEN 'EventNotSupported: track not supported' END,
               CASE WHEN h >= 95 AND h < 97 THEN 'EventNotSupported' END
        FROM (SELECT e.id AS eid, e.received_at AS t, f.name AS fname, (e.id * 7919 + f.k * 104729) % 100 AS h
              FROM events AS e CROSS JOIN fns AS f ORDER BY e.id, f.k)
        """,
        (now,),
    )
    conn.execute(
        """
        INSERT INTO attempts (delivery_id, number, at, version, outcome, error, duration_ms)
        SELECT id, 1, updated_at, version,
               CASE state WHEN 'delivered' THEN 'delivered' WHEN 'discarded' THEN 'discarded'
                          WHEN 'dead' THEN 'failed' ELSE 'retry' END,
               last_error, 2.0 + (id % 37)
        FROM deliveries
        """
    )
    conn.execute(
        """
        INSERT INTO function_stats (function, accepted, delivered, discarded, filtered, failed, retried,
                                    dead_lettered, attempts, duration_ms_total, pending, retrying, dead,
                                    last_error, last_error_at, last_delivered_at)
        SELECT function, count(*), sum(state = 'delivered'), sum(state = 'discarded'), 0,
               sum(state = 'dead'), sum(state = 'pending'), sum(state = 'dead'), count(*), count(*) * 20.0,
               sum(state = 'pending'), sum(state = 'pending'), sum(state = 'dead'),
               'TypeError: cannot read properties of undefined', max(updated_at), max(updated_at)
        FROM deliveries GROUP BY function
        """
    )
    # The console's tables, derived exactly as migration m011 backfills them.
    conn.execute("COMMIT")
    conn.executescript("BEGIN; DELETE FROM function_minutes; DELETE FROM function_errors; " + _timeline_backfill_sql())
    conn.execute(
        """
        WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000)
        INSERT INTO logs (time, level, source, function, version, message_id, outcome, message, fields)
        SELECT ? - 50000 + x, CASE WHEN x % 10 = 0 THEN 'error' ELSE 'log' END, 'function',
               (SELECT name FROM fns WHERE k = x % ?), 'benchversion0', 'bench-' || x, 'delivered',
               'log line ' || x, '{}'
        FROM c
        """,
        (now, n_fn),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def _timeline_backfill_sql() -> str:
    """The INSERT ... SELECT statements of migration m011 (after its CREATE TABLEs)."""
    import inspect

    from segfuncd.store import schema

    source = inspect.getsource(schema._m011_timeline)
    body = source.split('+ """', 1)[1].rsplit('"""', 1)[0]
    return body


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--deliveries", type=int, default=1_000_000)
    ap.add_argument("--functions", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=None, help="fill (or reuse) this directory and keep it")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="segfuncd-console-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    functions = [f"fn{i}" for i in range(args.functions)]
    db = work / "var" / "segfuncd.db"
    if not db.exists():
        t0 = time.perf_counter()
        fill(db, deliveries=args.deliveries, functions=functions, now=time.time())
        print(f"filled {db} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    plugins = work / "plugins"
    plugins.mkdir(exist_ok=True)
    for name in functions:
        (plugins / f"{name}.js").write_text(PLUGIN)
    port = free_port()
    (work / "segfuncd.toml").write_text(
        f'[intake]\nlisten = ""\n[admin]\nsocket = "var/admin.sock"\nconsole_listen = "127.0.0.1:{port}"\n'
        '[storage]\npath = "var/segfuncd.db"\n[runtime]\nplugins_dir = "plugins"\nworkers = 1\n'
    )
    err = open(work / "segfuncd.stderr", "wb")  # noqa: SIM115
    daemon = subprocess.Popen([str(BIN / "segfuncd"), "--config", str(work / "segfuncd.toml")], stdout=err, stderr=err)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        token = None
        while time.monotonic() < deadline:
            if daemon.poll() is not None:
                sys.exit(f"segfuncd exited: {(work / 'segfuncd.stderr').read_text()[-2000:]}")
            try:
                token = read_token(work / "var")
                if httpx.get(f"{base}/?token={token}", timeout=5).status_code == 303:
                    break
            except Exception:
                pass
            time.sleep(0.2)
        else:
            sys.exit("the console did not come up in 120 s")
        assert token is not None
        with httpx.Client(base_url=base, timeout=30) as client:
            client.get(f"/?token={token}")
            (total,) = sqlite3.connect(str(db)).execute("SELECT count(*) FROM deliveries").fetchone()
            (dead_id,) = (
                sqlite3.connect(str(db)).execute("SELECT max(id) FROM deliveries WHERE state = 'dead'").fetchone()
            )
            page = client.get("/functions/fn0").text
            csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page)
            pages: list[tuple[str, str, dict[str, str] | None]] = [
                ("overview, 1 h", "/", None),
                ("overview, 24 h", "/?range=24h", None),
                ("function, 1 h", "/functions/fn0", None),
                ("function, 24 h", "/functions/fn0?range=24h", None),
                ("replay confirmation", "/functions/fn0/replay", None),
                ("a dead delivery", f"/deliveries/{dead_id}", None),
                ("Send Test Event form", "/test", None),
                ("live log page", "/logs", None),
                ("live log, one function + level", "/logs?function=fn1&level=error", None),
                ("live log, by messageId", "/logs?message_id=bench-49990", None),
                (
                    "Send Test Event run",
                    "/test",
                    {"csrf": csrf.group(1) if csrf else "", "function": "fn0", "event": '{"type":"track"}'},
                ),
            ]
            print(f"\nconsole page times, {total:,} deliveries, {len(functions)} functions, {args.repeat} runs each\n")
            print(f"{'page':<32} {'median ms':>10} {'worst ms':>10}  {'< 200 ms':>8}")
            for label, path, form in pages:
                times = []
                for i in range(args.repeat + 1):
                    t0 = time.perf_counter()
                    if form is None:
                        r = client.get(path)
                    else:
                        r = client.post(path, data=form, headers={"origin": base})
                    dt = (time.perf_counter() - t0) * 1000
                    if r.status_code != 200:
                        sys.exit(f"{path}: HTTP {r.status_code}: {r.text[:300]}")
                    if i:
                        times.append(dt)
                med, worst = statistics.median(times), max(times)
                ok = "yes" if worst < TARGET_MS else "NO"
                print(f"{label:<32} {med:>10.1f} {worst:>10.1f}  {ok:>8}")
    finally:
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        err.close()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
