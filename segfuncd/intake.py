"""The Segment HTTP Tracking API: /v1/* routes, auth, gzip, batch rejections, 503 when full.

What lives here: turning a `server.Request` into events handed to `Store.accept`, and the
answer. What does not: HTTP parsing and limits (server.py), the event rules (spec.py),
durability and dedupe (store/).

Rules:
1. Answer 200 only after `store.accept` returned: the events are committed (or were
   already, as duplicates of a messageId the same sender sent in the last 24 h: still a
   200, so an SDK retrying after a timeout does not deliver twice). The sender is the
   named source (any of its write keys), or the write key itself for the unnamed default
   source; another sender's event with the same messageId is a different event.
2. Nothing valid is lost because something beside it is bad: a batch commits its valid
   items and lists the rejected ones (`{"success": true, "rejected": [...]}`); only an
   all-invalid batch is a 400.
3. Limits are on the decompressed body (a 1 KB gzip bomb must not become 1 GB of RAM).
4. Every refusal is a JSON `{"success": false, "message": ...}` naming the field or header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import structlog
import trio

from .errors import Backpressure, IntakeError, SegfuncdError, StoreError
from .peers import TrustedProxies, client_address, from_browser
from .refusals import RefusalCount, Refusals, reason_for
from .server import (
    HttpServer,
    Request,
    Response,
    ServerLimits,
    json_response,
    open_tcp_listeners_for,
    open_unix_listener,
    serve_http,
)
from .spec import EVENT_TYPES, MAX_BATCH_BYTES, Unrepresentable, from_epoch, prepare_batch, prepare_event, route_event
from .store import NewEvent

log = structlog.get_logger("segfuncd.intake")

DEFAULT_UNIX_MODE = 0o660
DEFAULT_LIMITS = ServerLimits(max_body_bytes=MAX_BATCH_BYTES)
_OK = Response(status=200, body=b'{"success":true}')
# analytics.js (analytics-next) posts to the first letter of the type, /v1/t, /v1/p, ...,
# and batches to /v1/b (packages/browser/src/plugins/segmentio/index.ts, batched-dispatcher.ts).
_SINGLE_PATHS = {f"/v1/{t}": t for t in EVENT_TYPES} | {f"/v1/{t[0]}": t for t in EVENT_TYPES}
_BATCH_PATHS = ("/v1/batch", "/v1/import", "/v1/b")
# analytics.js posts text/plain so that browsers skip the CORS preflight.
_JSON_TYPES = ("application/json", "text/plain")
_CORS_ALLOW_HEADERS = "Content-Type, Authorization, Content-Encoding"

# The functions that receive new events now (files present and enabled); asked once per request,
# then each event's `integrations` picks among them (spec.route_event).
Routable = Callable[[], Sequence[str]]
# (function, source) -> does this function take events of this source ([functions.X] sources)
Connected = Callable[[str, str], bool]


class _Store(Protocol):
    """The part of `store.Store` intake uses."""

    async def accept(self, events: list[NewEvent]) -> list[bool]: ...

    @property
    def healthy(self) -> bool: ...

    @property
    def pending_count(self) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class IntakeStatistics:
    """What intake has seen since start (status, `--json` and /metrics render this)."""

    requests: Mapping[int, int] = field(default_factory=dict)  # HTTP status -> responses sent
    events_accepted: int = 0  # newly committed
    events_duplicate: int = 0  # acknowledged, already stored (messageId seen before)
    events_rejected: int = 0  # refused by validation (single calls and batch items)
    draining: bool = False
    refused: Mapping[str, RefusalCount] = field(default_factory=dict)  # reason -> last 5 min / since start
    sources: Mapping[str, SourceCounts] = field(default_factory=dict)  # source ("" = default) -> counts


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceCounts:
    """What one source sent since start."""

    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0


class Intake:
    """The request handler for the tracking API; serve it with `serve_intake`."""

    def __init__(
        self,
        store: _Store,
        *,
        routable: Routable,
        write_keys: tuple[str, ...] = (),
        sources: Mapping[str, tuple[str, ...]] | None = None,
        connected: Connected | None = None,
        allow_remote_without_key: bool = False,
        cors_origins: tuple[str, ...] = (),
        trusted_proxies: tuple[str, ...] = (),
        clock: Callable[[], float] = time.time,
        max_body_bytes: int = MAX_BATCH_BYTES,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        self.store = store
        self.routable = routable
        # write key -> source ("" is the unnamed default source of `write_keys`).
        self.key_sources: dict[str, str] = {}
        self.write_keys: frozenset[str] = frozenset()
        self.set_keys(write_keys, sources)
        self._key_digests: dict[str, str] = {}  # write key -> its digest (dedupe_scope)
        self.connected = connected
        self.allow_remote_without_key = allow_remote_without_key
        self.cors_origins = frozenset(cors_origins)
        self.trusted_proxies = TrustedProxies.parse(trusted_proxies)
        self.clock = clock
        self.max_body_bytes = max_body_bytes
        self.new_id = new_id or (lambda: f"api-{uuid.uuid4()}")
        self.draining = False  # set by the daemon at shutdown: /v1 answers 503
        self._requests: Counter[int] = Counter()
        self._accepted = 0
        self._duplicate = 0
        self._rejected = 0
        self._by_source: dict[str, list[int]] = {}  # source -> [accepted, duplicate, rejected]
        self.refusals = Refusals(log=log.warning)

    def set_keys(self, write_keys: Iterable[str], sources: Mapping[str, tuple[str, ...]] | None) -> None:
        """The accepted write keys: `write_keys` (the unnamed default source) and each named source's."""
        key_sources = dict.fromkeys(write_keys, "")  # write key -> source; "" is the default source
        for name, keys in (sources or {}).items():
            key_sources.update(dict.fromkeys(keys, name))
        self.key_sources = key_sources
        self.write_keys = frozenset(key_sources)

    def _source_counts(self, source: str) -> list[int]:
        counts = self._by_source.get(source)
        if counts is None:
            counts = self._by_source[source] = [0, 0, 0]
        return counts

    def statistics(self) -> IntakeStatistics:
        """A snapshot of the counters."""
        return IntakeStatistics(
            requests=dict(self._requests),
            events_accepted=self._accepted,
            events_duplicate=self._duplicate,
            events_rejected=self._rejected,
            draining=self.draining,
            refused=self.refusals.statistics(),
            sources={s: SourceCounts(accepted=a, duplicate=d, rejected=r) for s, (a, d, r) in self._by_source.items()},
        )

    async def handle(self, request: Request) -> Response:
        """Answer one request (the `server.Handler` of the intake listeners)."""
        try:
            response = await self._route(request)
        except IntakeError as exc:
            response = _refusal(exc.status, exc.message)
            reason = "origin" if exc.field == "origin" else reason_for(exc.status)
            if reason is not None:
                self._refused(reason, exc.status, request, exc.message)
        except Backpressure as exc:
            response = _refusal(503, str(exc), (("retry-after", str(exc.retry_after_s)),))
        except StoreError as exc:
            log.error("intake_store_failed", error=str(exc))
            response = _refusal(503, f"storage is failing: {exc}", (("retry-after", "5"),))
        self._requests[response.status] += 1
        origin = request.headers.get("origin")
        if origin is not None and self.cors_origins:
            response = self._with_cors(response, origin)
        return response

    def _refused(self, reason: str, status: int, request: Request, message: str) -> None:
        client = client_address(request.peer, request.headers, self.trusted_proxies)
        self.refusals.record(reason, status=status, client=client, message=message)

    def server_refused(self, status: int, peer: str | None, message: str) -> None:
        """The HTTP server answered an error itself (body over the limit, broken HTTP): count it."""
        reason = reason_for(status)
        if reason is not None:
            self._requests[status] += 1
            self.refusals.record(reason, status=status, client=peer, message=message)

    async def _route(self, request: Request) -> Response:
        path = request.path
        method = request.method
        if path == "/health":
            if method != "GET" and method != "HEAD":
                return _refusal(405, "/health: use GET", (("allow", "GET"),))
            return self._health()
        type = _SINGLE_PATHS.get(path)
        if type is None and path not in _BATCH_PATHS:
            return _refusal(404, f"no such endpoint: {path}")
        if method == "OPTIONS":
            return self._preflight(request)
        if method != "POST":
            return _refusal(405, f"{path}: use POST", (("allow", "POST, OPTIONS"),))
        if self.draining:
            return _refusal(503, "shutting down; retry shortly", (("retry-after", "5"),))
        origin = request.headers.get("origin")
        if origin is not None and self.cors_origins and not self._origin_allowed(origin):
            # CORS alone only stops a browser from reading the answer: a text/plain POST
            # or sendBeacon would still be delivered. With cors_origins set, refuse it.
            raise IntakeError(403, f"origin not allowed: {origin!r} is not in intake.cors_origins", field="origin")
        if not self.write_keys and not request.local and not self.allow_remote_without_key:
            raise IntakeError(
                403, "no write keys are configured, so only loopback and unix-socket clients are accepted"
            )
        header_key = _basic_username(request.headers.get("authorization"))
        if header_key is not None and self.write_keys and header_key not in self.write_keys:
            raise IntakeError(401, "unknown write key (Authorization header)")
        body, size, odd = self._decode(request)
        source = ""
        used_key = header_key
        if header_key is None and self.write_keys:
            key = body.get("writeKey") if isinstance(body, dict) else None
            if not key or not isinstance(key, str):
                raise IntakeError(
                    401, "missing write key: send it as the HTTP Basic username or as writeKey in the body"
                )
            if key not in self.write_keys:
                raise IntakeError(401, "unknown write key (writeKey)")
            source = self.key_sources[key]
            used_key = key
        elif header_key is not None and self.write_keys:
            source = self.key_sources[header_key]
        scope = self.dedupe_scope(source, used_key)
        received_at = from_epoch(self.clock())
        browser = from_browser(request.headers)
        ip = client_address(request.peer, request.headers, self.trusted_proxies)
        if type is not None:
            try:
                event = prepare_event(
                    body,
                    type=type,
                    received_at=received_at,
                    new_id=self.new_id,
                    size=size,
                    browser=browser,
                    ip=ip,
                    check_json=odd,
                )
            except IntakeError:
                self._rejected += 1
                self._source_counts(source)[2] += 1
                raise  # logged, rate-limited, as a refusal by handle()
            await self._commit([event], source, scope)
            return _OK
        return await self._batch(body, size, received_at, request, source, scope, browser=browser, ip=ip, odd=odd)

    def dedupe_scope(self, source: str, write_key: str | None) -> str:
        """Whose messageIds an event shares the dedupe window with: "@" + its named source (any
        of the source's keys), else a digest of its write key ("" without write keys). The key
        itself is a secret: only a digest goes to the store."""
        if source:
            return "@" + source
        if not self.write_keys or not write_key:
            return ""
        found = self._key_digests.get(write_key)
        if found is None:
            found = hashlib.sha256(write_key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
            if len(self._key_digests) < 1024:
                self._key_digests[write_key] = found
        return found

    async def _batch(
        self,
        body: Any,
        size: int,
        received_at: datetime,
        request: Request,
        source: str,
        scope: str,
        *,
        browser: bool,
        ip: str | None,
        odd: bool,
    ) -> Response:
        path = request.path
        accepted, rejections = prepare_batch(
            body,
            received_at=received_at,
            new_id=self.new_id,
            body_size=size,
            owned=True,
            browser=browser,
            ip=ip,
            check_json=odd,
        )
        rejected = [{"index": r.index, "message": r.message} for r in rejections]
        if rejected:
            self._rejected += len(rejected)
            self._source_counts(source)[2] += len(rejected)
            log.warning(
                "intake_rejected",
                path=path,
                rejected=len(rejected),
                accepted=len(accepted),
                index=rejected[0]["index"],
                message=rejected[0]["message"],
            )
        if not accepted:
            message = f"all {len(rejected)} events were rejected"
            self._refused("malformed", 400, request, message)
            return json_response(400, {"success": False, "message": message, "rejected": rejected})
        await self._commit([event for _, event in accepted], source, scope)
        return json_response(200, {"success": True, "rejected": rejected})

    async def _commit(self, events: list[dict[str, Any]], source: str, scope: str) -> None:
        names = self.routable()
        connected = self.connected
        if connected is not None:
            names = [f for f in names if connected(f, source)]
        new_events = [
            NewEvent(
                message_id=e["messageId"],
                type=e["type"],
                body=e,
                functions=route_event(e, names),
                source=source,
                dedupe_scope=scope,
            )
            for e in events
        ]
        stored = await self.store.accept(new_events)
        new = sum(stored)
        self._accepted += new
        self._duplicate += len(stored) - new
        counts = self._source_counts(source)
        counts[0] += new
        counts[1] += len(stored) - new

    def _decode(self, request: Request) -> tuple[Any, int, bool]:
        """Content type, gzip and JSON -> (parsed body, its decompressed size, odd); IntakeError names the problem.

        odd: the body may hold lone surrogates or unrepresentable numbers (spec.json_problem finds them).
        """
        ctype = request.headers.get("content-type")
        if ctype is not None:
            base = ctype.split(";", 1)[0].strip().lower()
            if base not in _JSON_TYPES and not base.endswith("+json"):
                raise IntakeError(400, f"content-type: expected application/json, got {ctype!r}", field="content-type")
        raw = request.body
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding == "gzip":
            raw = _gunzip(raw, self.max_body_bytes)
        elif encoding != "identity":
            raise IntakeError(
                400, f"content-encoding: only gzip is supported, got {encoding!r}", field="content-encoding"
            )
        if len(raw) > self.max_body_bytes:
            raise IntakeError(413, f"body is {len(raw)} bytes; the limit is {self.max_body_bytes} bytes")
        if not raw:
            raise IntakeError(400, "empty body: expected a JSON object")
        try:
            body, odd = _parse_json(raw.decode("utf-8"))
            return body, len(raw), odd
        except (ValueError, UnicodeDecodeError) as exc:
            raise IntakeError(400, f"malformed JSON: {exc}") from None
        except RecursionError:
            raise IntakeError(400, "malformed JSON: nested too deeply") from None

    def _health(self) -> Response:
        healthy = bool(self.store.healthy) and not self.draining
        fault = getattr(self.store, "fault", None)
        obj = {
            "ok": healthy,
            "pending": self.store.pending_count,
            "draining": self.draining,
            "storage": "ok" if fault is None else fault.condition,  # "storage full", "database corrupt", ...
        }
        if fault is not None:
            obj["error"] = fault.message
        return json_response(200 if healthy else 503, obj)

    def _preflight(self, request: Request) -> Response:
        origin = request.headers.get("origin", "")
        if not self._origin_allowed(origin):
            raise IntakeError(403, f"origin not allowed: {origin!r}", field="origin")
        asked = request.headers.get("access-control-request-headers")
        return Response(
            status=204,
            headers=(
                ("access-control-allow-methods", "POST, OPTIONS"),
                ("access-control-allow-headers", asked or _CORS_ALLOW_HEADERS),
                ("access-control-max-age", "86400"),
            ),
        )

    def _origin_allowed(self, origin: str) -> bool:
        return bool(origin) and ("*" in self.cors_origins or origin in self.cors_origins)

    def _with_cors(self, response: Response, origin: str) -> Response:
        if not self._origin_allowed(origin):
            return response
        headers = (*response.headers, ("access-control-allow-origin", origin), ("vary", "Origin"))
        return Response(status=response.status, body=response.body, headers=headers, content_type=response.content_type)


def _no_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not, and SQLite storage refuses them.
    raise ValueError(f"{name} is not valid JSON")


_odd_numbers = [0]  # Unrepresentable numbers decoded so far (decoding is synchronous: no race)


def _parse_float(text: str) -> Any:
    value = float(text)
    if math.isfinite(value):
        return value
    _odd_numbers[0] += 1
    return Unrepresentable(text)  # 1e400: only the item holding it is rejected


# (An integer over Python's 4,300-digit limit fails the whole body: a 400, not a 500.)
_json_decode = json.JSONDecoder(parse_constant=_no_constant, parse_float=_parse_float).decode
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _parse_json(text: str) -> tuple[Any, bool]:
    """(value, whether the value may hold lone surrogates or Unrepresentable numbers)."""
    before = _odd_numbers[0]
    value = _json_decode(text)
    odd = _odd_numbers[0] != before or ("\\u" in text and _SURROGATE_ESCAPE.search(text) is not None)
    return value, odd


def _refusal(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return json_response(status, {"success": False, "message": message}, headers)


def _basic_username(header: str | None) -> str | None:
    """The username of `Authorization: Basic ...` (Segment's write key), else None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise IntakeError(401, "authorization: malformed Basic credentials", field="authorization") from None
    return decoded.partition(":")[0]


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress at most `limit` bytes; more is a 413, so a zip bomb costs `limit` of RAM."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise IntakeError(400, f"content-encoding: body is not valid gzip: {exc}", field="content-encoding") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise IntakeError(413, f"decompressed body exceeds the limit of {limit} bytes")
    if not inflater.eof:
        raise IntakeError(400, "content-encoding: gzip body is truncated", field="content-encoding")
    return out


async def serve_intake(
    intake: Intake,
    *,
    listen: str,
    unix_socket: Path | None = None,
    unix_mode: int = DEFAULT_UNIX_MODE,
    limits: ServerLimits = DEFAULT_LIMITS,
    task_status: trio.TaskStatus[HttpServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Open the TCP (`listen`, "" for none) and Unix listeners and serve `intake` until cancelled.

    `task_status.started(server)` once every listener is open; `server.addresses` tells
    the bound ports (useful with port 0).
    """
    listeners = await open_tcp_listeners_for(listen)
    try:
        if unix_socket is not None:
            listeners.append(await open_unix_listener(unix_socket, mode=unix_mode))
    except BaseException:
        for listener in listeners:
            await listener.aclose()
        raise
    if not listeners:
        raise SegfuncdError("intake has nothing to listen on: both intake.listen and intake.unix_socket are empty")
    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            lambda task_status: serve_http(
                intake.handle, listeners, limits=limits, on_error=intake.server_refused, task_status=task_status
            )
        )
        log.info("intake_listening", addresses=[_show_address(a) for a in server.addresses])
        task_status.started(server)


def _show_address(address: object) -> str:
    """("127.0.0.1", 8088) -> "http://127.0.0.1:8088"; a Unix path -> "unix:/path"."""
    if isinstance(address, tuple) and len(address) >= 2:
        host = f"[{address[0]}]" if ":" in str(address[0]) else address[0]
        return f"http://{host}:{address[1]}"
    return f"unix:{address}"
