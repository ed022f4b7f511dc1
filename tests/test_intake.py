"""segfuncd.intake over real TCP and Unix sockets, against the real SQLite store."""

from __future__ import annotations

import base64
import gzip
import json
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from structlog.testing import capture_logs
from test_intake_support import open_test_store, stored_events, stored_functions

from segfuncd.intake import Intake, serve_intake
from segfuncd.server import Request

KEY = "wk-test"
NOW = 1_714_564_800.25  # 2024-05-01T12:00:00.250Z
FUNCTIONS = ("teams", "slack")


def basic(key: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@dataclass
class Running:
    intake: Intake
    store: Any
    url: str
    unix: Path

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10)

    def unix_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url="http://intake", transport=httpx.AsyncHTTPTransport(uds=str(self.unix)), timeout=10
        )


async def run_intake(nursery: trio.Nursery, store: Any, tmp_path: Path, **kw: Any) -> Running:
    options: dict[str, Any] = {"routable": lambda: FUNCTIONS, "write_keys": (KEY,), "clock": lambda: NOW}
    options.update(kw)
    intake = Intake(store, **options)
    unix = tmp_path / "intake.sock"
    server = await nursery.start(
        lambda task_status: serve_intake(intake, listen="127.0.0.1:0", unix_socket=unix, task_status=task_status)
    )
    host, port = server.addresses[0][:2]
    return Running(intake, store, f"http://{host}:{port}", unix)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Any]:
    async with open_test_store(tmp_path / "segfuncd.db") as s:
        yield s


@pytest.fixture
async def running(nursery: trio.Nursery, store: Any, tmp_path: Path) -> Running:
    return await run_intake(nursery, store, tmp_path)


TRACK = {"userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}}
ONE_OF_EACH: dict[str, dict[str, Any]] = {
    "track": TRACK,
    "identify": {"userId": "u1", "traits": {"email": "a@b.c"}},
    "page": {"anonymousId": "a1", "name": "Home"},
    "screen": {"userId": "u1", "name": "Main"},
    "group": {"userId": "u1", "groupId": "g1"},
    "alias": {"previousId": "a1", "userId": "u1"},
}


class TestEndpoints:
    @pytest.mark.parametrize("transport", ["tcp", "unix"])
    @pytest.mark.parametrize("type", sorted(ONE_OF_EACH))
    async def test_each_single_endpoint_commits_the_event(self, running: Running, type: str, transport: str) -> None:
        async with running.client() if transport == "tcp" else running.unix_client() as c:
            r = await c.post(f"/v1/{type}", json={**ONE_OF_EACH[type], "messageId": f"m-{type}"}, headers=basic(KEY))
        assert r.status_code == 200 and r.json() == {"success": True}
        (event,) = await stored_events(running.store)
        assert event["type"] == type and event["messageId"] == f"m-{type}"
        assert (
            event["receivedAt"] == "2024-05-01T12:00:00.250Z" and event["channel"] == "server" and event["version"] == 2
        )
        for k, v in ONE_OF_EACH[type].items():
            assert event[k] == v

    async def test_unix_socket_has_mode_0660(self, running: Running) -> None:
        assert stat.S_IMODE(running.unix.stat().st_mode) == 0o660

    async def test_unix_socket_serves_the_same_api(self, running: Running) -> None:
        async with running.unix_client() as c:
            r = await c.post("/v1/track", json={**TRACK, "writeKey": KEY})
            h = await c.get("/health")
        assert r.status_code == 200 and h.status_code == 200
        assert [e["event"] for e in await stored_events(running.store)] == ["Signed Up"]

    @pytest.mark.parametrize("transport", ["tcp", "unix"])
    @pytest.mark.parametrize("path", ["/v1/batch", "/v1/import"])
    async def test_batch_and_import(self, running: Running, path: str, transport: str) -> None:
        body = {"writeKey": KEY, "batch": [{**ONE_OF_EACH[t], "type": t} for t in sorted(ONE_OF_EACH)]}
        async with running.client() if transport == "tcp" else running.unix_client() as c:
            r = await c.post(path, json=body)
        assert r.status_code == 200 and r.json() == {"success": True, "rejected": []}
        assert sorted(e["type"] for e in await stored_events(running.store)) == sorted(ONE_OF_EACH)

    async def test_health_reports_queue_depth(self, running: Running) -> None:
        async with running.client() as c:
            await c.post("/v1/track", json=TRACK, headers=basic(KEY))
            r = await c.get("/health")
        assert r.status_code == 200 and r.json()["ok"] is True and r.json()["pending"] >= 1

    async def test_unknown_path_and_wrong_method(self, running: Running) -> None:
        async with running.client() as c:
            assert (await c.post("/v1/nope", json=TRACK)).status_code == 404
            r = await c.get("/v1/track")
        assert r.status_code == 405 and "POST" in r.json()["message"]

    async def test_draining_answers_503(self, running: Running) -> None:
        running.intake.draining = True
        async with running.client() as c:
            r = await c.post("/v1/track", json=TRACK, headers=basic(KEY))
            h = await c.get("/health")
        assert r.status_code == 503 and "retry-after" in r.headers and h.status_code == 503
        assert await stored_events(running.store) == []


class TestAuth:
    async def test_basic_auth_username(self, running: Running) -> None:
        async with running.client() as c:
            assert (await c.post("/v1/track", json=TRACK, headers=basic(KEY))).status_code == 200
            r = await c.post("/v1/track", json=TRACK, headers=basic("wrong"))
        assert r.status_code == 401 and "write key" in r.json()["message"]

    async def test_write_key_in_body_and_batch_envelope(self, running: Running) -> None:
        async with running.client() as c:
            assert (await c.post("/v1/track", json={**TRACK, "writeKey": KEY})).status_code == 200
            assert (
                await c.post("/v1/batch", json={"writeKey": KEY, "batch": [{**TRACK, "type": "track"}]})
            ).status_code == 200
            assert (await c.post("/v1/track", json={**TRACK, "writeKey": ["a list"]})).status_code == 401
            r1 = await c.post("/v1/track", json={**TRACK, "writeKey": "nope"})
            r2 = await c.post("/v1/track", json=TRACK)
        assert r1.status_code == 401 and r2.status_code == 401 and "missing write key" in r2.json()["message"]
        events = await stored_events(running.store)
        assert len(events) == 2 and all("writeKey" not in e for e in events)

    async def test_without_keys_loopback_and_unix_need_none(
        self, nursery: trio.Nursery, store: Any, tmp_path: Path
    ) -> None:
        running = await run_intake(nursery, store, tmp_path, write_keys=())
        async with running.client() as c:
            assert (await c.post("/v1/track", json=TRACK)).status_code == 200
        async with running.unix_client() as c:
            assert (await c.post("/v1/track", json=TRACK)).status_code == 200

    async def test_without_keys_remote_clients_are_refused_unless_allowed(self, store: Any) -> None:
        req = Request(
            method="POST",
            target="/v1/track",
            path="/v1/track",
            query={},
            headers={},
            peer="192.0.2.7",
            local=False,
            body=json.dumps(TRACK).encode(),
        )
        closed = Intake(store, routable=lambda: (), write_keys=())
        r = await closed.handle(req)
        assert r.status == 403 and b"loopback" in r.body  # type: ignore[operator]
        opened = Intake(store, routable=lambda: (), write_keys=(), allow_remote_without_key=True)
        assert (await opened.handle(req)).status == 200


class TestBodies:
    async def test_gzip_body(self, running: Running) -> None:
        body = gzip.compress(json.dumps({**TRACK, "writeKey": KEY}).encode())
        async with running.client() as c:
            r = await c.post(
                "/v1/track", content=body, headers={"content-encoding": "gzip", "content-type": "application/json"}
            )
        assert r.status_code == 200 and len(await stored_events(running.store)) == 1

    async def test_gzip_bomb_is_413_by_decompressed_size(self, running: Running) -> None:
        bomb = gzip.compress(b'{"a":"' + b"a" * 5_000_000 + b'"}')
        assert len(bomb) < 10_000
        async with running.client() as c:
            r = await c.post("/v1/batch", content=bomb, headers={"content-encoding": "gzip", **basic(KEY)})
        assert r.status_code == 413 and "decompressed" in r.json()["message"]

    async def test_broken_gzip_is_400(self, running: Running) -> None:
        async with running.client() as c:
            r = await c.post("/v1/track", content=b"not gzip", headers={"content-encoding": "gzip", **basic(KEY)})
        assert r.status_code == 400 and "gzip" in r.json()["message"]

    async def test_malformed_json_is_400(self, running: Running) -> None:
        async with running.client() as c:
            r = await c.post("/v1/track", content=b'{"userId": ', headers=basic(KEY))
        assert r.status_code == 400 and r.json() == {"success": False, "message": r.json()["message"]}
        assert "malformed JSON" in r.json()["message"]

    async def test_nan_and_deep_nesting_are_400_not_500(self, running: Running) -> None:
        async with running.client() as c:
            nan = await c.post(
                "/v1/track", content=b'{"userId":"u","event":"E","properties":{"x":NaN}}', headers=basic(KEY)
            )
            deep = await c.post("/v1/track", content=b'{"a":' * 20_000 + b"1" + b"}" * 20_000, headers=basic(KEY))
        assert nan.status_code == 400 and "NaN" in nan.json()["message"]
        assert deep.status_code == 400 and "deeply" in deep.json()["message"]

    async def test_wrong_content_type_is_400(self, running: Running) -> None:
        async with running.client() as c:
            r = await c.post(
                "/v1/track",
                content=b"userId=u",
                headers={"content-type": "application/x-www-form-urlencoded", **basic(KEY)},
            )
            ok = await c.post(
                "/v1/track", content=json.dumps(TRACK).encode(), headers={"content-type": "text/plain", **basic(KEY)}
            )
        assert r.status_code == 400 and "content-type" in r.json()["message"]
        assert ok.status_code == 200  # analytics.js posts text/plain

    async def test_body_over_500_kb_is_413(self, running: Running) -> None:
        items = [{"type": "track", "userId": "u", "event": "E", "properties": {"x": "a" * 20_000}}] * 30
        async with running.client() as c:
            r = await c.post("/v1/batch", json={"batch": items}, headers=basic(KEY))
        assert r.status_code == 413 and await stored_events(running.store) == []

    async def test_event_over_32_kb_is_413(self, running: Running) -> None:
        async with running.client() as c:
            r = await c.post("/v1/track", json={**TRACK, "properties": {"x": "a" * 40_000}}, headers=basic(KEY))
        assert r.status_code == 413 and "32768" in r.json()["message"]


class TestValidation:
    @pytest.mark.parametrize(
        ("path", "body", "field"),
        [
            ("track", {"userId": "u"}, "event"),
            ("track", {"event": "E"}, "anonymousId"),
            ("identify", {"traits": {}}, "userId"),
            ("group", {"userId": "u"}, "groupId"),
            ("alias", {"userId": "u"}, "previousId"),
            ("alias", {"previousId": "p"}, "userId"),
            ("track", {**TRACK, "messageId": "m" * 100}, "messageId"),
            ("track", {**TRACK, "timestamp": "last tuesday"}, "timestamp"),
            ("track", {**TRACK, "properties": "x"}, "properties"),
        ],
    )
    async def test_single_call_refusal_names_the_field(
        self, running: Running, path: str, body: dict[str, Any], field: str
    ) -> None:
        async with running.client() as c:
            r = await c.post(f"/v1/{path}", json=body, headers=basic(KEY))
        assert r.status_code == 400 and r.json()["success"] is False and field in r.json()["message"]
        assert await stored_events(running.store) == []
        assert running.intake.statistics().events_rejected == 1

    async def test_batch_item_without_type(self, running: Running) -> None:
        async with running.client() as c:
            r = await c.post("/v1/batch", json={"batch": [TRACK]}, headers=basic(KEY))
        assert r.status_code == 400 and r.json()["rejected"][0]["message"].startswith("type:")

    async def test_batch_over_2500_events(self, running: Running) -> None:
        async with running.client() as c:
            r = await c.post(
                "/v1/batch", json={"batch": [{"type": "identify", "userId": "u"}] * 2501}, headers=basic(KEY)
            )
        assert r.status_code == 400 and "2500" in r.json()["message"]

    async def test_message_id_is_added(self, running: Running) -> None:
        async with running.client() as c:
            await c.post("/v1/track", json=TRACK, headers=basic(KEY))
        (event,) = await stored_events(running.store)
        assert event["messageId"].startswith("api-") and len(event["messageId"]) < 100

    async def test_timestamp_is_corrected_for_clock_skew(self, running: Running) -> None:
        body = {
            "writeKey": KEY,
            "sentAt": "2024-05-01T13:00:00.000Z",
            "batch": [{**TRACK, "type": "track", "timestamp": "2024-05-01T12:59:30.000Z"}],
        }
        async with running.client() as c:
            await c.post("/v1/batch", json=body)
        (event,) = await stored_events(running.store)
        assert event["originalTimestamp"] == "2024-05-01T12:59:30.000Z"
        assert event["timestamp"] == "2024-05-01T11:59:30.250Z"  # receivedAt - (sentAt - originalTimestamp)
        assert event["receivedAt"] == "2024-05-01T12:00:00.250Z"


class TestBatches:
    async def test_partial_batch_commits_the_valid_items(self, running: Running) -> None:
        """Nothing valid is lost when a request is partly bad."""
        items = [
            {**TRACK, "type": "track", "messageId": "good-0"},
            {"type": "track", "userId": "u"},  # no event name
            {"type": "group", "userId": "u", "groupId": "g", "messageId": "good-2"},
            "not an object",
        ]
        with capture_logs() as logs:
            async with running.client() as c:
                r = await c.post("/v1/batch", json={"batch": items, "context": {"ip": "1.2.3.4"}}, headers=basic(KEY))
        assert r.status_code == 200
        (entry,) = [e for e in logs if e["event"] == "intake_rejected"]
        assert entry["rejected"] == 2 and entry["accepted"] == 2 and entry["index"] == 1
        assert [x["index"] for x in r.json()["rejected"]] == [1, 3] and "event" in r.json()["rejected"][0]["message"]
        events = await stored_events(running.store)
        assert sorted(e["messageId"] for e in events) == ["good-0", "good-2"]
        assert all(e["context"]["ip"] == "1.2.3.4" for e in events)
        stats = running.intake.statistics()
        assert stats.events_accepted == 2 and stats.events_rejected == 2 and stats.requests[200] == 1

    async def test_all_invalid_batch_is_400(self, running: Running) -> None:
        async with running.client() as c:
            r = await c.post("/v1/batch", json={"batch": [{"type": "track"}, {"type": "alias"}]}, headers=basic(KEY))
        assert r.status_code == 400 and len(r.json()["rejected"]) == 2 and await stored_events(running.store) == []

    async def test_duplicate_message_id_is_acknowledged_but_stored_once(self, running: Running) -> None:
        async with running.client() as c:
            for _ in range(3):
                r = await c.post("/v1/track", json={**TRACK, "messageId": "retry-me"}, headers=basic(KEY))
                assert r.status_code == 200
        assert len(await stored_events(running.store)) == 1
        stats = running.intake.statistics()
        assert stats.events_accepted == 1 and stats.events_duplicate == 2

    async def test_integrations_route_to_functions(self, running: Running) -> None:
        batch = [
            {**TRACK, "type": "track", "messageId": "all"},
            {**TRACK, "type": "track", "messageId": "only-teams", "integrations": {"All": False, "teams": True}},
            {**TRACK, "type": "track", "messageId": "not-teams", "integrations": {"teams": False}},
        ]
        async with running.client() as c:
            await c.post("/v1/batch", json={"batch": batch}, headers=basic(KEY))
        assert await stored_functions(running.store) == {
            "all": ["slack", "teams"],
            "only-teams": ["teams"],
            "not-teams": ["slack"],
        }


class TestCors:
    async def test_preflight_and_allow_origin(self, nursery: trio.Nursery, store: Any, tmp_path: Path) -> None:
        running = await run_intake(nursery, store, tmp_path, cors_origins=("https://shop.example",))
        async with running.client() as c:
            pre = await c.options(
                "/v1/track",
                headers={
                    "origin": "https://shop.example",
                    "access-control-request-method": "POST",
                    "access-control-request-headers": "content-type",
                },
            )
            post = await c.post(
                "/v1/track", json={**TRACK, "writeKey": KEY}, headers={"origin": "https://shop.example"}
            )
            other = await c.options("/v1/track", headers={"origin": "https://evil.example"})
        assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "https://shop.example"
        assert "POST" in pre.headers["access-control-allow-methods"]
        assert post.status_code == 200 and post.headers["access-control-allow-origin"] == "https://shop.example"
        assert other.status_code == 403 and "access-control-allow-origin" not in other.headers

    async def test_analytics_js_short_paths(self, running: Running) -> None:
        """analytics.js posts text/plain to /v1/t, /v1/i, ... and batches to /v1/b."""
        plain = {"content-type": "text/plain"}
        async with running.client() as c:
            for path, body in [
                ("t", TRACK),
                ("i", ONE_OF_EACH["identify"]),
                ("p", ONE_OF_EACH["page"]),
                ("s", ONE_OF_EACH["screen"]),
                ("g", ONE_OF_EACH["group"]),
                ("a", ONE_OF_EACH["alias"]),
            ]:
                r = await c.post(f"/v1/{path}", content=json.dumps({**body, "writeKey": KEY}), headers=plain)
                assert r.status_code == 200, path
            r = await c.post(
                "/v1/b", content=json.dumps({"writeKey": KEY, "batch": [{**TRACK, "type": "track"}]}), headers=plain
            )
            assert r.status_code == 200
        assert sorted(e["type"] for e in await stored_events(running.store)) == sorted([*ONE_OF_EACH, "track"])


class TestRobustness:
    async def test_slow_client_does_not_stall_others(self, nursery: trio.Nursery, store: Any, tmp_path: Path) -> None:
        running = await run_intake(nursery, store, tmp_path)
        port = int(running.url.rsplit(":", 1)[1])
        slow = await trio.open_tcp_stream("127.0.0.1", port)
        await slow.send_all(b"POST /v1/track HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
        async with running.client() as c:
            r = await c.post("/v1/track", json=TRACK, headers=basic(KEY))
        assert r.status_code == 200
        await slow.aclose()

    async def test_backpressure_is_503_with_retry_after(self, nursery: trio.Nursery, tmp_path: Path) -> None:
        async with open_test_store(tmp_path / "full.db", max_pending=2) as full:
            running = await run_intake(nursery, full, tmp_path)
            async with running.client() as c:
                statuses = [(await c.post("/v1/track", json=TRACK, headers=basic(KEY))) for _ in range(4)]
            refused = [r for r in statuses if r.status_code == 503]
            assert refused and refused[0].headers["retry-after"].isdigit()
            assert len(await stored_events(full)) == sum(1 for r in statuses if r.status_code == 200)


class TestCorsRefusal:
    """With cors_origins set, an Origin outside the list is refused whatever the content type."""

    @pytest.mark.parametrize("content_type", ["text/plain", "application/json", None])
    async def test_an_unlisted_origin_is_refused(
        self, nursery: trio.Nursery, store: Any, tmp_path: Path, content_type: str | None
    ) -> None:
        running = await run_intake(nursery, store, tmp_path, cors_origins=("https://shop.example",))
        headers = {"origin": "https://evil.example"}
        if content_type:
            headers["content-type"] = content_type
        body = json.dumps({**TRACK, "writeKey": KEY}).encode()
        async with running.client() as c:
            refused = await c.post("/v1/track", content=body, headers=headers)
            beacon = await c.post("/v1/t", content=body, headers={**headers, "origin": "null"})
            listed = await c.post("/v1/track", content=body, headers={**headers, "origin": "https://shop.example"})
            no_origin = await c.post("/v1/track", content=body)
        assert refused.status_code == 403 and "origin not allowed" in refused.json()["message"]
        assert "access-control-allow-origin" not in refused.headers
        assert beacon.status_code == 403
        assert listed.status_code == 200 and no_origin.status_code == 200
        assert running.intake.statistics().events_accepted == 2
