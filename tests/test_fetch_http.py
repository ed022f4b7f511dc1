"""The direct HTTP path (h11 pool): redirects, gzip, keep-alive, a server closing idle
connections. A tiny trio server in the test answers as each test needs."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import h11
import trio

from segfuncd.runner.fetch import Fetcher, FetchSpec

Handler = Callable[[h11.Request, bytes], tuple[int, list[tuple[str, str]], bytes]]


async def serve(handler: Handler, *, close_after_each: bool = False,
                task_status: trio.TaskStatus[tuple[int, list[int]]] = trio.TASK_STATUS_IGNORED) -> None:
    """A keep-alive HTTP/1.1 server; task_status gets (port, connections opened so far)."""
    connections: list[int] = []

    async def one(stream: trio.SocketStream) -> None:
        connections.append(1)
        conn = h11.Connection(h11.SERVER)
        while True:
            req: h11.Request | None = None
            body = b""
            while True:
                ev = conn.next_event()
                if ev is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    conn.receive_data(data)
                elif isinstance(ev, h11.Request):
                    req = ev
                elif isinstance(ev, h11.Data):
                    body += ev.data
                elif isinstance(ev, h11.EndOfMessage):
                    break
            assert req is not None
            status, headers, out = handler(req, body)
            headers = headers + [("content-length", str(len(out)))]
            await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers))
                                  + conn.send(h11.Data(data=out)) + conn.send(h11.EndOfMessage()))
            if close_after_each:
                await stream.aclose()
                return
            conn.start_next_cycle()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    task_status.started((port, connections))
    await trio.serve_listeners(one, listeners)


def spec(url: str, method: str = "GET", body: bytes | None = None) -> FetchSpec:
    return FetchSpec(method, url, [], body, True, 5.0)


async def test_redirects_are_followed_and_post_becomes_get(nursery: trio.Nursery) -> None:
    def handler(req: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        if req.target == b"/start":
            return 302, [("location", "/end")], b""
        return 200, [("content-type", "text/plain")], req.method + b" " + body

    port, _ = await nursery.start(serve, handler)
    f = Fetcher(user_agent="t", egress_deny=())
    reply = await f.fetch(spec(f"http://127.0.0.1:{port}/start", "POST", b"data"))
    assert (reply.status, reply.text, reply.redirected) == (200, "GET ", True)
    assert reply.url == f"http://127.0.0.1:{port}/end"
    await f.aclose()


async def test_gzip_bodies_are_decoded(nursery: trio.Nursery) -> None:
    def handler(req: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        assert dict(req.headers)[b"accept-encoding"] == b"gzip,deflate"
        return 200, [("content-encoding", "gzip"), ("content-type", "application/json")], gzip.compress(b'{"z":1}')

    port, _ = await nursery.start(serve, handler)
    f = Fetcher(user_agent="t", egress_deny=())
    assert (await f.fetch(spec(f"http://127.0.0.1:{port}/"))).text == '{"z":1}'
    await f.aclose()


async def test_connections_are_kept_alive(nursery: trio.Nursery) -> None:
    port, connections = await nursery.start(serve, lambda req, body: (200, [], b"ok"))
    f = Fetcher(user_agent="t", egress_deny=())
    for _ in range(5):
        assert (await f.fetch(spec(f"http://127.0.0.1:{port}/"))).text == "ok"
    assert len(connections) == 1
    await f.aclose()


async def test_a_server_closing_idle_connections_is_handled(nursery: trio.Nursery) -> None:
    port, connections = await nursery.start(
        lambda task_status: serve(lambda r, b: (200, [("connection", "keep-alive")], b"ok"),
                                  close_after_each=True, task_status=task_status))
    f = Fetcher(user_agent="t", egress_deny=())
    for _ in range(3):
        await trio.sleep(0.01)
        assert (await f.fetch(spec(f"http://127.0.0.1:{port}/", "POST", b"x"))).text == "ok"
    assert len(connections) == 3
    await f.aclose()


