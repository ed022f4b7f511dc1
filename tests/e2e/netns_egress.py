"""Egress policy cases, run by test_egress_netns.py inside a fresh network namespace.

Not collected on its own (the name has no `test_` prefix): the outer test starts
`unshare --net`, brings up `lo` with stand-in addresses (10.99.0.1 for an internal
service, 169.254.169.254 and 100.100.100.200 and fd00:ec2::254 for the metadata services)
and runs pytest on this file there. So a request that leaks reaches a recording server
and is seen, and nothing can leave the machine.

Every case goes through the real daemon: a function fetches each URL and returns what
happened, run with the real `segfuncctl test ... --json`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import RecordingServer

pytestmark = pytest.mark.skipif(
    os.environ.get("SEGFUNCD_IN_NETNS") != "1", reason="runs only inside the namespace made by test_egress_netns.py"
)

PROBE = """
async function onTrack(event, settings) {
  const out = [];
  for (const c of event.properties.cases) {
    try {
      const r = await fetch(c.url, { method: c.method || "GET", headers: c.headers || {} });
      out.push({ url: c.url, status: r.status, text: await r.text() });
    } catch (e) {
      out.push({ url: c.url, name: e && e.name, error: String(e && e.message) });
    }
  }
  return out;
}
"""


class Servers:
    def __init__(self) -> None:
        self.internal = RecordingServer("10.99.0.1", "internal")
        self.internal2 = RecordingServer("10.99.0.1", "internal2")
        self.loop = RecordingServer("127.0.0.1", "loopback")
        self.loop6 = RecordingServer("::1", "loopback6")
        self.meta = RecordingServer("169.254.169.254", "metadata")
        self.alibaba = RecordingServer("100.100.100.200", "alibaba")
        self.aws6 = RecordingServer("fd00:ec2::254", "aws6")
        self.proxy = RecordingServer("127.0.0.1", "proxy")
        self.all = [
            self.internal,
            self.internal2,
            self.loop,
            self.loop6,
            self.meta,
            self.alibaba,
            self.aws6,
            self.proxy,
        ]

    def clear(self) -> None:
        for s in self.all:
            s.records.clear()

    def denied_spellings(self) -> list[str]:
        """Every spelling of a denied address the issue names, each at a port a recording server listens on."""
        m, lp, l6 = self.meta.port, self.loop.port, self.loop6.port
        return [
            # 169.254.169.254 (link-local metadata)
            f"http://169.254.169.254:{m}/latest",
            f"http://2852039166:{m}/latest",
            f"http://0xa9fea9fe:{m}/latest",
            f"http://0251.0376.0251.0376:{m}/latest",
            f"http://169.254.43518:{m}/latest",
            f"http://169.254.169.254.:{m}/latest",
            f"http://%31%36%39.254.169.254:{m}/latest",
            f"http://[::ffff:169.254.169.254]:{m}/latest",
            f"http://[::ffff:a9fe:a9fe]:{m}/latest",
            f"http://[::169.254.169.254]:{m}/latest",
            f"http://[64:ff9b::a9fe:a9fe]:{m}/latest",
            f"http://[2002:a9fe:a9fe::]:{m}/latest",
            # other metadata services
            f"http://100.100.100.200:{self.alibaba.port}/latest",
            f"http://[fd00:ec2::254]:{self.aws6.port}/latest",
            # loopback (the daemon's own intake lives here)
            f"http://127.0.0.1:{lp}/v1/track",
            f"http://2130706433:{lp}/v1/track",
            f"http://0x7f000001:{lp}/v1/track",
            f"http://0177.0.0.1:{lp}/v1/track",
            f"http://127.1:{lp}/v1/track",
            f"http://127.0.0.1.:{lp}/v1/track",
            f"http://localhost:{lp}/v1/track",
            f"http://[::ffff:127.0.0.1]:{lp}/v1/track",
            f"http://[64:ff9b::7f00:1]:{lp}/v1/track",
            f"http://0.0.0.0:{lp}/v1/track",
            f"http://[::1]:{l6}/v1/track",
        ]


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    s = Servers()
    yield s
    for server in s.all:
        server.stop()


@pytest.fixture
def fresh(servers: Servers) -> Servers:
    servers.clear()
    return servers


def probe(d: Any, cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the probe function over `cases` with `segfuncctl test --json`; what it returned per case.

    Six cases per event: a return value is capped at 4 KB (prelude VALUE_CAP).
    """
    events = [
        {"type": "track", "event": "Probe", "userId": "u", "properties": {"cases": cases[i : i + 6]}}
        for i in range(0, len(cases), 6)
    ]
    out = d.ctl("test", "probe", "-", "--json", input=json.dumps(events))
    assert out.returncode == 0, out.stderr + out.stdout
    returned: list[dict[str, Any]] = []
    for result in json.loads(out.stdout)["results"]:
        assert result.get("error") is None and isinstance(result["return"], list), result
        returned += result["return"]
    assert len(returned) == len(cases)
    return returned


def assert_blocked(results: list[dict[str, Any]]) -> None:
    for r in results:
        assert r.get("name") == "FetchError" and "blocked by egress policy" in r.get("error", ""), r


def seen(servers: Servers) -> dict[str, list[str]]:
    return {s.name: [r.target for r in s.records] for s in servers.all if s.records}


def test_every_spelling_of_a_denied_address_is_blocked_direct(daemon: Any, fresh: Servers) -> None:
    d = daemon("[runtime]\negress_allow = []\n", plugins={"probe": PROBE})
    urls = [*fresh.denied_spellings(), d.intake_url + "/v1/track"]
    results = probe(d, [{"url": u, "method": "POST"} for u in urls])
    assert_blocked(results)
    assert seen(fresh) == {}  # nothing reached any server, the daemon's own intake included
    # private ranges stay allowed: the internal service answers
    [ok] = probe(d, [{"url": fresh.internal.url + "/hook"}])
    assert (ok["status"], ok["text"]) == (200, "internal saw /hook")


def test_malformed_urls_are_errors_not_crashes(daemon: Any, fresh: Servers) -> None:
    d = daemon("[runtime]\negress_allow = []\n", plugins={"probe": PROBE})
    bad = ["http://1.2.3.4.5/", "http://0x1ffffffff/", "http://256.0.0.1/", "http://[::1/", "http://a%00b/", "http:///"]
    results = probe(d, [{"url": u} for u in bad] + [{"url": fresh.internal.url + "/after"}])
    for r in results[:-1]:
        assert r.get("name") in ("FetchError", "TypeError") and r.get("error"), r
    assert results[-1]["status"] == 200  # the runner is fine afterwards
    assert seen(fresh) == {"internal": ["/after"]}


def test_through_a_proxy_denied_addresses_never_reach_it_and_no_proxy_holds(daemon: Any, fresh: Servers) -> None:
    env = {"HTTP_PROXY": fresh.proxy.url, "HTTPS_PROXY": fresh.proxy.url, "NO_PROXY": "169.254.169.254,10.99.0.1"}
    d = daemon("[runtime]\negress_allow = []\n", plugins={"probe": PROBE}, env=env)
    p = fresh.internal.port
    # every denied spelling is refused before the proxy sees it (a hostname is resolved here first),
    # over http (absolute-form) and https (CONNECT) alike
    denied = fresh.denied_spellings()
    assert_blocked(probe(d, [{"url": u} for u in denied + [u.replace("http://", "https://") for u in denied]]))
    # a redirect from a proxied hop to a denied address is refused too
    hop = f"http://10.99.0.2:{p}/redirect?to=http://2852039166:{fresh.meta.port}/latest"
    assert_blocked(probe(d, [{"url": hop}]))
    assert seen(fresh) == {"proxy": [hop]}
    fresh.clear()
    # NO_PROXY=10.99.0.1 matches every spelling of it: all go direct, none via the proxy
    bypass = [
        f"http://10.99.0.1:{p}/a",
        f"http://174260225:{p}/b",
        f"http://0x0a630001:{p}/c",
        f"http://10.99.1:{p}/d",
        f"http://10.99.0.1.:{p}/e",
        f"http://[::ffff:10.99.0.1]:{p}/f",
    ]
    results = probe(d, [{"url": u} for u in bypass])
    assert [r.get("text") for r in results] == [f"internal saw /{c}" for c in "abcdef"], results
    assert seen(fresh) == {"internal": ["/a", "/b", "/c", "/d", "/e", "/f"]}
    fresh.clear()
    # an allowed destination not in NO_PROXY goes through the proxy, in canonical form
    [via] = probe(d, [{"url": f"http://0x0a630002:{p}/x"}])
    assert via["text"] == f"proxy saw http://10.99.0.2:{p}/x"
    assert seen(fresh) == {"proxy": [f"http://10.99.0.2:{p}/x"]}


def test_redirects_are_checked_per_hop_and_drop_credentials_across_origins(daemon: Any, fresh: Servers) -> None:
    d = daemon("[runtime]\negress_allow = []\n", plugins={"probe": PROBE})
    base = fresh.internal.url
    to_denied = [
        f"{base}/redirect?to=http://127.0.0.1:{fresh.loop.port}/v1/track",
        f"{base}/redirect?to=http://0xa9fea9fe:{fresh.meta.port}/latest",
        f"{base}/redirect?status=307&to=http://[64:ff9b::a9fe:a9fe]:{fresh.meta.port}/latest",
        f"{base}/redirect?to=http://localhost:{fresh.loop.port}/v1/track",
    ]
    assert_blocked(probe(d, [{"url": u} for u in to_denied]))
    assert set(seen(fresh)) == {"internal"}  # only the first hops were made
    fresh.clear()
    secret = {"Authorization": "Bearer s3cret", "Cookie": "sid=1", "Proxy-Authorization": "Basic eDp5", "X-Keep": "1"}
    cross = [
        {"url": f"{base}/redirect?to={fresh.internal2.url}/landing", "headers": secret},
        {"url": f"{base}/redirect?status=307&to={fresh.internal2.url}/landing307", "headers": secret},
        {"url": f"{base}/redirect?to=/same", "headers": secret},
    ]
    results = probe(d, cross)
    assert [r["status"] for r in results] == [200, 200, 200], results
    landed = {r.target: r.headers for r in fresh.internal2.records}
    for path in ("/landing", "/landing307"):
        assert landed[path].get("x-keep") == "1"
        assert not {"authorization", "cookie", "proxy-authorization"} & set(landed[path]), landed[path]
    same = next(r for r in fresh.internal.records if r.target == "/same")
    assert same.headers.get("authorization") == "Bearer s3cret"  # same origin keeps it


def test_egress_allow_and_deny_change_the_defaults(daemon: Any, fresh: Servers) -> None:
    lp = fresh.loop.port
    config = f'[runtime]\negress_allow = ["127.0.0.1:{lp}"]\negress_deny = ["10.99.0.0/24"]\n'
    d = daemon(config, plugins={"probe": PROBE})
    results = probe(
        d,
        [
            {"url": f"http://127.0.0.1:{lp}/opened"},
            {"url": f"http://2130706433:{lp}/opened2"},
            {"url": f"http://127.0.0.1:{fresh.proxy.port}/other-port"},
            {"url": fresh.internal.url + "/now-denied"},
        ],
    )
    assert [r.get("status") for r in results[:2]] == [200, 200], results
    assert_blocked(results[2:])
    assert seen(fresh) == {"loopback": ["/opened", "/opened2"]}
