"""A small HTTP/1.1 client on trio + httptools, for fetch()'s direct (non-proxied) requests.

Why not httpx here: on loopback, httpx on trio does ~500-850 requests/s in a runner while
a plain keep-alive pool does ~4,500 (measured with bench/runtime.py: httpcore rescans its pool for every request and
waiter). httpx still handles
everything that goes through a proxy (fetch.py decides).

Responses are parsed by httptools (the llhttp bindings uvicorn uses); h11 did the same job
at ~97 µs of CPU per request, which was the largest single cost in bench/e2e.py. The
request head is serialised here directly (one write, header values checked for CR/LF/NUL).

What lives here: keep-alive connections per origin, TLS via trio.SSLStream, one request /
response exchange, gzip/deflate decoding, a response size cap, and `Abort`, which stops a
request in flight without a trio cancel scope around it. What does not: redirects,
egress policy, error wording (fetch.py), DNS and deny checks (the `connect` callable).
"""

from __future__ import annotations

import math
import os
import ssl
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import httptools
import trio

Connect = Callable[[str, int], Awaitable[trio.SocketStream]]
MAX_IDLE_PER_ORIGIN = 64  # = fetch.DEFAULT_MAX_IN_FLIGHT: a connection used at full share is kept, not reopened
RECEIVE_SIZE = 65_536
MAX_HEAD_SIZE = 256 * 1024  # status line + headers of one response (h11's default bound)


class HTTPFailure(Exception):
    """The exchange failed below HTTP (connection, protocol, size); str() is the reason."""


class TooLarge(HTTPFailure):
    pass


class Aborted(Exception):
    """The request was stopped through its Abort; str() is the reason given to abort()."""


T = TypeVar("T")


class Abort:
    """Stops one request wherever it waits, without a trio cancel scope on the common path.

    A trio CancelScope around every request (one for the invocation that owns it, one for
    its timeout) cost a runner ~35 µs of CPU per event in bench/e2e.py's set-up, more than
    the HTTP exchange itself. So: while the request waits on its plain socket, `abort()`
    wakes it with `trio.lowlevel.notify_closing` (the connection is then closed, never
    reused); the other waits (a connection slot, connect, TLS, a proxy) run through
    `guarded()`, in a scope that `abort()` cancels. Whatever the phase, the request then
    raises Aborted at its next wait, and never sends again once aborted.
    """

    __slots__ = ("reason", "fd", "scope", "deadline")

    def __init__(self) -> None:
        self.reason: str | None = None
        self.fd = -1  # the socket the request waits on now, if any
        self.scope: trio.CancelScope | None = None  # the guarded phase it is in, if any
        self.deadline = math.inf  # trio time; fetch.py's watchdog aborts it then

    def abort(self, reason: str) -> None:
        if self.reason is not None:
            return
        self.reason = reason
        if self.scope is not None:
            self.scope.cancel()
        if self.fd >= 0:
            trio.lowlevel.notify_closing(self.fd)

    def check(self) -> None:
        if self.reason is not None:
            raise Aborted(self.reason)


async def guarded(abort: Abort, fn: Callable[[], Awaitable[T]]) -> T:
    """Run `fn()` in a cancel scope that `abort` cancels (for the uncommon waits)."""
    with trio.CancelScope() as scope:
        abort.scope = scope
        if abort.reason is not None:
            scope.cancel()
        try:
            return await fn()
        finally:
            abort.scope = None
    raise Aborted(abort.reason or "aborted")


async def _wait(wait: Callable[[int], Awaitable[None]], fd: int, abort: Abort) -> None:
    """wait_readable / wait_writable on `fd`, which `abort.abort()` interrupts."""
    abort.check()
    abort.fd = fd
    try:
        await wait(fd)
    except trio.ClosedResourceError:
        abort.check()  # abort() closed it under us
        raise
    finally:
        abort.fd = -1


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(eq=False)
class _Conn:
    stream: trio.abc.Stream
    reused: bool = False
    fd: int = -1  # a plain TCP connection's socket: read and written directly (see _send, _receive)


class _Response:
    """httptools callbacks for one exchange; 1xx interim responses are skipped, trailers ignored.

    The parser holds this object's bound methods and this object holds the parser: a cycle,
    which `release()` breaks once the exchange is over, so that each request's objects are
    freed at once instead of by Python's cycle collector (in a runner they were most of its
    collections' work: ~30 objects per request).
    """

    __slots__ = (
        "parser",
        "status",
        "head_only",
        "reason",
        "headers",
        "chunks",
        "size",
        "headers_done",
        "framed",
        "done",
        "keep_alive",
        "extra",
    )

    def __init__(self, head_only: bool) -> None:
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.status = 0
        self.head_only = head_only
        self.reason = b""
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.headers_done = False
        self.framed = False  # content-length or chunked: EOF before the end is an error
        self.done = False
        self.keep_alive = False
        self.extra = False  # bytes after the response: the connection is not reused

    def on_message_begin(self) -> None:
        if self.done:
            self.extra = True

    def on_status(self, data: bytes) -> None:
        self.reason += data

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers_done or self.done:
            return  # trailers
        k = name.decode("latin-1").lower()
        if k == "content-length" or (k == "transfer-encoding" and b"chunked" in value.lower()):
            self.framed = True
        self.headers.append((k, value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        if self.done or self.parser is None:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            return
        self.status = status
        self.headers_done = True
        if self.head_only:  # no body follows, whatever content-length says
            self.done = True
            self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, data: bytes) -> None:
        if not self.done:
            self.size += len(data)
            self.chunks.append(data)

    def on_message_complete(self) -> None:
        if self.done or self.parser is None:
            return
        if not self.headers_done:  # a 1xx interim response: the real one follows
            self.reason = b""
            self.headers = []
            self.framed = False
            return
        self.done = True
        self.keep_alive = self.parser.should_keep_alive()

    def feed(self, data: bytes | bytearray) -> None:
        assert self.parser is not None, "fed after release()"
        self.parser.feed_data(data)

    def release(self) -> None:
        self.parser = None


class ConnectionPool:
    """Idle keep-alive connections per (scheme, host, port)."""

    def __init__(self, *, connect: Connect, ssl_context: ssl.SSLContext, max_body: int) -> None:
        self._connect = connect
        self._ssl = ssl_context
        self._max_body = max_body
        self._idle: dict[tuple[str, str, int], list[_Conn]] = {}

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for c in conns:
                await trio.aclose_forcefully(c.stream)
        self._idle.clear()

    async def request(
        self,
        scheme: str,
        host: str,
        port: int,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        abort: Abort | None = None,
    ) -> RawResponse:
        """One exchange; a reused connection the server had closed is retried once, fresh.
        `abort` stops it (Aborted) wherever it waits."""
        abort = Abort() if abort is None else abort
        abort.check()
        origin = (scheme, host, port)
        conn = await self._checkout(origin, abort)
        try:
            return await self._exchange(origin, conn, method, target, headers, body, abort)
        except _StaleConnection:
            abort.check()
            conn = await guarded(abort, lambda: self._open(origin))
            return await self._exchange(origin, conn, method, target, headers, body, abort)

    async def _checkout(self, origin: tuple[str, str, int], abort: Abort) -> _Conn:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not _readable(conn.stream):
                conn.reused = True
                return conn
            await trio.aclose_forcefully(conn.stream)
        return await guarded(abort, lambda: self._open(origin))

    async def _open(self, origin: tuple[str, str, int]) -> _Conn:
        scheme, host, port = origin
        stream: trio.abc.Stream = await self._connect(host, port)
        if scheme == "https":
            tls = trio.SSLStream(stream, self._ssl, server_hostname=host, https_compatible=True)
            try:
                await tls.do_handshake()
            except trio.BrokenResourceError as exc:
                await trio.aclose_forcefully(stream)
                raise HTTPFailure(f"TLS handshake with {host} failed: {exc.__cause__ or exc}") from exc
            except BaseException:  # cancelled (aborted, timed out, shut down): the socket too
                await trio.aclose_forcefully(stream)
                raise
            stream = tls
            return _Conn(stream)
        return _Conn(stream, fd=stream.socket.fileno() if isinstance(stream, trio.SocketStream) else -1)

    async def _exchange(
        self,
        origin: tuple[str, str, int],
        conn: _Conn,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        abort: Abort,
    ) -> RawResponse:
        resp = _Response(head_only=method == "HEAD")
        got_bytes = False
        received = 0
        try:
            await _send(conn, _request_bytes(method, target, headers, body), abort)
            while not resp.done:
                if got_bytes:  # a response in several reads: let the others run between them
                    await trio.lowlevel.cancel_shielded_checkpoint()
                raw = await _receive(conn, abort, first=not got_bytes)
                if not raw:
                    if not got_bytes and conn.reused:
                        raise _StaleConnection()
                    if resp.headers_done and not resp.framed:
                        resp.done = True  # read-to-close body: EOF is the end
                        break
                    raise HTTPFailure(
                        "socket hang up"
                        if not got_bytes
                        else "invalid HTTP response: connection closed before the response was complete"
                    )
                got_bytes = True
                received += len(raw)
                resp.feed(raw)
                if resp.size > self._max_body:
                    raise TooLarge(f"content size over limit: {self._max_body}")
                if not resp.headers_done and received > MAX_HEAD_SIZE:
                    raise HTTPFailure(f"invalid HTTP response: headers over {MAX_HEAD_SIZE} bytes")
        except _StaleConnection:
            await trio.aclose_forcefully(conn.stream)
            raise
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            await trio.aclose_forcefully(conn.stream)
            abort.check()
            if conn.reused and not got_bytes:
                raise _StaleConnection() from exc
            raise HTTPFailure(f"socket hang up ({exc})") from exc
        except httptools.HttpParserUpgrade as exc:
            await trio.aclose_forcefully(conn.stream)
            raise HTTPFailure("invalid HTTP response: unexpected protocol upgrade") from exc
        except httptools.HttpParserError as exc:
            await trio.aclose_forcefully(conn.stream)
            raise HTTPFailure(f"invalid HTTP response: {exc}") from exc
        except BaseException:
            await trio.aclose_forcefully(conn.stream)
            raise
        finally:
            resp.release()
        if resp.keep_alive and not resp.extra:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < MAX_IDLE_PER_ORIGIN:
                idle.append(conn)
            else:
                _close_later(conn)
        else:
            _close_later(conn)
        return RawResponse(
            resp.status,
            resp.reason.decode("latin-1"),
            resp.headers,
            _decode(b"".join(resp.chunks), resp.headers, self._max_body),
        )


async def _send(conn: _Conn, data: bytes, abort: Abort) -> None:
    """The request, written straight to a plain socket (trio's SocketStream costs ~10 µs of
    Python per call on top of the syscall); TLS goes through its stream."""
    if conn.fd < 0:  # TLS: the stream waits on its own, so the wait is guarded
        await guarded(abort, partial(conn.stream.send_all, data))
        return
    # An abort that landed while connect() was finishing (its last wait, woken but not yet
    # run, has no checkpoint after it) stops the request here, before anything is written.
    abort.check()
    await trio.lowlevel.checkpoint_if_cancelled()  # cheap; wait_writable / wait_readable yield when they wait
    view = memoryview(data)
    again = False
    while view:
        if again:  # a body bigger than the socket buffer: yield between writes, as trio does
            await trio.lowlevel.cancel_shielded_checkpoint()
        again = True
        try:
            view = view[os.write(conn.fd, view) :]
        except BlockingIOError:
            await _wait(trio.lowlevel.wait_writable, conn.fd, abort)


async def _receive(conn: _Conn, abort: Abort, *, first: bool = False) -> bytes | bytearray:
    """Some bytes of the response (b"" at EOF); from a plain socket directly, as _send.

    `first`: the request was just written, so nothing can have come back yet: wait before
    reading rather than try a read that fails (a syscall and an exception, ~2 µs).
    """
    if conn.fd < 0:
        return await guarded(abort, partial(conn.stream.receive_some, RECEIVE_SIZE))
    if first:
        await _wait(trio.lowlevel.wait_readable, conn.fd, abort)
    while True:
        abort.check()  # as a cancel scope's checkpoint would, also when data is always ready
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            return os.read(conn.fd, RECEIVE_SIZE)
        except BlockingIOError:
            await _wait(trio.lowlevel.wait_readable, conn.fd, abort)


class _StaleConnection(Exception):
    """A kept-alive connection turned out closed before any response byte: retry fresh."""


def _close_later(conn: _Conn) -> None:
    # closing a plain socket never blocks; SSL streams get no close_notify, which is fine
    stream = conn.stream
    while isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    if isinstance(stream, trio.SocketStream):
        stream.socket.close()


def _request_bytes(method: str, target: str, headers: list[tuple[str, str]], body: bytes | None) -> bytes:
    """Request line, headers and body in one buffer; CR, LF or NUL anywhere but the line ends is refused."""
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    lines = len(headers) + 2
    if head.count("\n") != lines or head.count("\r") != lines or "\0" in head:
        raise HTTPFailure("invalid HTTP request: CR, LF or NUL in the method, target or a header")
    try:
        data = head.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise HTTPFailure(f"invalid HTTP request: header not latin-1 ({exc.object[exc.start : exc.end]!r})") from exc
    return data + body if body else data


def _readable(stream: trio.abc.Stream) -> bool:
    """An idle connection with something to read was closed (or spoke out of turn)."""
    while isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    if isinstance(stream, trio.SocketStream):
        return bool(stream.socket.is_readable())
    return False


def _decode(body: bytes, headers: list[tuple[str, str]], limit: int) -> bytes:
    """Undo gzip / deflate content-encoding, as node-fetch does."""
    encoding = next((v.strip().lower() for k, v in headers if k.lower() == "content-encoding"), "")
    if encoding in ("gzip", "x-gzip", "deflate"):
        wbits = 47 if encoding != "deflate" else (15 if body[:1] == b"\x78" else -15)
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(body, limit + 1)
        except zlib.error as exc:
            raise HTTPFailure(f"invalid {encoding} response body: {exc}") from exc
        if len(out) > limit:
            raise TooLarge(f"content size over limit: {limit}")
        return out
    return body
