"""A small HTTP/1.1 client on trio + h11, for fetch()'s direct (non-proxied) requests.

Why not httpx here: on loopback, httpx on trio does ~500-850 requests/s in a runner while
h11 on a plain keep-alive pool does ~4,500 (measured in this repo, bench/runtime.py and
DESIGN.md §3: httpcore rescans its pool for every request and waiter). httpx still handles
everything that goes through a proxy (fetch.py decides).

What lives here: keep-alive connections per origin, TLS via trio.SSLStream, one request /
response exchange, gzip/deflate decoding, a response size cap. What does not: redirects,
egress policy, error wording (fetch.py), DNS and deny checks (the `connect` callable).
"""

from __future__ import annotations

import ssl
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import h11
import trio

Connect = Callable[[str, int], Awaitable[trio.SocketStream]]
MAX_IDLE_PER_ORIGIN = 16
RECEIVE_SIZE = 65_536


class HTTPFailure(Exception):
    """The exchange failed below HTTP (connection, protocol, size); str() is the reason."""


class TooLarge(HTTPFailure):
    pass


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(eq=False)
class _Conn:
    stream: trio.abc.Stream
    h11: h11.Connection
    reused: bool = False


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

    async def request(self, scheme: str, host: str, port: int, method: str, target: str,
                      headers: list[tuple[str, str]], body: bytes | None) -> RawResponse:
        """One exchange; a reused connection the server had closed is retried once, fresh."""
        origin = (scheme, host, port)
        conn = await self._checkout(origin)
        try:
            return await self._exchange(origin, conn, method, target, headers, body)
        except _StaleConnection:
            conn = await self._open(origin)
            return await self._exchange(origin, conn, method, target, headers, body)

    async def _checkout(self, origin: tuple[str, str, int]) -> _Conn:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.h11.our_state is h11.IDLE and not _readable(conn.stream):
                conn.reused = True
                return conn
            await trio.aclose_forcefully(conn.stream)
        return await self._open(origin)

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
            stream = tls
        return _Conn(stream, h11.Connection(h11.CLIENT, max_incomplete_event_size=256 * 1024))

    async def _exchange(self, origin: tuple[str, str, int], conn: _Conn, method: str, target: str,
                        headers: list[tuple[str, str]], body: bytes | None) -> RawResponse:
        c = conn.h11
        got_bytes = False
        try:
            data = c.send(h11.Request(method=method, target=target, headers=headers))
            if body:
                data += c.send(h11.Data(data=body))
            data += c.send(h11.EndOfMessage())
            await conn.stream.send_all(data)
            head: h11.Response | None = None
            chunks: list[bytes] = []
            size = 0
            while True:
                event = c.next_event()
                if event is h11.NEED_DATA:
                    raw = await conn.stream.receive_some(RECEIVE_SIZE)
                    if not raw and not got_bytes and conn.reused:
                        raise _StaleConnection()
                    got_bytes = got_bytes or bool(raw)
                    c.receive_data(bytes(raw))
                    continue
                if isinstance(event, h11.Response):
                    head = event
                elif isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > self._max_body:
                        raise TooLarge(f"content size over limit: {self._max_body}")
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
        except _StaleConnection:
            await trio.aclose_forcefully(conn.stream)
            raise
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            await trio.aclose_forcefully(conn.stream)
            if conn.reused and not got_bytes:
                raise _StaleConnection() from exc
            raise HTTPFailure(f"socket hang up ({exc})") from exc
        except h11.ProtocolError as exc:
            await trio.aclose_forcefully(conn.stream)
            raise HTTPFailure(f"invalid HTTP response: {exc}") from exc
        except BaseException:
            await trio.aclose_forcefully(conn.stream)
            raise
        assert head is not None
        self._release(origin, conn)
        headers_out = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in head.headers]
        return RawResponse(head.status_code, head.reason.decode("latin-1"), headers_out,
                           _decode(b"".join(chunks), headers_out, self._max_body))

    def _release(self, origin: tuple[str, str, int], conn: _Conn) -> None:
        c = conn.h11
        if c.our_state is h11.DONE and c.their_state is h11.DONE:
            c.start_next_cycle()
            idle = self._idle.setdefault(origin, [])
            if len(idle) < MAX_IDLE_PER_ORIGIN:
                idle.append(conn)
                return
        _close_later(conn)


class _StaleConnection(Exception):
    """A kept-alive connection turned out closed before any response byte: retry fresh."""


def _close_later(conn: _Conn) -> None:
    # closing a plain socket never blocks; SSL streams get no close_notify, which is fine
    stream = conn.stream
    while isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    if isinstance(stream, trio.SocketStream):
        stream.socket.close()


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
