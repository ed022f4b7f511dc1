"""fetch, Request/Response, FormData, atob and btoa as Segment's npm packages (node-fetch 2.6,
form-data, atob 2.1, btoa 1.2): every case of tests/fixtures/fetch.json (made by Node 20 with
tests/fixtures/node/make_fetch.mjs) gives the same value in a real runner, and the server saw the
same requests (method, target, body bytes, framing headers) as Node's did."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import trio
from helpers import (
    SINK_ALLOW,
    NodeFixtureServer,
    RecordingServer,
    builtin_fixture,
    dead_loopback_url,
    node_fixture_plugin,
)

from segfuncd.runner import PluginVersion, open_runner_pool

FIXTURE = builtin_fixture("fetch")
CASES = FIXTURE["cases"]


@pytest.fixture(scope="module")
def outcomes() -> Iterator[list[tuple[Any, list[dict[str, Any]]]]]:
    """Every case run once, in order, in one runner: (value, requests the server saw)."""
    server = NodeFixtureServer(FIXTURE["routes"])
    version = PluginVersion.from_source("fetchnode", node_fixture_plugin(FIXTURE))
    settings = {"B": server.url, "DEAD": dead_loopback_url()}
    out: list[tuple[Any, list[dict[str, Any]]]] = []

    async def main() -> None:
        async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
            for i in range(len(CASES)):
                server.seen.clear()
                [r] = await pool.invoke(version, [{"type": "track", "event": "x", "i": i}], settings)
                await trio.sleep(0.02)  # a request still in flight lands in its own case, as in Node
                value = r.value if r.error_name is None else {"invocation failed": [r.error_name, r.error_message]}
                out.append((value, list(server.seen)))

    try:
        trio.run(main)
        yield out
    finally:
        server.stop()


def _norm_requests(seen: list[dict[str, Any]], base: str) -> list[dict[str, Any]]:
    return [{**r, "target": r["target"].replace(base, "{B}")} for r in seen]


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c["id"] for c in CASES])
def test_matches_node(outcomes: list[tuple[Any, list[dict[str, Any]]]], index: int) -> None:
    value, seen = outcomes[index]
    case = CASES[index]
    assert value == case["expect"], case["code"]
    assert seen == case["requests"], case["code"]


REDIRECTED = """
async function onTrack(event) {
  try {
    const res = await fetch(event.url, event.init || {});
    return {status: res.status, location: res.headers.get('location'), body: await res.text()};
  } catch (e) { return {error: [e.name, e.message, e.type, e.code === undefined ? null : e.code]}; }
}
"""


async def _fetch_in_runner(allow: tuple[str, ...], *requests: tuple[str, dict[str, Any]]) -> list[Any]:
    version = PluginVersion.from_source("redirected", REDIRECTED)
    async with open_runner_pool(workers=1, egress_allow=allow) as pool:
        out = []
        for url, init in requests:
            [r] = await pool.invoke(version, [{"type": "track", "event": "x", "url": url, "init": init}], {})
            out.append(r.value)
    return out


@pytest.mark.parametrize("to", ["other-port", "metadata", "mapped-v6", "decimal-ip"])
async def test_every_redirect_hop_passes_the_egress_policy(to: str) -> None:
    """A destination the function may reach redirects to one it may not: the hop is refused before
    any byte goes there, and the FetchError names that hop as node-fetch would."""
    allowed, victim = RecordingServer("127.0.0.1", "allowed"), RecordingServer("127.0.0.1", "victim")
    try:
        target = {
            "other-port": f"{victim.url}/secret",
            "metadata": "http://169.254.169.254/latest/meta-data/",
            "mapped-v6": f"http://[::ffff:127.0.0.1]:{victim.port}/secret",
            "decimal-ip": f"http://2130706433:{victim.port}/secret",
        }[to]
        url = f"{allowed.url}/redirect?" + urllib.parse.urlencode({"to": target, "status": "307"})
        value, manual = await _fetch_in_runner((f"127.0.0.1:{allowed.port}",), (url, {}), (url, {"redirect": "manual"}))
        name, message, kind, code = value["error"]
        assert (name, kind, code) == ("FetchError", "system", "EBLOCKED"), value
        assert message.startswith("request to http://") and "blocked" in message and "/redirect" not in message
        path = urllib.parse.urlsplit(url)._replace(scheme="", netloc="").geturl()
        assert [r.target for r in allowed.records] == [path, path]
        assert victim.records == []
        # manual: the 3xx comes back to the function and nothing is sent to the target
        assert manual["status"] == 307 and victim.records == []
    finally:
        allowed.stop()
        victim.stop()


async def test_a_binary_body_comes_back_byte_exact_through_a_redirect() -> None:
    """Every byte value, after a redirect hop, as res.buffer() and res.arrayBuffer() (3 bytes stay 3)."""
    every = bytes(range(256)) * 3
    server = NodeFixtureServer(
        {
            "/all": [200, [["content-type", "application/octet-stream; charset=utf-8"]], every.hex(), 0],
            "/go": [301, [["location", "/all"]], "", 0],
        }
    )
    source = """
    async function onTrack(event, settings) {
      const a = await (await fetch(settings.B + '/go')).buffer();
      const b = new Uint8Array(await (await fetch(settings.B + '/all')).arrayBuffer());
      return [a.length, a.toString('hex'), b.length, Buffer.from(b).toString('hex')];
    }
    """
    try:
        async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
            [r] = await pool.invoke(PluginVersion.from_source("bin", source), [{"type": "track"}], {"B": server.url})
    finally:
        server.stop()
    assert r.value == [len(every), every.hex(), len(every), every.hex()]


async def test_a_form_boundary_cannot_inject_headers() -> None:
    """A boundary with CR/LF (from event data, say) fails the request; nothing reaches the server."""
    server = NodeFixtureServer({})
    source = """
    async function onTrack(event, settings) {
      const f = new FormData();
      f.setBoundary(event.boundary);
      f.append('a', '1');
      try { await fetch(settings.B + '/echo', {method: 'POST', body: f}); return 'sent' }
      catch (e) { return [e.name, e.type] }
    }
    """
    try:
        async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
            [r] = await pool.invoke(
                PluginVersion.from_source("formhdr", source),
                [{"type": "track", "boundary": "x\r\nX-Injected: 1\r\n\r\nGET /evil HTTP/1.1"}],
                {"B": server.url},
            )
    finally:
        server.stop()
    assert r.value == ["FetchError", "system"] and server.seen == []
