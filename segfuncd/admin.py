"""The admin API served on the admin Unix socket: what `segfuncctl` talks to.

Routes (JSON unless said otherwise; errors are `{"error": "..."}` with a 4xx status):

    GET  /status                 daemon, runners, queue, intake and per-function state
    GET  /logs?n=&function=&level=&after=&follow=1
                                 newest `n` log records, oldest first; `follow=1` keeps the
                                 response open and streams new records as NDJSON (chunked),
                                 woken by `store.wait_logs`, never by polling the table
    POST /test   {function, event | events, settings?}
                                 runs the function's current version now via the runner
                                 pool: nothing is queued, nothing is counted
    POST /reload                 calls the daemon's reload callable
    POST /replay {function?, id?}
                                 dead letters back to pending -> {"replayed": n}
    GET  /deliveries?function=&state=&n=
    GET  /deliveries/ID          one delivery, its event and every attempt
    GET  /metrics                Prometheus text (version 0.0.4)

Admin only reads, plus the calls it is handed (reload, replay, test): it owns no task and
no state beyond a few intake samples for the rate.

Here: Admin (routing, request validation, the calls into store, functions and runner
pool, log following), BadRequest and the JSON shaping of results. Not here: a function's
state and status row (`functions.py`), sample events (`spec.py`).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import trio

from . import __version__
from .attempts import parse_detail
from .config import Config
from .errors import SegfuncdError
from .functions import Functions, FunctionState, UnknownFunction, first_line, status_row
from .log import get_logger
from .metrics import Gauges, Metrics, render_prometheus
from .outcomes import InvocationResult
from .pausing import Pauses
from .redact import Redactor, redactor_for, secret_values
from .server import Request, Response, json_response
from .sources import display_name, source_names
from .spec import BATCH_HANDLER, sample_event, sample_type, single_handlers
from .stacks import located

if TYPE_CHECKING:
    from .plugins import PluginRegistry
    from .runner import RunnerPool
    from .store import StoreStats

LEVELS = ("debug", "log", "info", "warn", "warning", "error", "critical")  # increasing severity

DEFAULT_LOG_LINES = 20
MAX_LOG_LINES = 10_000
FOLLOW_BATCH = 500
FOLLOW_KEEPALIVE_S = 15.0  # a blank line now and then, so a vanished client is noticed
MAX_TEST_EVENTS = 400  # Segment's onBatch limit
RATE_WINDOW_S = 60.0
DELIVERY_STATES = ("pending", "leased", "retrying", "delivered", "discarded", "filtered", "dead")


log = get_logger()


CLUSTER_FOLLOW_S = 1.0  # `logs --cluster -f` looks at the cluster's log stream this often


class BadRequest(SegfuncdError):
    """The admin client sent something we cannot act on; answered with `status`."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        self.status = status
        super().__init__(message)


class Admin:
    """The admin API; the daemon serves `handle` on the admin socket.

    `config` may be a Config or a zero-argument callable answering the current one (the
    daemon swaps its config on reload). `intake` may be None (TCP and Unix intake disabled).
    """

    def __init__(
        self,
        config: Config | Callable[[], Config],
        store: Any,
        registry: PluginRegistry,
        pool: RunnerPool,
        intake: Any,
        metrics: Metrics,
        reload: Callable[[], Awaitable[str]],
        started_at: float,
        pid: int | None = None,
        *,
        clock: Callable[[], float] = time.time,
        pauses: Pauses | None = None,
    ) -> None:
        self._config = config
        self.pauses = pauses
        self.store = store
        self.registry = registry
        self.functions = Functions(
            registry, lambda: self.config, paused=lambda: self.pauses.names if self.pauses is not None else frozenset()
        )
        self.pool = pool
        self.intake = intake
        self.metrics = metrics
        self._reload = reload
        self.started_at = started_at
        self.pid = os.getpid() if pid is None else pid
        self.clock = clock
        self._intake_samples: deque[tuple[float, int]] = deque(maxlen=64)
        self._closed = False
        self._waiting: set[trio.CancelScope] = set()  # followers' waits, cancelled by close()

    def close(self) -> None:
        """End every `logs -f` stream now (call when shutdown starts).

        A follower's response never finishes by itself, so without this the HTTP server
        would wait its whole stop grace period for it.
        """
        self._closed = True
        for scope in list(self._waiting):
            scope.cancel()

    @property
    def config(self) -> Config:
        return self._config() if callable(self._config) else self._config

    async def handle(self, request: Request) -> Response:
        """Route one request; operator errors become 4xx, bugs go up to the server (500)."""
        path = request.path.rstrip("/") or "/"
        routes: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]] = {
            ("GET", "/status"): self._status,
            ("GET", "/logs"): self._logs,
            ("POST", "/test"): self._test,
            ("POST", "/reload"): self._reload_route,
            ("POST", "/replay"): self._replay,
            ("POST", "/pause"): self._pause,
            ("POST", "/resume"): self._pause,
            ("GET", "/deliveries"): self._deliveries,
            ("GET", "/metrics"): self._metrics,
        }
        try:
            route = routes.get((request.method, path))
            if route is None and request.method == "GET" and path.startswith("/deliveries/"):
                return await self._delivery(path.removeprefix("/deliveries/"))
            if route is None:
                if any(p == path for _, p in routes):
                    return json_response(405, {"error": f"{request.method} is not allowed on {path}"})
                return json_response(404, {"error": f"no such admin endpoint: {path}"})
            return await route(request)
        except BadRequest as exc:
            return json_response(exc.status, {"error": str(exc)})
        except UnknownFunction as exc:
            return json_response(404, {"error": str(exc), "unknown_function": exc.name})
        except SegfuncdError as exc:
            return json_response(409, {"error": str(exc)})

    async def require_function(self, name: str | None) -> None:
        """UnknownFunction unless `name` is None, a function, or a name in the store."""
        if name is None or name in self.functions.names():
            return
        self.functions.require(name, stored=(await self.store.stats()).functions)

    # --- /status --------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """The data behind `segfuncctl status` (and `--json`)."""
        now = self.clock()
        config = self.config
        stats = await self.store.stats()
        cluster = await self.store.cluster_stats()  # None on SQLite: one node
        pool = self.pool.statistics()
        snap = self.metrics.snapshot(now)
        addresses = []
        if config.intake.listen:
            addresses.append(f"http://{config.intake.listen}")
        if config.intake_socket:
            addresses.append(f"unix:{config.intake_socket}")
        functions = {f.name: f for f in self.functions.all()}
        names = sorted(set(functions) | set(stats.functions))
        return {
            "now": now,
            "daemon": {
                "version": __version__,
                "pid": self.pid,
                "started_at": self.started_at,
                "uptime_s": max(0.0, now - self.started_at),
                "config": config.source,
                "plugins_dir": str(config.plugins_dir),
                "admin_socket": str(config.admin_socket),
                "healthy": bool(stats.healthy),
                "storage": storage_status(stats),
            },
            "runners": {
                "workers": getattr(pool, "workers", None),
                "alive": getattr(pool, "alive", None),
                "restarts": getattr(pool, "restarts", 0),
                "in_flight": getattr(pool, "in_flight", 0),
                "invocations": getattr(pool, "invocations", 0),
            },
            "queue": {
                "pending": stats.pending,
                "leased": stats.leased,
                "dead": stats.dead,
                "retrying": sum(f.retrying for f in stats.functions.values()),
                "oldest_pending_age_s": stats.oldest_pending_age_s,
            },
            "cluster": None if cluster is None else dataclasses.asdict(cluster),
            "intake": self._intake_status(now, addresses),
            "warnings": [w.message for w in self.functions.warnings()],
            "functions": [
                status_row(
                    n,
                    functions.get(n),
                    stats.functions.get(n),
                    snap.functions.get(n),
                    redactor=redactor_for(secret_values(self.config.function(n))),
                    plugins_dir=self.config.plugins_dir,
                )
                for n in names
            ],
        }

    def _intake_status(self, now: float, addresses: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"addresses": addresses}
        st = self.intake.statistics() if self.intake is not None else None
        if st is None:
            return out | {
                "accepted": 0,
                "duplicate": 0,
                "rejected": 0,
                "requests": {},
                "events_per_s": 0.0,
                "refused": {},
            }
        accepted = st.events_accepted
        requests = {str(k): int(v) for k, v in st.requests.items()}
        out |= {
            "accepted": accepted,
            "duplicate": st.events_duplicate,
            "rejected": st.events_rejected,
            "requests": requests,
            "requests_rejected": sum(v for k, v in requests.items() if k[:1] in "45"),
            "draining": bool(st.draining),
            "sources": self._source_status(st.sources),
            "refused": {reason: {"last_5m": c.last_5m, "total": c.total} for reason, c in (st.refused or {}).items()},
        }
        # The rate over about the last minute, from samples taken by status calls; before
        # there is a sample old enough, the average since start.
        self._intake_samples.append((now, accepted))
        while len(self._intake_samples) > 1 and now - self._intake_samples[1][0] >= RATE_WINDOW_S:
            self._intake_samples.popleft()
        t0, n0 = self._intake_samples[0]
        if now - t0 < 5.0:
            t0, n0 = self.started_at, 0
        out["events_per_s"] = round((accepted - n0) / max(now - t0, 1e-9), 2)
        return out

    def _source_status(self, counts: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Per source: events accepted / duplicate / rejected since start (configured ones even at 0)."""
        names = list(dict.fromkeys([*source_names(self.config), *sorted(counts)]))
        out = []
        for name in names:
            c = counts.get(name)
            out.append(
                {
                    "name": display_name(name),
                    "accepted": c.accepted if c else 0,
                    "duplicate": c.duplicate if c else 0,
                    "rejected": c.rejected if c else 0,
                }
            )
        return out

    async def _status(self, request: Request) -> Response:
        return json_response(200, await self.status())

    # --- /logs ----------------------------------------------------------------------------

    async def _logs(self, request: Request) -> Response:
        q = request.query
        n = _int(q.get("n"), "n", DEFAULT_LOG_LINES, 0, MAX_LOG_LINES)
        after = _int(q.get("after"), "after", None, 0, None)
        function, level = q.get("function") or None, q.get("level") or None
        await self.require_function(function)
        if level and level.lower() not in LEVELS:
            raise BadRequest(f"unknown level {level!r} (known: {', '.join(LEVELS)})")
        message_id = q.get("message_id") or None
        if q.get("cluster") not in (None, "", "0", "false"):
            return await self._cluster_logs(q, n, function, level, message_id)
        records = (
            list(
                await self.store.read_logs(
                    after_id=after, limit=n, function=function, level=level, message_id=message_id
                )
            )
            if n
            else []
        )
        if q.get("follow") not in (None, "", "0", "false"):
            return Response(
                status=200,
                body=self._follow(records, function, level, message_id),
                content_type="application/x-ndjson",
            )
        return json_response(200, {"logs": [self._log_dict(r) for r in records]})

    async def _cluster_logs(
        self, q: Mapping[str, str], n: int, function: str | None, level: str | None, message_id: str | None
    ) -> Response:
        """`logs --cluster [-f]`: every node's newest lines, from the cluster's log stream."""
        found = await self.store.cluster_logs(limit=n, function=function, level=level, message_id=message_id)
        if found is None:
            raise BadRequest('--cluster: this node runs on SQLite alone ([storage] backend = "sqlite"): no other nodes')
        cursor, records = found
        if q.get("follow") in (None, "", "0", "false"):
            return json_response(200, {"logs": [self._log_dict(r) for r in records]})

        async def follow() -> AsyncIterator[bytes]:
            nonlocal cursor
            for r in records:
                yield (json.dumps(self._log_dict(r), default=str) + "\n").encode()
            quiet = 0.0
            while not self._closed:
                await trio.sleep(CLUSTER_FOLLOW_S)  # the stream is polled: lines arrive from every node
                found = await self.store.cluster_logs(
                    limit=n, function=function, level=level, message_id=message_id, after=cursor
                )
                if found is None or self._closed:
                    return
                cursor, new = found
                if new:
                    quiet = 0.0
                    for r in new:
                        yield (json.dumps(self._log_dict(r), default=str) + "\n").encode()
                else:
                    quiet += CLUSTER_FOLLOW_S
                    if quiet >= FOLLOW_KEEPALIVE_S:
                        quiet = 0.0
                        yield b"\n"

        return Response(status=200, body=follow(), content_type="application/x-ndjson")

    def _log_dict(self, r: Any) -> dict[str, Any]:
        d: dict[str, Any] = plain(r)
        if r.function and r.source == "function":
            redactor = redactor_for(secret_values(self.config.function(r.function)))
            if redactor:
                d["message"] = redactor(d["message"])
        return d

    async def _follow(
        self, first: list[Any], function: str | None, level: str | None, message_id: str | None = None
    ) -> AsyncIterator[bytes]:
        """NDJSON: the first records, then each new one as the store signals it.

        The cursor is a log id. `first` is the newest lines *by time*, and daemon events
        reach the table in batches, so rows with a higher id than the cursor may already
        exist and be older than the request: the first catch-up pass skips those (they
        happened before `-f` started), later passes print everything new.
        """
        started = self.clock()
        newest = await self.store.read_logs(limit=1)
        cursor = max([r.id for r in (*first, *newest) if r.id is not None], default=0)
        for r in first:
            yield (json.dumps(self._log_dict(r), default=str) + "\n").encode()
        catching_up = True
        while not self._closed:
            if not catching_up:
                scope = trio.CancelScope(deadline=trio.current_time() + FOLLOW_KEEPALIVE_S)
                self._waiting.add(scope)
                try:
                    with scope:
                        await self.store.wait_logs(cursor)
                finally:
                    self._waiting.discard(scope)
                if self._closed:
                    return  # the stream ends cleanly: the daemon is stopping
                if scope.cancelled_caught:
                    yield b"\n"
                    continue
            while True:
                batch = list(await self.store.read_logs(after_id=cursor, limit=FOLLOW_BATCH))
                out = []
                for r in batch:
                    cursor = max(cursor, r.id or 0)
                    if catching_up and r.time < started:
                        continue
                    if (
                        (function is None or r.function == function)
                        and (message_id is None or r.message_id == message_id)
                        and level_at_least(r.level, level)
                    ):
                        out.append(json.dumps(self._log_dict(r), default=str) + "\n")
                if out:
                    yield "".join(out).encode()
                if len(batch) < FOLLOW_BATCH:
                    break
            catching_up = False

    # --- /test ----------------------------------------------------------------------------

    async def _test(self, request: Request) -> Response:
        body = _json_body(request)
        name = body.get("function")
        if not isinstance(name, str) or not name:
            raise BadRequest('"function" is required')
        fn = self.functions.get(name)
        ps = fn.plugin
        if ps is None or fn.state is FunctionState.REMOVED:
            raise UnknownFunction(name, (f.name for f in self.functions.all() if f.state is not FunctionState.REMOVED))
        if ps.version is None:  # a disabled function can still be tried: it runs the loaded version
            raise BadRequest(f"{name} has no loaded version: {ps.error or 'not loaded yet'}", status=409)
        fconfig = fn.config
        override = body.get("settings") or {}
        if not isinstance(override, dict):
            raise BadRequest('"settings" must be a JSON object')
        settings = {**fconfig.settings, **override}
        sample = "event" not in body and "events" not in body
        if sample:
            events = [sample_event(sample_type(ps.handlers), now=self.clock())]
        elif "events" in body:
            events = body["events"]
            if not isinstance(events, list) or not events or len(events) > MAX_TEST_EVENTS:
                raise BadRequest(f'"events" must be an array of 1 to {MAX_TEST_EVENTS} events')
        else:
            events = [body["event"]]
        for i, ev in enumerate(events):
            if not isinstance(ev, dict) or not isinstance(ev.get("type"), str):
                raise BadRequest(f'event {i + 1}: expected an object with a "type" (track, identify, ...)')
        # Several events go to onBatch when there is one; a single event too when no
        # single-event handler takes its type (an onBatch-only plugin).
        batch = BATCH_HANDLER in ps.handlers and (
            len(events) > 1 or not any(h in ps.handlers for h in single_handlers(events[0]["type"]))
        )
        results = await self.pool.invoke(ps.version, [dict(e) for e in events], settings, batch=batch)
        results = [located(r, filename=f"{ps.version.name}.js", source=ps.version.source) for r in results]
        redactor = redactor_for(secret_values(fconfig, settings))
        return json_response(
            200,
            {
                "function": name,
                "version": ps.version.hash,
                "sample": sample,
                "batch": batch,
                "events": events,
                "load_error": first_line(
                    ps.error, self.config.plugins_dir
                ),  # the file on disk fails: older version ran
                "results": [result_dict(ev.get("type"), r, redactor) for ev, r in zip(events, results, strict=False)],
            },
        )

    # --- /reload, /replay, /deliveries ----------------------------------------------------

    async def _reload_route(self, request: Request) -> Response:
        return json_response(200, {"message": await self._reload()})

    async def _pause(self, request: Request) -> Response:
        """POST /pause or /resume {"function": NAME}."""
        if self.pauses is None:
            raise BadRequest("pausing is not available", status=409)
        function = _json_body(request).get("function")
        if not isinstance(function, str) or not function:
            raise BadRequest('"function" must be a function name')
        known = {s.name for s in self.registry.states()} | set(self.config.functions)
        if function not in known and function not in self.pauses:
            raise BadRequest(
                f"no function named {function!r} (known: {', '.join(sorted(known)) or 'none'})", status=404
            )
        if request.path.rstrip("/").endswith("/pause"):
            changed = await self.pauses.pause(function)
            if changed:
                log.info("function_paused", function=function)
            return json_response(200, {"function": function, "paused": True, "changed": changed})
        woken = await self.pauses.resume(function)
        if woken is not None:
            log.info("function_resumed", function=function, deliveries=woken)
        return json_response(
            200, {"function": function, "paused": False, "changed": woken is not None, "deliveries": woken or 0}
        )

    async def _replay(self, request: Request) -> Response:
        body = _json_body(request) if request.body.strip() else {}
        function, delivery_id = body.get("function"), body.get("id")
        if function is not None and not isinstance(function, str):
            raise BadRequest('"function" must be a string')
        if delivery_id is not None and (not isinstance(delivery_id, int) or isinstance(delivery_id, bool)):
            raise BadRequest('"id" must be an integer')
        await self.require_function(function)
        if delivery_id is not None and not 0 < delivery_id < 2**63:  # names nothing (and would not bind)
            return json_response(200, {"replayed": 0})
        n = await self.store.replay(function=function, delivery_id=delivery_id)
        return json_response(200, {"replayed": n})

    async def _deliveries(self, request: Request) -> Response:
        q = request.query
        n = _int(q.get("n"), "n", 20, 1, 10_000)
        function, state = q.get("function") or None, q.get("state") or None
        await self.require_function(function)
        message_id = q.get("message_id") or None
        if state is not None and state not in DELIVERY_STATES:
            raise BadRequest(f"unknown state {state!r} (known: {', '.join(DELIVERY_STATES)})")
        if state == "retrying":
            # Not a stored state: pending (or leased) deliveries that already failed once.
            rows = [
                r
                for st in ("pending", "leased")
                for r in await self.store.deliveries(
                    function=function, state=st, limit=min(10 * n, 10_000), message_id=message_id
                )
                if r.attempts > 0
            ]
            rows = sorted(rows, key=lambda r: r.created_at, reverse=True)[:n]
        else:
            rows = await self.store.deliveries(function=function, state=state, limit=n, message_id=message_id)
        return json_response(200, {"now": self.clock(), "deliveries": [plain(r) for r in rows]})

    async def _delivery(self, raw_id: str) -> Response:
        if not raw_id.isdigit():
            raise BadRequest(f"not a delivery id: {raw_id!r}")
        # An id past SQLite's INTEGER names nothing (and would not bind).
        detail = await self.store.delivery(int(raw_id)) if len(raw_id) < 19 or int(raw_id) < 2**63 else None
        if detail is None:
            raise BadRequest(f"no delivery {raw_id}", status=404)
        out = plain(detail.summary)
        out |= {
            "now": self.clock(),
            "event": detail.event,
            "history": [
                {**{k: v for k, v in plain(a).items() if k != "detail"}, "at": a.time, "record": parse_detail(a.detail)}
                for a in detail.attempts
            ],
        }
        return json_response(200, out)

    # --- /metrics -------------------------------------------------------------------------

    async def _metrics(self, request: Request) -> Response:
        return Response(
            status=200,
            body=(await self.metrics_text()).encode(),
            content_type="text/plain; version=0.0.4; charset=utf-8",
        )

    async def metrics_text(self) -> str:
        """Prometheus text for /metrics (also served on admin.metrics_listen by the daemon)."""
        now = self.clock()
        stats = await self.store.stats()
        pool = self.pool.statistics()
        intake = self._intake_status(now, []) if self.intake is not None else {}
        deliveries = {}
        for name, fs in stats.functions.items():
            for state in ("delivered", "discarded", "filtered", "pending", "dead"):
                deliveries[(name, state)] = int(getattr(fs, state))
        gauges = Gauges(
            pending=stats.pending,
            leased=stats.leased,
            dead=stats.dead,
            oldest_pending_age_s=stats.oldest_pending_age_s or 0.0,
            deliveries=deliveries,
            intake_requests={str(k): int(v) for k, v in (intake.get("requests") or {}).items()},
            intake_events={k: int(intake.get(k, 0)) for k in ("accepted", "duplicate", "rejected")} if intake else {},
            runners_alive=int(getattr(pool, "alive", 0) or 0),
            runner_restarts=int(getattr(pool, "restarts", 0) or 0),
            functions_live=self.functions.live(),
            uptime_s=max(0.0, now - self.started_at),
        )
        return render_prometheus(self.metrics.snapshot(now), gauges)


def plain(value: Any) -> Any:
    """Dataclasses, enums, mappings and tuples -> JSON-safe data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def level_at_least(level: str | None, minimum: str | None) -> bool:
    """Whether a log record at `level` passes `--level minimum` (unknown levels match exactly)."""
    if not minimum:
        return True
    try:
        return LEVELS.index((level or "log").lower()) >= LEVELS.index(minimum.lower())
    except ValueError:
        return (level or "").lower() == minimum.lower()


def result_dict(event_type: Any, r: InvocationResult, redact: Redactor) -> dict[str, Any]:
    """One test result: the return value, logs, error (name and message) and URLs redacted."""
    return {
        "type": event_type,
        "outcome": r.outcome.value,
        "return": redact.value(r.value),
        "error": None
        if r.error_name is None
        else {"name": redact(r.error_name), "message": redact(r.error_message or "")}
        | ({"stack": redact(r.stack)} if r.stack else {}),
        "logs": [{"level": ln.level, "message": redact(ln.message), "time": ln.time} for ln in r.logs],
        "requests": [
            {**plain(q), "url": redact(q.url), "error": redact(q.error) if q.error else None} for q in r.requests
        ],
        "duration_ms": r.duration_ms,
    }


def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise BadRequest(f"the request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _int(raw: str | None, name: str, default: int | None, lo: int, hi: int | None) -> Any:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name}: expected an integer, got {raw!r}") from None
    if value < lo or (hi is not None and value > hi):
        raise BadRequest(f"{name}: must be between {lo} and {hi}" if hi is not None else f"{name}: must be >= {lo}")
    return value


def storage_status(stats: StoreStats) -> dict[str, Any]:
    """The store's condition for status: "ok", or "storage full" & co. with the failing error."""
    fault = stats.fault
    out: dict[str, Any] = {
        "condition": "ok" if fault is None else fault.condition,
        "logs_buffered": stats.logs_buffered,
        "logs_dropped": stats.logs_dropped,
    }
    if fault is not None:
        out.update(failing=fault.what, error=fault.message, since=fault.since)
    return out
