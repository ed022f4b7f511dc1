"""The h11 <-> trio HTTP/1.1 loop shared by intake and the admin socket.

What lives here: listeners (TCP, Unix with a mode), the per-connection request loop with
keep-alive, limits, error -> status mapping, and streaming (chunked) responses. What does
not: routing, auth, JSON bodies beyond `json_response` (intake.py, admin.py).

Rules of the loop (after h11's examples/trio-server.py):

1. Every wait on the peer is bounded. Waiting for the first byte of a request is bounded by
   `idle_timeout_s` (then the connection closes silently); from that byte until the whole
   body is in, by `read_timeout_s` (then 408); each write by `write_timeout_s`. A slow or
   half-open client therefore holds one connection slot for a bounded time and never
   blocks anyone else: every connection is its own task.
2. Sizes are bounded before memory is spent: headers by h11's `max_incomplete_event_size`
   (431), bodies by Content-Length up front or by counting chunks (413, then close, as the
   unread rest of the body cannot be skipped safely).
3. Over `max_connections`, a new connection gets a 503 and is closed at once, so the
   kernel backlog never hides an overload.
4. Graceful stop: cancelling `serve_http` closes the listeners and idle connections at
   once, but a request already being read or handled (e.g. waiting for its SQLite commit)
   finishes and gets its answer, bounded by `stop_grace_s`. A client must never see a
   dropped connection for an event that was committed. Connections therefore live in a
   shielded nursery that the stop closes deliberately, instead of being cancelled blindly.
5. The hot path is lean: one cancel scope per connection (its deadline moves with the
   phase), one `receive_some` per request in the common case, and a single `send_all` for
   status line + headers + body.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import math
import os
import socket as _stdsocket
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import h11
import structlog
import trio

from .config import parse_address
from .errors import SegfuncdError

log = structlog.get_logger("segfuncd.server")

DEFAULT_MAX_HEADER_BYTES = 16 * 1024
DEFAULT_MAX_BODY_BYTES = 512 * 1024
RECEIVE_SIZE = 64 * 1024
LINGER_S = 1.0  # how long an error response waits for the client to stop sending
LINGER_MAX_BYTES = 1024 * 1024
_SERVER_HEADER = (b"server", b"segfuncd")
# accept() errors that mean "the machine is short of something", retried after a pause
# (the same list as trio.serve_listeners).
_ACCEPT_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLimits:
    """Bounds on what one connection may cost; see the module docstring, rule 1 to 3."""

    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES  # request line + headers
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # as sent on the wire (before any gzip)
    read_timeout_s: float = 30.0  # first byte of a request -> whole body received
    idle_timeout_s: float = 60.0  # keep-alive wait for the next request
    write_timeout_s: float = 30.0  # one send_all of the response (or of one chunk)
    handler_timeout_s: float = 60.0  # the handler's own work (e.g. waiting for a commit)
    max_connections: int = 1024
    stop_grace_s: float = 10.0  # after a stop, how long running requests may take to finish

    def __post_init__(self) -> None:
        for name in ("max_header_bytes", "max_body_bytes", "max_connections"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ServerLimits.{name}: must be positive, got {getattr(self, name)}")
        for name in ("read_timeout_s", "idle_timeout_s", "write_timeout_s", "handler_timeout_s", "stop_grace_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ServerLimits.{name}: must be positive, got {getattr(self, name)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One complete request; header names are lower case, repeated headers joined by ", "."""

    method: str
    target: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    peer: str | None  # client IP; None on a Unix socket
    local: bool  # loopback or Unix socket


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """A response; an async-iterator body is streamed with chunked encoding."""

    status: int
    body: bytes | AsyncIterator[bytes] = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"


Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStatistics:
    """Connection counters of one `HttpServer`."""

    connections_open: int  # connections being served now
    connections_total: int  # accepted since start
    connections_refused: int  # answered 503 because of max_connections
    requests_total: int  # responses sent (any status)


def json_response(status: int, obj: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """A JSON response with compact separators."""
    return Response(status=status, body=json.dumps(obj, separators=(",", ":")).encode(), headers=headers)


# --- listeners ------------------------------------------------------------------------


async def open_tcp_listeners_for(address: str, *, backlog: int = 1024) -> list[trio.SocketListener]:
    """Listeners for "host:port" ("" -> none); SegfuncdError names the address on failure."""
    if not address:
        return []
    try:
        host, port = parse_address(address)
    except ValueError as exc:
        raise SegfuncdError(f"cannot listen on {address!r}: {exc}") from exc
    try:
        return await trio.open_tcp_listeners(port, host=host, backlog=backlog)
    except OSError as exc:
        raise SegfuncdError(f"cannot listen on {address}: {exc.strerror or exc}") from exc


async def open_unix_listener(path: Path, *, mode: int, backlog: int = 1024) -> trio.SocketListener:
    """Listen on a Unix socket at `path` with permissions `mode`.

    An existing socket file is replaced only when nothing answers on it (a stale file left by
    a crash); a live one, or a file that is not a socket, is refused with SegfuncdError. The
    socket is bound under a temporary name, chmod-ed, then renamed into place, so it is
    never reachable with the wrong permissions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = path.lstat()
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise SegfuncdError(f"{path}: exists and is not a socket; refusing to replace it")
        if await _unix_socket_answers(path):
            raise SegfuncdError(f"{path}: another process is listening on this socket")
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    sock = trio.socket.socket(_stdsocket.AF_UNIX, _stdsocket.SOCK_STREAM)
    try:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        await sock.bind(str(tmp))
        os.chmod(tmp, mode)
        sock.listen(backlog)
        os.replace(tmp, path)
    except OSError as exc:
        sock.close()
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise SegfuncdError(f"cannot listen on {path}: {exc.strerror or exc}") from exc
    listener = trio.SocketListener(sock)
    # getsockname() reports the temporary name; remember where clients find it.
    listener.unix_path = str(path)  # type: ignore[attr-defined]
    return listener


async def _unix_socket_answers(path: Path) -> bool:
    probe = trio.socket.socket(_stdsocket.AF_UNIX, _stdsocket.SOCK_STREAM)
    try:
        with trio.move_on_after(2):
            await probe.connect(str(path))
            return True
        return True  # connect hung: something is there (a full backlog), do not delete it
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    finally:
        probe.close()


# --- serving --------------------------------------------------------------------------


async def serve_http(
    handler: Handler,
    listeners: list[trio.SocketListener],
    *,
    limits: ServerLimits = ServerLimits(),
    task_status: trio.TaskStatus[HttpServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `handler` on `listeners` until cancelled; `task_status.started(server)` once listening.

    Never returns normally. On cancellation, listeners close, idle connections close, and
    running requests finish within `limits.stop_grace_s` (rule 4 of the module docstring).
    """
    server = HttpServer(handler, limits=limits)
    await server.serve(listeners, task_status=task_status)


class HttpServer:
    """The state shared by all connections of one `serve_http` call."""

    def __init__(self, handler: Handler, *, limits: ServerLimits) -> None:
        self.handler = handler
        self.limits = limits
        self.addresses: list[Any] = []  # per listener: (host, port, ...) or a Unix path
        self._connections: set[_Connection] = set()
        self._stopping = False
        self._total = 0
        self._refused = 0
        self._requests = 0
        self._on_empty: Callable[[], None] | None = None  # set by _stop

    def statistics(self) -> ServerStatistics:
        """Connection and request counters so far."""
        return ServerStatistics(
            connections_open=len(self._connections),
            connections_total=self._total,
            connections_refused=self._refused,
            requests_total=self._requests,
        )

    async def serve(self, listeners: list[trio.SocketListener], *, task_status: trio.TaskStatus[HttpServer]) -> None:
        self.addresses = [getattr(ln, "unix_path", None) or ln.socket.getsockname() for ln in listeners]
        async with trio.open_nursery() as outer:
            guard = trio.CancelScope(shield=True)  # the connections' nursery: stopped by _stop only
            conns: list[trio.Nursery] = []

            async def hold_connections(task_status: trio.TaskStatus[None]) -> None:
                with guard:
                    async with trio.open_nursery() as nursery:
                        conns.append(nursery)
                        task_status.started()
                        await trio.sleep_forever()

            await outer.start(hold_connections)
            try:
                async with trio.open_nursery() as accepting:
                    for listener in listeners:
                        accepting.start_soon(self._accept_loop, listener, conns[0])
                    task_status.started(self)
            finally:
                with trio.CancelScope(shield=True):
                    for listener in listeners:
                        await listener.aclose()
                self._stop(guard)

    def _stop(self, guard: trio.CancelScope) -> None:
        """Close idle connections now, let busy ones finish, then end the nursery."""
        self._stopping = True
        for connection in list(self._connections):
            if connection.phase == "idle":
                connection.scope.cancel()
        guard.deadline = trio.current_time() + self.limits.stop_grace_s
        # The nursery only sleeps once its connections are done: end it when they are.
        if not self._connections:
            guard.cancel()
        self._on_empty = guard.cancel

    async def _accept_loop(self, listener: trio.SocketListener, nursery: trio.Nursery) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                    raise
                log.error("accept_failed", error=str(exc))
                await trio.sleep(0.1)
                continue
            self._total += 1
            if len(self._connections) >= self.limits.max_connections:
                self._refused += 1
                nursery.start_soon(self._refuse, stream)
            else:
                connection = _Connection(self, stream)
                self._connections.add(connection)
                nursery.start_soon(self._serve_connection, connection)

    async def _refuse(self, stream: trio.SocketStream) -> None:
        """Rule 3: say 503 and close, so an overload is visible to the client."""
        with trio.move_on_after(1):
            try:
                await stream.send_all(_REFUSED)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        await trio.aclose_forcefully(stream)

    async def _serve_connection(self, connection: _Connection) -> None:
        try:
            await connection.run()
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            pass  # the client went away: nothing to answer
        finally:
            self._connections.discard(connection)
            await trio.aclose_forcefully(connection.stream)
            if self._on_empty is not None and not self._connections:
                self._on_empty()


_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nserver: segfuncd\r\ncontent-type: application/json\r\n"
    b"retry-after: 1\r\nconnection: close\r\ncontent-length: 62\r\n\r\n"
    + b'{"success":false,"message":"too many connections; retry soon"}'
)


def _describe_peer(stream: trio.SocketStream) -> tuple[str | None, bool]:
    sock = stream.socket
    if sock.family == _stdsocket.AF_UNIX:
        return None, True
    try:
        host = sock.getpeername()[0]
    except OSError:
        return None, False
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host, False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return host, ip.is_loopback


class _BodyTooLarge(Exception):
    """The body exceeds max_body_bytes."""


# What a connection is doing; when its deadline fires, the phase decides the answer.
_ANSWER_ON_TIMEOUT = {"idle": None, "reading": (408, "timed out reading the request"),
                      "handling": (503, "timed out handling the request"), "writing": None}


class _Connection:
    """One client connection: a loop of read request -> handle -> write response."""

    def __init__(self, server: HttpServer, stream: trio.SocketStream) -> None:
        self.server = server
        self.limits = server.limits
        self.stream = stream
        self.peer, self.local = _describe_peer(stream)
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes)
        self.scope = trio.CancelScope()
        self.phase = "idle"

    def _enter(self, phase: str, timeout: float) -> None:
        self.phase = phase
        self.scope.deadline = trio.current_time() + timeout

    async def _fill(self) -> None:
        self.conn.receive_data(await self.stream.receive_some(RECEIVE_SIZE))  # b"" tells h11 EOF

    async def _next(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            await self._fill()

    async def run(self) -> None:
        with self.scope:
            await self._loop()
            return
        # The scope's deadline fired (or a stop cancelled an idle connection).
        answer = _ANSWER_ON_TIMEOUT[self.phase]
        if answer is not None:
            with trio.CancelScope(deadline=trio.current_time() + self.limits.write_timeout_s):
                await self._send_error(*answer)

    async def _loop(self) -> None:
        conn = self.conn
        limits = self.limits
        while True:
            first = conn.next_event()  # a pipelined request may already be buffered
            if first is h11.NEED_DATA:
                self._enter("idle", limits.idle_timeout_s)
                await self._fill()
                first = None
            self._enter("reading", limits.read_timeout_s)
            try:
                request = await self._read_request(first)
            except h11.RemoteProtocolError as exc:
                await self._send_error(exc.error_status_hint, str(exc) or "bad request")
                return
            except _BodyTooLarge:
                await self._send_error(413, f"request body exceeds {limits.max_body_bytes} bytes")
                return
            if request is None:
                return  # clean EOF between requests
            self._enter("handling", limits.handler_timeout_s)
            try:
                response = await self.server.handler(request)
            except Exception:
                log.exception("handler_failed", method=request.method, path=request.path)
                response = json_response(500, {"success": False, "message": "internal error"})
            self._enter("writing", limits.write_timeout_s)
            if not isinstance(response.body, (bytes, bytearray)):
                await self._stream_response(response)
                return
            await self.stream.send_all(self._encode(response, request.method == "HEAD"))
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE or self.server._stopping:
                return  # MUST_CLOSE (HTTP/1.0, Connection: close), a half-read request, or a stop
            conn.start_next_cycle()

    async def _read_request(self, first: Any) -> Request | None:
        conn = self.conn
        event = first if first is not None else await self._next()
        if type(event) is not h11.Request:
            if isinstance(event, h11.ConnectionClosed):
                return None
            raise h11.RemoteProtocolError("expected a request", error_status_hint=400)  # pragma: no cover
        headers: dict[str, str] = {}
        # h11 bounds only a head that is still incomplete; one that arrived whole is
        # measured here, so the limit does not depend on how the bytes were split.
        head_size = len(event.target)
        for name, value in event.headers:
            head_size += len(name) + len(value) + 4
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        if head_size > self.limits.max_header_bytes:
            raise h11.RemoteProtocolError("request headers are too large", error_status_hint=431)
        limit = self.limits.max_body_bytes
        length = headers.get("content-length")
        if length is not None and int(length) > limit:  # h11 has checked it is digits
            raise _BodyTooLarge()
        if conn.they_are_waiting_for_100_continue:
            await self.stream.send_all(conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
        chunks: list[bytes] = []
        size = 0
        while True:
            part = await self._next()
            if type(part) is h11.Data:
                size += len(part.data)
                if size > limit:
                    raise _BodyTooLarge()
                chunks.append(part.data)
            elif type(part) is h11.EndOfMessage:
                break
            else:
                raise h11.RemoteProtocolError("connection closed in the middle of the request", error_status_hint=400)
        target = event.target.decode("latin-1")
        path, _, qs = target.partition("?")
        return Request(
            method=event.method.decode("latin-1"),
            target=target,
            path=path,
            query=dict(parse_qsl(qs)) if qs else {},
            headers=headers,
            body=chunks[0] if len(chunks) == 1 else b"".join(chunks),
            peer=self.peer,
            local=self.local,
        )

    def _head(self, response: Response, extra: tuple[tuple[bytes, bytes], ...]) -> bytes:
        """Status line + headers. Our own headers skip h11's regex validation (measurably
        slow on the hot path), so they are checked here for what could split a response."""
        headers = [_SERVER_HEADER, (b"content-type", response.content_type.encode("latin-1"))]
        for name, value in response.headers:
            if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
                raise ValueError(f"response header {name!r}: line breaks are not allowed")
            headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        headers.extend(extra)
        self.server._requests += 1
        event = h11.Response(status_code=response.status, headers=headers, _parsed=True)  # type: ignore[call-arg]
        return self.conn.send(event) or b""

    def _encode(self, response: Response, head_only: bool) -> bytes:
        body = bytes(response.body)  # type: ignore[arg-type]
        data = self._head(response, ((b"content-length", str(len(body)).encode()),))
        if body and not head_only:
            data += self.conn.send(h11.Data(data=body)) or b""
        return data + (self.conn.send(h11.EndOfMessage()) or b"")

    async def _stream_response(self, response: Response) -> None:
        """Chunked streaming until the iterator ends, the client leaves, or we are stopped."""
        body = response.body
        assert not isinstance(body, (bytes, bytearray))
        self.scope.deadline = math.inf  # a follower may wait long between chunks
        try:
            with trio.fail_after(self.limits.write_timeout_s):
                await self.stream.send_all(self._head(response, ((b"connection", b"close"),)))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_eof, nursery.cancel_scope)
                async for chunk in body:
                    if chunk:
                        with trio.fail_after(self.limits.write_timeout_s):
                            await self.stream.send_all(self.conn.send(h11.Data(data=chunk)) or b"")
                with trio.fail_after(self.limits.write_timeout_s):
                    await self.stream.send_all(self.conn.send(h11.EndOfMessage()) or b"")
                nursery.cancel_scope.cancel()
        except trio.TooSlowError:
            pass  # the client does not read: give up on it
        finally:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                with trio.CancelScope(shield=True):
                    await aclose()

    async def _watch_eof(self, scope: trio.CancelScope) -> None:
        # A follower (logs -f) may wait a long time between chunks: notice a gone client.
        try:
            while await self.stream.receive_some(RECEIVE_SIZE):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        scope.cancel()

    async def _send_error(self, status: int, message: str) -> None:
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return  # a response is already under way: all we can do is close
        self.phase = "writing"
        response = json_response(status, {"success": False, "message": message}, (("connection", "close"),))
        try:
            data = self._encode(response, False)
        except h11.LocalProtocolError:
            return
        await self.stream.send_all(data)
        await self._linger()

    async def _linger(self) -> None:
        """Half-close, then discard what the client still sends, briefly.

        Closing a socket with unread input makes the kernel send a RST, which can destroy
        the error response before the client reads it (a 413 for a body we refused to read).
        """
        try:
            await self.stream.send_eof()
            with trio.move_on_after(LINGER_S):
                received = 0
                while received < LINGER_MAX_BYTES and (data := await self.stream.receive_some(RECEIVE_SIZE)):
                    received += len(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
