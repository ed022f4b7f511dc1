"""fetch() in a real runner: node-fetch semantics, egress_deny, proxies, limits."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import SINK_ALLOW
from test_runner_pool import plugin, track

from segfuncd.outcomes import Outcome
from segfuncd.runner import open_runner_pool


async def fetch_once(url: str, init: dict[str, Any] | None = None, **pool_kw: Any) -> Any:
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW, **pool_kw) as pool:
        [r] = await pool.invoke(plugin("fetcher"), [track(url=url, init=init or {})], {})
    return r


async def test_non_2xx_does_not_throw(sink: Any) -> None:
    sink.behaviour.status = 503
    r = await fetch_once(sink.url + "/x")
    assert r.outcome is Outcome.DELIVERED and r.value["status"] == 503 and r.value["ok"] is False


async def test_link_local_metadata_address_is_blocked_by_default() -> None:
    r = await fetch_once("http://169.254.169.254/latest/meta-data/")
    assert (r.outcome, r.error_name) == (Outcome.RETRY, "FetchError")
    assert r.error_message.startswith("request to http://169.254.169.254/latest/meta-data/ failed, reason: blocked")


async def test_egress_policy_applies_after_dns_resolution(sink: Any) -> None:
    url = sink.url.replace("127.0.0.1", "localhost") + "/x"
    async with open_runner_pool(workers=1) as pool:  # loopback denied by default
        [r] = await pool.invoke(plugin("fetcher"), [track(url=url, init={})], {})
    assert r.error_name == "FetchError" and "blocked by egress policy" in (r.error_message or "")
    assert sink.requests == []


async def test_unknown_host_rejects_like_node_fetch() -> None:
    r = await fetch_once("https://foo.invalid/")
    assert (r.outcome, r.error_name) == (Outcome.RETRY, "FetchError")
    assert r.error_message == "request to https://foo.invalid/ failed, reason: getaddrinfo ENOTFOUND foo.invalid"


async def test_connection_refused_is_a_fetch_error(sink: Any) -> None:
    port = sink.port
    sink.stop()
    r = await fetch_once(f"http://127.0.0.1:{port}/")
    assert r.error_name == "FetchError" and "ECONNREFUSED" in r.error_message


async def test_user_agent_default_and_override(sink: Any) -> None:
    await fetch_once(sink.url + "/a")
    await fetch_once(sink.url + "/b", {"headers": {"User-Agent": "mine/1"}})
    a, b = sink.wait_for(2)
    assert a.headers["user-agent"].startswith("segfuncd/") and b.headers["user-agent"] == "mine/1"


async def test_lower_case_method_url_object_and_body(sink: Any) -> None:
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        v = plugin("outcomes")
        [r] = await pool.invoke(v, [track(action="fetch")], {"url": sink.url + "/p"})
    [req] = sink.wait_for(1)
    assert r.value == 200 and req.method == "POST" and req.json()["properties"] == {"action": "fetch"}


async def test_per_request_timeout(sink: Any) -> None:
    sink.behaviour.delay_s = 2.0
    r = await fetch_once(sink.url + "/slow", {"timeout": 200})
    assert r.error_name == "FetchError" and "timeout" in r.error_message


async def test_response_size_is_capped(sink: Any) -> None:
    sink.behaviour.body = b"x" * (11 * 1024 * 1024)
    r = await fetch_once(sink.url + "/big")
    assert r.error_name == "FetchError" and "over limit" in r.error_message


async def test_proxy_variables_are_honoured_but_invisible_to_js(sink: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", sink.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        [r] = await pool.invoke(plugin("fetcher"), [track(url="http://upstream.example/path")], {})
        [g] = await pool.invoke(plugin("outcomes"), [track(action="globals")], {})
    [req] = sink.wait_for(1)
    assert r.outcome is Outcome.DELIVERED
    assert req.path == "http://upstream.example/path"  # absolute-form: it went through the proxy
    assert "process" not in g.value and sink.url not in str(g.value)


async def test_url_object_is_accepted_where_a_string_is(sink: Any) -> None:
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        [r] = await pool.invoke(plugin("outcomes"), [track(action="fetchurl")], {"url": sink.url + "/u?q=1"})
    [req] = sink.wait_for(1)
    assert r.value == 200 and (req.method, req.path, req.body) == ("PUT", "/u?q=1", b"u")
