"""Who sent a request: peer, trusted proxies' X-Forwarded-For, browsers; channel and context.ip."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from segfuncd.peers import TrustedProxies, client_address, from_browser
from segfuncd.spec import prepare_batch, prepare_event

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
XFF = {"x-forwarded-for": "203.0.113.7, 10.0.0.2"}


def ids() -> str:
    return "generated"


class TestClientAddress:
    def test_the_peer_is_the_client_when_no_proxy_is_trusted(self) -> None:
        assert client_address("198.51.100.1", XFF, TrustedProxies()) == "198.51.100.1"
        assert client_address("::ffff:127.0.0.1", {}, TrustedProxies()) == "127.0.0.1"
        assert client_address(None, XFF, TrustedProxies()) is None

    def test_a_trusted_proxy_gives_the_first_forwarded_hop(self) -> None:
        trusted = TrustedProxies.parse(["10.0.0.0/8", "unix"])
        assert client_address("10.1.2.3", XFF, trusted) == "203.0.113.7"
        assert client_address(None, XFF, trusted) == "203.0.113.7"

    @pytest.mark.parametrize("forwarded", ["not-an-ip", "", "999.1.1.1, 1.2.3.4"])
    def test_a_forged_or_broken_header_leaves_the_peer(self, forwarded: str) -> None:
        trusted = TrustedProxies.parse(["10.0.0.0/8"])
        assert client_address("10.1.2.3", {"x-forwarded-for": forwarded}, trusted) == "10.1.2.3"
        assert client_address("198.51.100.9", XFF, trusted) == "198.51.100.9"  # untrusted peer

    def test_a_bad_entry_is_refused(self) -> None:
        with pytest.raises(ValueError):
            TrustedProxies.parse(["proxy.example"])

    def test_an_origin_header_means_a_browser(self) -> None:
        assert from_browser({"origin": "https://shop.example"}) and not from_browser({})


class TestChannelAndIp:
    def test_a_browser_request_is_channel_client_and_gets_the_ip(self) -> None:
        e = prepare_event(
            {"userId": "u", "event": "E"}, type="track", received_at=NOW, new_id=ids, browser=True, ip="203.0.113.7"
        )
        assert e["channel"] == "client" and e["context"] == {"ip": "203.0.113.7"}

    def test_an_analytics_js_event_is_client_even_without_origin(self) -> None:
        lib = {"context": {"library": {"name": "analytics.js", "version": "npm:next-1.70.0"}}}
        e = prepare_event({"userId": "u", "event": "E", **lib}, type="track", received_at=NOW, new_id=ids)
        assert e["channel"] == "client" and "ip" not in e["context"]

    def test_a_server_event_stays_server_and_own_values_win(self) -> None:
        own = {"userId": "u", "event": "E", "channel": "mobile", "context": {"ip": "192.0.2.1"}}
        e = prepare_event(own, type="track", received_at=NOW, new_id=ids, browser=True, ip="203.0.113.7")
        assert e["channel"] == "mobile" and e["context"] == {"ip": "192.0.2.1"}
        plain = prepare_event({"userId": "u", "event": "E"}, type="track", received_at=NOW, new_id=ids, ip="10.0.0.1")
        assert plain["channel"] == "server" and plain["context"]["ip"] == "10.0.0.1"

    def test_batch_items_get_ip_without_touching_the_shared_envelope_context(self) -> None:
        body = {
            "context": {"locale": "en"},
            "batch": [{"type": "track", "userId": "u", "event": str(i)} for i in range(2)],
        }
        accepted, _ = prepare_batch(body, received_at=NOW, new_id=ids, ip="203.0.113.7", browser=True)
        assert [e["context"] for _, e in accepted] == [{"locale": "en", "ip": "203.0.113.7"}] * 2
        assert body["context"] == {"locale": "en"} and all(e["channel"] == "client" for _, e in accepted)
