"""serve_http and the per-connection loop; the rules are in the package docstring."""

from __future__ import annotations

import errno
import ipaddress
import math
import socket as _stdsocket
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import h11
import structlog
import trio

from .messages import Handler, Request, Response, ServerLimits, ServerStatistics, json_response

log = structlog.get_logger("segfuncd.server")

RECEIVE_SIZE = 64 * 1024
LINGER_S = 1.0  # how long an error response waits for the client to stop sending
LINGER_MAX_BYTES = 1024 * 1024
_SERVER_HEADER = (b"server", b"segfuncd")
# (status, client IP or None for a Unix socket, message) of an error the server answered itself.
ErrorHook = Callable[[int, str | None, str], None]

# accept() errors that mean "the machine is short of something", retried after a pause
# (the same list as trio.serve_listeners).
_ACCEPT_CAPACITY_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


async def serve_http(
    handler: Handler,
    listeners: list[trio.SocketListener],
    *,
    limits: ServerLimits | None = None,
    on_error: ErrorHook | None = None,
    task_status: trio.TaskStatus[HttpServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `handler` on `listeners` until cancelled; `task_status.started(server)` once listening.

    Never returns normally. On cancellation, listeners close, idle connections close, and
    running requests finish within `limits.stop_grace_s` (rule 4 of the module docstring).
    """
    server = HttpServer(handler, limits=limits or ServerLimits(), on_error=on_error)
    await server.serve(listeners, task_status=task_status)


class HttpServer:
    """The state shared by all connections of one `serve_http` call."""

    def __init__(self, handler: Handler, *, limits: ServerLimits, on_error: ErrorHook | None = None) -> None:
        self.handler = handler
        self.limits = limits
        self.on_error = on_error  # told of errors answered before the handler ran (413, 400, 408)
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
        if not listeners:
            raise ValueError("serve_http: no listeners to serve on")
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
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the client went away (reset, broken pipe): nothing to answer
        finally:
            self._connections.discard(connection)
            await trio.aclose_forcefully(connection.stream)
            if self._on_empty is not None and not self._connections:
                self._on_empty()


_REFUSED_BODY = b'{"success":false,"message":"too many connections; retry soon"}'
_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nserver: segfuncd\r\ncontent-type: application/json\r\n"
    b"retry-after: 1\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_REFUSED_BODY), _REFUSED_BODY)
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
_ANSWER_ON_TIMEOUT = {
    "idle": None,
    "reading": (408, "timed out reading the request"),
    "handling": (503, "timed out handling the request"),
    "writing": None,
}


class _Connection:
    """One client connection: a loop of read request -> handle -> write response."""

    def __init__(self, server: HttpServer, stream: trio.SocketStream) -> None:
        self.server = server
        self.limits = server.limits
        self.stream = stream
        self.peer, self.local = _describe_peer(stream)
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes)
        self.sock = stream.socket  # the hot path skips SocketStream's per-call wrappers
        self.scope = trio.CancelScope()
        self.phase = "idle"
        self._read_deadline_set = False

    def _enter(self, phase: str, timeout: float) -> None:
        self.phase = phase
        self.scope.deadline = trio.current_time() + timeout

    async def _fill(self) -> None:
        self.conn.receive_data(await self.sock.recv(RECEIVE_SIZE))  # b"" tells h11 EOF

    async def _send_all(self, data: bytes) -> None:
        with memoryview(data) as view:
            sent = 0
            while sent < len(view):
                sent += await self.sock.send(view[sent:])

    async def _next(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            # The read deadline starts at the first wait: a request that arrived whole
            # (the usual case) never pays for moving it.
            if not self._read_deadline_set:
                self._read_deadline_set = True
                self._enter("reading", self.limits.read_timeout_s)
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
            first: Any = conn.next_event()  # a pipelined request may already be buffered
            if first is h11.NEED_DATA:
                self._enter("idle", limits.idle_timeout_s)
                await self._fill()
                first = None
                self._read_deadline_set = False
            else:  # bytes were already here: the read deadline starts now
                self._read_deadline_set = True
                self.scope.deadline = trio.current_time() + limits.read_timeout_s
            self.phase = "reading"
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
            # One deadline for handling and writing: moving it costs more than the request.
            self._enter("handling", limits.handler_timeout_s + limits.write_timeout_s)
            try:
                response = await self.server.handler(request)
            except Exception:
                log.exception("handler_failed", method=request.method, path=request.path)
                response = json_response(500, {"success": False, "message": "internal error"})
            self.phase = "writing"
            if not isinstance(response.body, (bytes, bytearray)):
                await self._stream_response(response)
                return
            await self._send_all(self._encode(response, request.method == "HEAD"))
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
            await self._send_all(conn.send(h11.InformationalResponse(status_code=100, headers=[])) or b"")
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
        event = h11.Response(status_code=response.status, headers=headers, _parsed=True)
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
        if self.server.on_error is not None:
            self.server.on_error(status, self.peer, message)
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
