"""The direct HTTP path (httptools pool): redirects, gzip, keep-alive, a server closing idle
connections. A tiny trio server in the test answers as each test needs."""

from __future__ import annotations

import gc
import gzip
import ssl
from collections.abc import Callable
from pathlib import Path

import h11
import httptools
import pytest
import trio
import trio.testing
from helpers import SINK_ALLOW, nats_tls_files

import segfuncd.runner.fetch as fetch_mod
from segfuncd.runner.fetch import FetchCancelled, Fetcher, FetchFailed, FetchSpec
from segfuncd.runner.httpclient import Abort, _Response
from segfuncd.runner.proxies import ProxySettings

Handler = Callable[[h11.Request, bytes], tuple[int, list[tuple[str, str]], bytes]]


async def serve(
    handler: Handler,
    *,
    close_after_each: bool = False,
    task_status: trio.TaskStatus[tuple[int, list[int]]] = trio.TASK_STATUS_IGNORED,
) -> None:
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
            await stream.send_all(
                conn.send(h11.Response(status_code=status, headers=headers))
                + conn.send(h11.Data(data=out))
                + conn.send(h11.EndOfMessage())
            )
            if close_after_each:
                await stream.aclose()
                return
            conn.start_next_cycle()

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    task_status.started((port, connections))
    await trio.serve_listeners(one, listeners)


def spec(url: str, method: str = "GET", body: bytes | None = None) -> FetchSpec:
    return FetchSpec(method, url, [], body, "follow", 5.0)


async def test_redirects_are_followed_and_post_becomes_get(nursery: trio.Nursery) -> None:
    def handler(req: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        if req.target == b"/start":
            return 302, [("location", "/end")], b""
        return 200, [("content-type", "text/plain")], req.method + b" " + body

    port, _ = await nursery.start(serve, handler)
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    reply = await f.fetch(spec(f"http://127.0.0.1:{port}/start", "POST", b"data"))
    assert (reply.status, reply.text, reply.redirected) == (200, "GET ", True)
    assert reply.url == f"http://127.0.0.1:{port}/end"
    await f.aclose()


async def test_gzip_bodies_are_decoded(nursery: trio.Nursery) -> None:
    def handler(req: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        assert dict(req.headers)[b"accept-encoding"] == b"gzip,deflate"
        return 200, [("content-encoding", "gzip"), ("content-type", "application/json")], gzip.compress(b'{"z":1}')

    port, _ = await nursery.start(serve, handler)
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    assert (await f.fetch(spec(f"http://127.0.0.1:{port}/"))).text == '{"z":1}'
    await f.aclose()


async def test_connections_are_kept_alive(nursery: trio.Nursery) -> None:
    port, connections = await nursery.start(serve, lambda req, body: (200, [], b"ok"))
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    for _ in range(5):
        assert (await f.fetch(spec(f"http://127.0.0.1:{port}/"))).text == "ok"
    assert len(connections) == 1
    await f.aclose()


async def test_a_response_leaves_no_cycle_for_the_collector(nursery: trio.Nursery) -> None:
    # The parser holds the response's callbacks and the response its parser; left as a cycle,
    # every request's objects waited for Python's cycle collector (collector.py).
    port, _ = await nursery.start(serve, lambda req, body: (200, [("x-a", "1")], b"ok"))
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(10):
            assert (await f.fetch(spec(f"http://127.0.0.1:{port}/", "POST", b"{}"))).text == "ok"
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage if isinstance(o, (_Response, httptools.HttpResponseParser))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []
    await f.aclose()


async def test_a_server_closing_idle_connections_is_handled(nursery: trio.Nursery) -> None:
    port, connections = await nursery.start(
        lambda task_status: serve(
            lambda r, b: (200, [("connection", "keep-alive")], b"ok"), close_after_each=True, task_status=task_status
        )
    )
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    for _ in range(3):
        await trio.sleep(0.01)
        assert (await f.fetch(spec(f"http://127.0.0.1:{port}/", "POST", b"x"))).text == "ok"
    assert len(connections) == 3
    await f.aclose()


# --- the response parser (httptools) against hand-written wire bytes ---------------------


async def raw_server(
    replies: list[bytes],
    *,
    close: bool = False,
    task_status: trio.TaskStatus[tuple[int, list[int]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Answers each request (read up to its blank line) with the next of `replies`, verbatim."""
    connections: list[int] = []
    pending = list(replies)

    async def one(stream: trio.SocketStream) -> None:
        connections.append(1)
        buf = b""
        while pending:
            while b"\r\n\r\n" not in buf:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buf += data
            buf = buf.split(b"\r\n\r\n", 1)[1]
            await stream.send_all(pending.pop(0))
            if close:
                await stream.aclose()
                return

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started((listeners[0].socket.getsockname()[1], connections))
    await trio.serve_listeners(one, listeners)


async def start_raw(nursery: trio.Nursery, replies: list[bytes], close: bool = False) -> tuple[str, list[int]]:
    port, connections = await nursery.start(
        lambda task_status: raw_server(replies, close=close, task_status=task_status)
    )
    return f"http://127.0.0.1:{port}/", connections


async def test_chunked_response_with_interim_1xx_and_trailers(nursery: trio.Nursery) -> None:
    url, connections = await start_raw(
        nursery,
        [
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 201 Made\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
            b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ],
    )
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    reply = await f.fetch(spec(url))
    assert (reply.status, reply.reason, reply.text) == (201, "Made", "abcdefg")
    assert ["x-a", "1"] in reply.headers and all(k != "x-trailer" for k, _ in reply.headers)
    assert (await f.fetch(spec(url))).text == "ok"
    assert len(connections) == 1  # the chunked response left the connection reusable
    await f.aclose()


async def test_content_length_split_across_reads(nursery: trio.Nursery) -> None:
    body = b"x" * 200_000
    url, connections = await start_raw(
        nursery,
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n" + body,
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz",
        ],
    )
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    assert (await f.fetch(spec(url))).text == body.decode()
    assert (await f.fetch(spec(url))).status == 204
    assert (await f.fetch(spec(url))).text == "z"
    assert len(connections) == 1
    await f.aclose()


async def test_head_response_has_no_body_whatever_content_length_says(nursery: trio.Nursery) -> None:
    url, connections = await start_raw(
        nursery, [b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
    )
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    reply = await f.fetch(spec(url, "HEAD"))
    assert (reply.status, reply.text) == (200, "")
    assert (await f.fetch(spec(url))).text == "ok"
    assert len(connections) == 1
    await f.aclose()


async def test_read_to_close_body_and_connection_close(nursery: trio.Nursery) -> None:
    url, connections = await start_raw(
        nursery,
        [
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye",
        ],
        close=True,
    )
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    assert (await f.fetch(spec(url))).text == "until the end"
    assert (await f.fetch(spec(url))).text == "bye"
    assert len(connections) == 2
    await f.aclose()


async def test_connection_close_is_not_reused(nursery: trio.Nursery) -> None:
    url, connections = await start_raw(
        nursery,
        [
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\na",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb",
        ],
    )  # the server keeps the socket open anyway
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    assert (await f.fetch(spec(url))).text == "a"
    assert (await f.fetch(spec(url))).text == "b"
    assert len(connections) == 2
    await f.aclose()


async def test_oversized_responses_are_refused(nursery: trio.Nursery) -> None:
    big = b"y" * 3000
    url, _ = await start_raw(
        nursery,
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + big,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nbb8\r\n" + big + b"\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n" + big,
        ],
    )
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW, max_response_bytes=1000)
    for _ in range(3):
        with pytest.raises(FetchFailed, match="over limit: 1000") as info:
            await f.fetch(spec(url))
        assert info.value.code == "EMAXSIZE"
    await f.aclose()


async def test_malformed_responses_are_fetch_errors(nursery: trio.Nursery) -> None:
    url, _ = await start_raw(
        nursery,
        [b"HTTX/1.1 200 OK\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"],
        close=True,
    )
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    for _ in range(3):
        with pytest.raises(FetchFailed, match="invalid HTTP response") as info:
            await f.fetch(spec(url))
        assert info.value.code == "ECONNRESET"
    await f.aclose()


async def test_header_injection_is_refused(nursery: trio.Nursery) -> None:
    url, connections = await start_raw(nursery, [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    with pytest.raises(FetchFailed, match="invalid HTTP request"):
        await f.fetch(FetchSpec("GET", url, [("x-a", "1\r\nx-b: 2")], None, "follow", 5.0))
    assert connections == [] or len(connections) == 1
    await f.aclose()


async def test_bodies_larger_than_the_socket_buffers_go_both_ways(nursery: trio.Nursery) -> None:
    """A plain connection is written and read straight through its socket: an 8 MB request
    and response take many partial writes and reads, and arrive whole."""
    big = bytes(range(256)) * (8 * 4096)

    def handler(req: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        return 200, [("content-type", "application/octet-stream")], body[::-1]

    port, _ = await nursery.start(serve, handler)
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW, max_response_bytes=16 * 1024 * 1024)
    reply = await f.fetch(spec(f"http://127.0.0.1:{port}/", "POST", big))
    assert reply.status == 200
    assert reply.binary is not None and reply.binary.encode("latin-1") == big[::-1]
    await f.aclose()


async def test_a_request_cancelled_while_waiting_for_its_response_frees_its_connection(nursery: trio.Nursery) -> None:
    """Cancelled in the middle of an exchange (the function timed out): the connection is
    closed, not put back with a response still coming, and the next request is answered."""
    slow = trio.Event()

    def handler(req: h11.Request, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        return 200, [], req.target

    async def slow_then_serve(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        task_status.started(listeners[0].socket.getsockname()[1])

        async def one(stream: trio.SocketStream) -> None:
            await stream.receive_some(65536)
            await slow.wait()  # never answers: the client gives up first

        await trio.serve_listeners(one, listeners)

    slow_port = await nursery.start(slow_then_serve)
    port, _ = await nursery.start(serve, handler)
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    with trio.move_on_after(0.2) as scope:
        await f.fetch(spec(f"http://127.0.0.1:{slow_port}/hang"))
    assert scope.cancelled_caught
    assert (await f.fetch(spec(f"http://127.0.0.1:{port}/after"))).text == "/after"
    assert not f._pool._idle.get(("http", "127.0.0.1", slow_port))
    slow.set()
    await f.aclose()


# --- stopping a request: Abort and the timeout watchdog (no cancel scope per request) ------


async def hung_server(task_status: trio.TaskStatus[tuple[int, list[int]]] = trio.TASK_STATUS_IGNORED) -> None:
    """Reads each request and never answers; task_status gets (port, connections opened)."""
    connections: list[int] = []

    async def one(stream: trio.SocketStream) -> None:
        connections.append(1)
        while await stream.receive_some(65536):
            pass

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started((listeners[0].socket.getsockname()[1], connections))
    await trio.serve_listeners(one, listeners)


async def fetch_outcome(f: Fetcher, s: FetchSpec, abort: Abort, out: list[str], owner: str = "fn") -> None:
    try:
        out.append(f"status {(await f.fetch(s, owner=owner, abort=abort)).status}")
    except FetchCancelled as exc:
        out.append(f"cancelled: {exc}")
    except FetchFailed as exc:
        out.append(f"{exc.type}: {exc.message}")


async def test_an_abort_stops_a_request_waiting_for_its_response(nursery: trio.Nursery) -> None:
    port, _ = await nursery.start(hung_server)
    ok_port, _ = await nursery.start(serve, lambda req, body: (200, [], b"ok"))
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    abort, out = Abort(), list[str]()
    async with trio.open_nursery() as n:
        n.start_soon(fetch_outcome, f, spec(f"http://127.0.0.1:{port}/hang"), abort, out)
        await trio.testing.wait_all_tasks_blocked()  # it waits on its socket now
        abort.abort("the invocation ended")
    assert out == ["cancelled: the invocation ended"]
    assert f.statistics().in_use == 0  # its connection slot is free again
    assert not f._pool._idle.get(("http", "127.0.0.1", port))  # closed, never reused
    assert (await f.fetch(spec(f"http://127.0.0.1:{ok_port}/"))).text == "ok"
    await f.aclose()


async def test_an_abort_stops_a_request_waiting_for_a_connection_slot(nursery: trio.Nursery) -> None:
    port, connections = await nursery.start(hung_server)
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW, max_in_flight_per_function=1)
    first, second, out = Abort(), Abort(), list[str]()
    async with trio.open_nursery() as n:
        n.start_soon(fetch_outcome, f, spec(f"http://127.0.0.1:{port}/1"), first, out)
        await trio.testing.wait_all_tasks_blocked()
        n.start_soon(fetch_outcome, f, spec(f"http://127.0.0.1:{port}/2"), second, out)
        await trio.testing.wait_all_tasks_blocked()
        assert f.statistics().waiting == {"fn": 1}
        second.abort("gone")
        await trio.testing.wait_all_tasks_blocked()
        first.abort("gone too")
    assert out == ["cancelled: gone", "cancelled: gone too"]
    assert (f.statistics().in_use, dict(f.statistics().waiting), len(connections)) == (0, {}, 1)
    await f.aclose()


async def test_an_aborted_request_is_never_sent(nursery: trio.Nursery) -> None:
    port, connections = await nursery.start(hung_server)
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    abort, out = Abort(), list[str]()
    abort.abort("too late")
    await fetch_outcome(f, spec(f"http://127.0.0.1:{port}/"), abort, out)
    await trio.testing.wait_all_tasks_blocked()
    assert (out, connections, f.statistics().in_use) == (["cancelled: too late"], [], 0)
    await f.aclose()


async def test_a_request_past_its_timeout_fails_as_node_fetch_says(
    nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    port, _ = await nursery.start(hung_server)
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW, timeout_s=30)
    url = f"http://127.0.0.1:{port}/slow"
    out: list[str] = []
    t0 = trio.current_time()
    ended: dict[str, float] = {}

    async def timed(name: str, timeout_s: float) -> None:
        await fetch_outcome(f, FetchSpec("GET", url, [], None, "follow", timeout_s), Abort(), out, owner=name)
        ended[name] = trio.current_time() - t0

    async with trio.open_nursery() as n:
        n.start_soon(timed, "long", 5.0)  # the watchdog now sleeps until 1 s from here ...
        await trio.testing.wait_all_tasks_blocked()
        n.start_soon(timed, "short", 0.25)  # ... and is woken for this one, due sooner
    assert out == [f"request-timeout: network timeout at: {url}"] * 2
    assert 0.25 <= ended["short"] < 0.3 and 5.0 <= ended["long"] < 5.05, ended  # virtual time
    assert f.statistics().in_use == 0
    await f.aclose()


async def recording_server(task_status: trio.TaskStatus[tuple[int, list[bytes]]] = trio.TASK_STATUS_IGNORED) -> None:
    """Records every byte it receives, never answers; task_status gets (port, bytes received)."""
    received: list[bytes] = []

    async def one(stream: trio.SocketStream) -> None:
        while data := await stream.receive_some(65536):
            received.append(data)

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    task_status.started((listeners[0].socket.getsockname()[1], received))
    await trio.serve_listeners(one, listeners)


def gate_connect(monkeypatch: pytest.MonkeyPatch, port: int) -> trio.Event:
    """connect() to `port` completes only when the returned event is set: its last wait, as
    trio's socket.connect() ends on wait_writable (woken by epoll) with no checkpoint after."""
    gate = trio.Event()
    real = fetch_mod._connect_to

    async def gated(address: str, p: int) -> trio.SocketStream:
        stream = await real(address, p)
        if p == port:
            await gate.wait()
        return stream

    monkeypatch.setattr(fetch_mod, "_connect_to", gated)
    return gate


async def test_an_abort_landing_as_connect_completes_sends_nothing(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, received = await nursery.start(recording_server)
    gate = gate_connect(monkeypatch, port)
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    abort, out = Abort(), list[str]()
    async with trio.open_nursery() as n:
        n.start_soon(fetch_outcome, f, spec(f"http://127.0.0.1:{port}/secret"), abort, out)
        await trio.testing.wait_all_tasks_blocked()
        gate.set()  # the connect completes (the task is runnable, not yet run) ...
        abort.abort("the invocation ended")  # ... when its invocation ends (or the watchdog fires)
    await trio.testing.wait_all_tasks_blocked(cushion=0.01)
    assert out == ["cancelled: the invocation ended"]
    assert received == [], "the request was written after its abort"
    assert f.statistics().in_use == 0
    await f.aclose()


async def test_an_abort_landing_as_a_redirect_hop_connects_sends_nothing(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, received = await nursery.start(recording_server)
    start_port, _ = await nursery.start(
        serve, lambda req, body: (302, [("location", f"http://127.0.0.1:{port}/next")], b"")
    )
    gate = gate_connect(monkeypatch, port)
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    abort, out = Abort(), list[str]()
    async with trio.open_nursery() as n:
        n.start_soon(fetch_outcome, f, spec(f"http://127.0.0.1:{start_port}/start", "POST", b"x"), abort, out)
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
        abort.abort("the invocation ended")
    await trio.testing.wait_all_tasks_blocked(cushion=0.01)
    assert out == ["cancelled: the invocation ended"]
    assert received == [], "the redirect hop was written after its abort"
    await f.aclose()


async def test_a_timeout_while_connecting_is_a_request_timeout(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.abc.Clock
) -> None:
    port, received = await nursery.start(recording_server)
    gate_connect(monkeypatch, port)  # never set: the connect hangs
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    url = f"http://127.0.0.1:{port}/"
    out: list[str] = []
    await fetch_outcome(f, FetchSpec("GET", url, [], None, "follow", 2.0), Abort(), out)
    assert out == [f"request-timeout: network timeout at: {url}"]
    assert (received, f.statistics().in_use) == ([], 0)
    await f.aclose()


async def test_an_abort_as_a_slot_is_granted_sends_nothing_and_frees_the_slot(nursery: trio.Nursery) -> None:
    port, connections = await nursery.start(hung_server)
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW, max_in_flight_per_function=1)
    assert f._slots.try_acquire("fn", limit=1)  # someone holds the function's only slot
    abort, out = Abort(), list[str]()
    async with trio.open_nursery() as n:
        n.start_soon(fetch_outcome, f, spec(f"http://127.0.0.1:{port}/"), abort, out)
        await trio.testing.wait_all_tasks_blocked()
        f._slots.release("fn")  # hands the slot to the waiter (rescheduled, not yet run) ...
        abort.abort("gone")  # ... which is aborted in the same instant
    await trio.testing.wait_all_tasks_blocked(cushion=0.01)
    assert (out, connections, f.statistics().in_use) == (["cancelled: gone"], [], 0)
    await f.aclose()


async def test_an_outer_cancel_while_connecting_or_waiting_frees_everything(
    nursery: trio.Nursery, monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = await nursery.start(hung_server)
    cport, creceived = await nursery.start(recording_server)
    gate_connect(monkeypatch, cport)
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
    for url in (f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{cport}/"):
        with trio.move_on_after(0.05) as scope:
            await f.fetch(spec(url), abort=Abort())
        assert scope.cancelled_caught
        assert f.statistics().in_use == 0
        assert not any(f._pool._idle.values())
    assert creceived == []
    await f.aclose()


def _tls_fetcher(tmp_path: Path) -> tuple[Fetcher, ssl.SSLContext]:
    files = nats_tls_files(tmp_path)
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW, timeout_s=30)
    client = ssl.create_default_context(cafile=str(files.ca))
    f._ssl = client
    f._pool._ssl = client
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(str(files.server_cert), str(files.server_key))
    return f, server


async def test_tls_timeouts_in_the_handshake_and_the_response(
    nursery: trio.Nursery, tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    f, server_ctx = _tls_fetcher(tmp_path)
    silent, _ = await nursery.start(hung_server)  # accepts TCP, never does the handshake

    async def tls_hung(task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_ssl_over_tcp_listeners(0, server_ctx, host="127.0.0.1")
        transport = listeners[0].transport_listener
        assert isinstance(transport, trio.SocketListener)
        task_status.started(transport.socket.getsockname()[1])

        async def one(stream: trio.SSLStream[trio.SocketStream]) -> None:
            try:
                while await stream.receive_some(65536):
                    pass
            except trio.BrokenResourceError:
                pass

        await trio.serve_listeners(one, listeners)

    answering = await nursery.start(tls_hung)
    out: list[str] = []
    for p in (silent, answering):
        url = f"https://127.0.0.1:{p}/"
        await fetch_outcome(f, FetchSpec("GET", url, [], None, "follow", 1.0), Abort(), out)
        assert out[-1] == f"request-timeout: network timeout at: {url}"
    assert f.statistics().in_use == 0
    assert not any(f._pool._idle.values())
    await f.aclose()


async def test_a_proxied_request_times_out_and_aborts(nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    port, connections = await nursery.start(hung_server)  # the proxy: reads, never answers
    proxies = ProxySettings.from_environment({"HTTP_PROXY": f"http://127.0.0.1:{port}"})
    f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW, proxies=proxies)
    url = "http://127.0.0.1:9/x"
    out: list[str] = []
    await fetch_outcome(f, FetchSpec("GET", url, [], None, "follow", 1.0), Abort(), out)
    abort = Abort()
    async with trio.open_nursery() as n:
        n.start_soon(fetch_outcome, f, spec(url), abort, out)
        await trio.testing.wait_all_tasks_blocked()
        abort.abort("the invocation ended")
    assert out == [f"request-timeout: network timeout at: {url}", "cancelled: the invocation ended"]
    assert f.statistics().in_use == 0
    await f.aclose()


async def test_a_fetcher_used_again_after_aclose_still_times_out(
    nursery: trio.Nursery, autojump_clock: trio.abc.Clock
) -> None:
    # Whether a cancelled watchdog exits before the next request's _watch() depends on trio's
    # (random) order within a batch, so 10 fresh Fetchers: before the fix ~half lost their timeout.
    port, _ = await nursery.start(hung_server)
    url = f"http://127.0.0.1:{port}/"
    lost = 0
    for _ in range(10):
        f = Fetcher(user_agent="t", egress_allow=SINK_ALLOW)
        out: list[str] = []
        await fetch_outcome(f, FetchSpec("GET", url, [], None, "follow", 0.5), Abort(), out)  # starts the watchdog
        await f.aclose()  # cancels it; no idle connection, so aclose() has no checkpoint
        with trio.move_on_after(60) as scope:
            await fetch_outcome(f, FetchSpec("GET", url, [], None, "follow", 0.5), Abort(), out)
        lost += scope.cancelled_caught
        await f.aclose()
        await trio.testing.wait_all_tasks_blocked()
    assert lost == 0, f"{lost} of 10 requests outlived their 0.5 s timeout by 60 s: no watchdog ran"
