"""segfuncd.server over real TCP and Unix sockets: keep-alive, limits, streaming, stop."""

from __future__ import annotations

import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import h11
import pytest
import trio

from segfuncd.errors import SegfuncdError
from segfuncd.server import (
    HttpServer,
    Request,
    Response,
    ServerLimits,
    json_response,
    open_tcp_listeners_for,
    open_unix_listener,
    serve_http,
)

FAST = ServerLimits(
    read_timeout_s=0.5, idle_timeout_s=0.5, write_timeout_s=2, max_body_bytes=1000, max_header_bytes=2000
)


async def echo(request: Request) -> Response:
    if request.path == "/boom":
        raise RuntimeError("bug")
    return json_response(
        200,
        {
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "body": request.body.decode(),
            "peer": request.peer,
            "local": request.local,
            "agent": request.headers.get("user-agent"),
        },
    )


async def start(
    nursery: trio.Nursery, handler: Any = echo, limits: ServerLimits = FAST, unix: Path | None = None
) -> HttpServer:
    listeners = [await open_unix_listener(unix, mode=0o660)] if unix else await open_tcp_listeners_for("127.0.0.1:0")
    server: HttpServer = await nursery.start(
        lambda task_status: serve_http(handler, listeners, limits=limits, task_status=task_status)
    )
    return server


async def connect(server: HttpServer) -> trio.abc.Stream:
    addr = server.addresses[0]
    if isinstance(addr, str):
        return await trio.open_unix_socket(addr)
    return await trio.open_tcp_stream(addr[0], addr[1])


class Client:
    """A minimal h11 client on one connection (keep-alive across calls)."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    async def request(
        self, method: str, target: str, body: bytes = b"", headers: list[tuple[str, str]] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        if self.conn.our_state is h11.DONE:
            self.conn.start_next_cycle()
        hdrs = [("host", "t"), ("content-length", str(len(body))), *(headers or [])]
        data = self.conn.send(h11.Request(method=method, target=target, headers=hdrs))
        data += self.conn.send(h11.Data(data=body)) if body else b""
        data += self.conn.send(h11.EndOfMessage())
        await self.stream.send_all(data)
        return await self.response()

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        status, headers, chunks = 0, {}, []
        with trio.fail_after(10):
            while True:
                event = self.conn.next_event()
                if event is h11.NEED_DATA:
                    self.conn.receive_data(bytes(await self.stream.receive_some(65536)))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    headers = {k.decode(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    chunks.append(event.data)
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    return status, headers, b"".join(chunks)


async def read_raw(stream: trio.abc.Stream) -> bytes:
    """Everything until the server closes the connection."""
    out = b""
    with trio.fail_after(10):
        while chunk := await stream.receive_some(65536):
            out += chunk
    return out


async def test_keep_alive_serves_several_requests_on_one_connection(nursery: trio.Nursery) -> None:
    server = await start(nursery)
    client = Client(await connect(server))
    s1, _, b1 = await client.request("POST", "/a?x=1", b"hello")
    s2, h2, b2 = await client.request("GET", "/b")
    assert s1 == s2 == 200 and h2["content-type"] == "application/json"
    import json

    one, two = json.loads(b1), json.loads(b2)
    assert one["path"] == "/a" and one["query"] == {"x": "1"} and one["body"] == "hello"
    assert one["peer"] == "127.0.0.1" and one["local"] is True and two["path"] == "/b"
    assert server.statistics().connections_total == 1 and server.statistics().requests_total == 2


async def test_unix_socket_has_the_mode_and_marks_requests_local(nursery: trio.Nursery, tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    server = await start(nursery, unix=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o660
    status, _, body = await Client(await connect(server)).request("GET", "/x")
    assert status == 200 and b'"peer":null' in body and b'"local":true' in body


async def test_stale_unix_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()  # the file stays, nothing answers: a crash leftover
    listener = await open_unix_listener(path, mode=0o600)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    await listener.aclose()


async def test_live_unix_socket_is_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    live = await open_unix_listener(path, mode=0o600)
    with pytest.raises(SegfuncdError, match="another process is listening"):
        await open_unix_listener(path, mode=0o600)
    await live.aclose()


async def test_a_regular_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    path.write_text("precious")
    with pytest.raises(SegfuncdError, match="not a socket"):
        await open_unix_listener(path, mode=0o600)
    assert path.read_text() == "precious"


async def test_tcp_address_in_use_names_the_address(nursery: trio.Nursery) -> None:
    server = await start(nursery)
    port = server.addresses[0][1]
    with pytest.raises(SegfuncdError, match=f"127.0.0.1:{port}"):
        await open_tcp_listeners_for(f"127.0.0.1:{port}")


async def test_oversized_headers_get_431(nursery: trio.Nursery) -> None:
    server = await start(nursery)
    stream = await connect(server)
    await stream.send_all(b"GET / HTTP/1.1\r\nhost: t\r\nx-big: " + b"a" * 5000 + b"\r\n\r\n")
    assert (await read_raw(stream)).startswith(b"HTTP/1.1 431 ")


async def test_oversized_body_by_content_length_gets_413_without_reading_it(nursery: trio.Nursery) -> None:
    server = await start(nursery)
    stream = await connect(server)
    await stream.send_all(b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 5000\r\n\r\n")
    reply = await read_raw(stream)
    assert reply.startswith(b"HTTP/1.1 413 ") and b"1000 bytes" in reply


async def test_oversized_chunked_body_gets_413(nursery: trio.Nursery) -> None:
    server = await start(nursery)
    stream = await connect(server)
    chunk = b"a" * 600
    await stream.send_all(
        b"POST / HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n" + (b"258\r\n" + chunk + b"\r\n") * 2
    )
    assert (await read_raw(stream)).startswith(b"HTTP/1.1 413 ")


async def test_malformed_request_gets_400(nursery: trio.Nursery) -> None:
    server = await start(nursery)
    stream = await connect(server)
    await stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")
    assert (await read_raw(stream)).startswith(b"HTTP/1.1 400 ")


async def test_slow_client_gets_408_and_does_not_stall_others(nursery: trio.Nursery) -> None:
    server = await start(nursery)
    slow = await connect(server)
    await slow.send_all(b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nabc")  # 7 bytes never come
    for _ in range(3):  # meanwhile others are served on fresh connections
        status, _, _ = await Client(await connect(server)).request("GET", "/other")
        assert status == 200
    assert (await read_raw(slow)).startswith(b"HTTP/1.1 408 ")


async def test_half_open_client_is_dropped_after_idle_timeout(nursery: trio.Nursery) -> None:
    server = await start(nursery)
    idle = await connect(server)  # connects, never sends
    client = Client(await connect(server))
    assert (await client.request("GET", "/"))[0] == 200
    assert await read_raw(idle) == b""  # closed silently


async def test_over_max_connections_gets_503(nursery: trio.Nursery) -> None:
    limits = ServerLimits(max_connections=1, idle_timeout_s=5)
    server = await start(nursery, limits=limits)
    first = Client(await connect(server))
    assert (await first.request("GET", "/"))[0] == 200
    second = await connect(server)
    reply = await read_raw(second)
    assert reply.startswith(b"HTTP/1.1 503 ") and b"retry-after" in reply.lower()
    assert (await first.request("GET", "/"))[0] == 200
    assert server.statistics().connections_refused == 1


async def test_handler_exception_is_500_and_the_server_goes_on(nursery: trio.Nursery) -> None:
    server = await start(nursery)
    client = Client(await connect(server))
    assert (await client.request("GET", "/boom"))[0] == 500
    assert (await Client(await connect(server)).request("GET", "/ok"))[0] == 200


async def test_expect_100_continue(nursery: trio.Nursery) -> None:
    server = await start(nursery)
    stream = await connect(server)
    await stream.send_all(b"POST /c HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\nexpect: 100-continue\r\n\r\n")
    with trio.fail_after(5):
        first = await stream.receive_some(1000)
    assert first.startswith(b"HTTP/1.1 100 ")
    await stream.send_all(b"hi")
    data = b""
    with trio.fail_after(5):
        while b'"body":"hi"' not in data:
            data += await stream.receive_some(1000)
    assert b"200 " in data


async def test_streaming_response_is_chunked_and_stops_when_the_client_leaves(nursery: trio.Nursery) -> None:
    closed = trio.Event()
    more = trio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"one\n"
            yield b"two\n"
            await more.wait()  # a follower waiting for new lines
            yield b"never\n"
        finally:
            closed.set()

    async def handler(request: Request) -> Response:
        return Response(status=200, body=chunks(), content_type="text/plain")

    server = await start(nursery, handler=handler, limits=ServerLimits())
    stream = await connect(server)
    await stream.send_all(b"GET /logs HTTP/1.1\r\nhost: t\r\n\r\n")
    data = b""
    with trio.fail_after(5):
        while b"two\n" not in data:
            data += await stream.receive_some(1000)
    assert b"transfer-encoding: chunked" in data.lower()
    await stream.aclose()
    with trio.fail_after(5):
        await closed.wait()


async def test_finite_stream_ends_with_a_last_chunk(nursery: trio.Nursery) -> None:
    async def handler(request: Request) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"{i}\n".encode()

        return Response(status=200, body=gen(), content_type="text/plain")

    server = await start(nursery, handler=handler)
    status, headers, body = await Client(await connect(server)).request("GET", "/")
    assert status == 200 and body == b"0\n1\n2\n"


async def test_stop_lets_a_running_request_finish(tmp_path: Path) -> None:
    """Cancelling serve_http closes the listener, but a request being handled gets its answer."""
    entered = trio.Event()
    release = trio.Event()

    async def handler(request: Request) -> Response:
        entered.set()
        await release.wait()
        return json_response(200, {"committed": True})

    results: list[tuple[int, dict[str, str], bytes]] = []
    async with trio.open_nursery() as outer:
        serve_scope = trio.CancelScope()

        async def run_server(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            with serve_scope:
                listeners = await open_tcp_listeners_for("127.0.0.1:0")
                await serve_http(handler, listeners, limits=ServerLimits(), task_status=task_status)

        server = await outer.start(run_server)
        client = Client(await connect(server))

        async def call() -> None:
            results.append(await client.request("POST", "/", b"x"))

        outer.start_soon(call)
        await entered.wait()
        serve_scope.cancel()
        await trio.sleep(0.05)
        release.set()
    assert results and results[0][0] == 200 and b"committed" in results[0][2]
    with pytest.raises(OSError):
        await trio.open_tcp_stream(*server.addresses[0][:2])


async def test_pipelined_requests_are_answered_in_order(nursery: trio.Nursery) -> None:
    server = await start(nursery)
    stream = await connect(server)
    await stream.send_all(
        b"GET /one HTTP/1.1\r\nhost: t\r\n\r\nGET /two HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n"
    )
    data = await read_raw(stream)
    assert data.count(b"HTTP/1.1 200 ") == 2 and data.index(b'"/one"') < data.index(b'"/two"')


async def test_http_1_0_client_gets_its_answer_and_a_close(nursery: trio.Nursery) -> None:
    server = await start(nursery)
    stream = await connect(server)
    await stream.send_all(b"GET /old HTTP/1.0\r\n\r\n")
    data = await read_raw(stream)  # returns only because the server closes
    assert data.startswith(b"HTTP/1.1 200 ") and b'"/old"' in data


async def test_stop_closes_idle_keep_alive_connections(tmp_path: Path) -> None:
    async with trio.open_nursery() as outer:
        scope = trio.CancelScope()

        async def run_server(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                await serve_http(
                    echo, await open_tcp_listeners_for("127.0.0.1:0"), limits=ServerLimits(), task_status=task_status
                )

        server = await outer.start(run_server)
        client = Client(await connect(server))
        assert (await client.request("GET", "/"))[0] == 200
        scope.cancel()
    assert await read_raw(client.stream) == b""  # closed at once, not after idle_timeout_s (60 s)


async def test_chunked_request_body_is_assembled(nursery: trio.Nursery) -> None:
    server = await start(nursery)
    stream = await connect(server)
    await stream.send_all(
        b"POST /c HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    assert b'"body":"abcde"' in await read_raw(stream)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x01\x02\xff\r\n\r\n",
        b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: -5\r\n\r\n",
        b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
        b"POST / HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
    ],
)
async def test_garbage_gets_a_4xx_and_the_server_goes_on(nursery: trio.Nursery, garbage: bytes) -> None:
    server = await start(nursery)
    stream = await connect(server)
    await stream.send_all(garbage)
    reply = await read_raw(stream)
    assert reply == b"" or reply[9:10] == b"4", reply[:40]
    assert (await Client(await connect(server)).request("GET", "/after"))[0] == 200
