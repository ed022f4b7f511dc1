"""The admin API, driven through `Admin.handle` with stand-ins at its edge."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from test_admin_fakes import NOW, make_admin

from segfuncd.server import Request
from segfuncd.spec import sample_event, sample_type


def req(method: str, path: str, body: Any = None, **query: str) -> Request:
    raw = b"" if body is None else json.dumps(body).encode()
    return Request(method=method, target=path, path=path, query=query, headers={}, body=raw, peer=None, local=True)


async def call(admin: Any, method: str, path: str, body: Any = None, **query: str) -> tuple[int, Any]:
    r = await admin.handle(req(method, path, body, **query))
    assert isinstance(r.body, bytes)
    return r.status, (json.loads(r.body) if r.content_type == "application/json" else r.body.decode())


class TestStatus:
    async def test_status_has_daemon_runners_queue_intake_and_functions(self) -> None:
        admin, _, _ = make_admin()
        status, data = await call(admin, "GET", "/status")
        assert status == 200
        assert data["daemon"]["pid"] == 4242 and data["daemon"]["uptime_s"] == 7800
        assert data["runners"] == {"workers": 2, "alive": 2, "restarts": 1, "in_flight": 0, "invocations": 10}
        assert data["queue"]["pending"] == 3 and data["queue"]["dead"] == 1 and data["queue"]["retrying"] == 3
        assert data["intake"]["addresses"] == ["http://127.0.0.1:8088"]
        assert data["intake"]["accepted"] == 600 and data["intake"]["requests_rejected"] == 2
        fns = {f["name"]: f for f in data["functions"]}
        teams, broken = fns["teams"], fns["broken"]
        assert teams["state"] == "live" and len(teams["version"]) == 64 and teams["delivered"] == 120
        assert teams["discarded"] == {"EventNotSupported": 2} and teams["dead"] == 1
        assert teams["last_5m"]["count"] == 10 and teams["last_5m"]["success_rate"] == 1.0
        assert teams["last_error"] == "TypeError: x is undefined"
        assert broken["state"] == "load error" and broken["version"] is None
        assert broken["error_first_line"] == "plugins/broken.js:3: SyntaxError: unexpected token"

    async def test_config_may_be_a_callable_so_reload_is_seen(self) -> None:
        from segfuncd.config import Config, IntakeConfig

        admin, _, _ = make_admin(config=lambda: Config(intake=IntakeConfig(listen="127.0.0.1:9999")))
        _, data = await call(admin, "GET", "/status")
        assert data["intake"]["addresses"] == ["http://127.0.0.1:9999"]


class TestTest:
    async def test_runs_the_given_event_with_configured_settings_and_redacts_logs(self) -> None:
        admin, _, pool = make_admin()
        status, data = await call(admin, "POST", "/test", {"function": "teams", "event": {"type": "track"}})
        assert status == 200 and data["sample"] is False
        (r,) = data["results"]
        assert r["return"] == {"seen": "track"} and r["error"] is None
        assert r["logs"][0]["message"] == "key is [redacted]"
        assert r["requests"][0]["url"] == "http://sink/hook?k=[redacted]"
        assert pool.calls[0][2] == {"apiKey": "sk-secret-1", "channel": "ops"}

    async def test_settings_override_merges_and_is_redacted_too(self) -> None:
        admin, _, pool = make_admin()
        _, data = await call(
            admin,
            "POST",
            "/test",
            {"function": "teams", "event": {"type": "track"}, "settings": {"apiKey": "other-key"}},
        )
        assert pool.calls[0][2] == {"apiKey": "other-key", "channel": "ops"}
        assert data["results"][0]["logs"][0]["message"] == "key is [redacted]"

    async def test_an_error_is_reported_with_class_and_message(self) -> None:
        admin, _, _ = make_admin()
        _, data = await call(
            admin, "POST", "/test", {"function": "teams", "event": {"type": "track", "want": "ValidationError"}}
        )
        assert data["results"][0]["error"] == {"name": "ValidationError", "message": "nope"}

    async def test_without_an_event_a_sample_of_a_handled_type_runs(self) -> None:
        admin, _, pool = make_admin()
        _, data = await call(admin, "POST", "/test", {"function": "teams"})
        assert data["sample"] is True and pool.calls[0][1][0]["type"] == "track"

    async def test_events_array_runs_each(self) -> None:
        admin, _, pool = make_admin()
        _, data = await call(
            admin, "POST", "/test", {"function": "teams", "events": [{"type": "track"}, {"type": "identify"}]}
        )
        assert len(data["results"]) == 2 and pool.calls[0][3] is False

    @pytest.mark.parametrize(
        "body, status, words",
        [
            ({"function": "nope"}, 404, "no function named 'nope'"),
            ({"function": "broken"}, 409, "SyntaxError"),
            ({"function": "teams", "event": {"no": "type"}}, 400, '"type"'),
            ({"function": "teams", "events": []}, 400, "array"),
            ({}, 400, "function"),
        ],
    )
    async def test_refusals_name_the_problem(self, body: Any, status: int, words: str) -> None:
        admin, _, pool = make_admin()
        got, data = await call(admin, "POST", "/test", body)
        assert got == status and words in data["error"] and not pool.calls

    async def test_a_body_that_is_not_json_is_a_400(self) -> None:
        admin, _, _ = make_admin()
        r = await admin.handle(
            Request(method="POST", target="/test", path="/test", query={}, headers={}, body=b"{", peer=None, local=True)
        )
        assert r.status == 400


class TestSamples:
    @pytest.mark.parametrize("kind", ["track", "identify", "page", "screen", "group", "alias", "delete"])
    def test_sample_events_are_segment_shaped(self, kind: str) -> None:
        ev = sample_event(kind, now=NOW)
        assert ev["type"] == kind and ev["messageId"].startswith("test-") and ev["timestamp"].endswith("Z")

    def test_sample_type_follows_the_handlers(self) -> None:
        assert sample_type(("onIdentify",)) == "identify"
        assert sample_type(("group", "onBatch")) == "group"
        assert sample_type(("onBatch",)) == "track"


class TestLogs:
    async def test_newest_n_oldest_first_with_function_filter(self) -> None:
        admin, store, _ = make_admin()
        for i in range(5):
            store.add_log(function="teams" if i % 2 == 0 else "other", message=f"line {i}")
        _, data = await call(admin, "GET", "/logs", n="2", function="teams")
        assert [r["message"] for r in data["logs"]] == ["line 2", "line 4"]

    async def test_secrets_are_redacted_on_the_way_out(self) -> None:
        admin, store, _ = make_admin()
        store.add_log(function="teams", message="apiKey=sk-secret-1")
        _, data = await call(admin, "GET", "/logs")
        assert data["logs"][0]["message"] == "apiKey=[redacted]"

    async def test_follow_streams_lines_written_later(self) -> None:
        admin, store, _ = make_admin()
        store.add_log(function="teams", message="before")
        r = await admin.handle(req("GET", "/logs", follow="1", n="5", function="teams"))
        assert r.content_type == "application/x-ndjson"
        it = r.body.__aiter__()  # type: ignore[union-attr]
        assert json.loads(await it.__anext__())["message"] == "before"

        async def write_later() -> None:
            await trio.sleep(0.05)
            store.add_log(function="other", message="not for us")
            store.add_log(function="teams", message="after", level="warn")

        async with trio.open_nursery() as n:
            n.start_soon(write_later)
            with trio.fail_after(5):
                chunk = await it.__anext__()
        assert [json.loads(line)["message"] for line in chunk.splitlines()] == ["after"]
        await it.aclose()  # type: ignore[union-attr]

    async def test_bad_level_is_refused(self) -> None:
        admin, _, _ = make_admin()
        status, data = await call(admin, "GET", "/logs", level="loud")
        assert status == 400 and "loud" in data["error"]


class TestOthers:
    async def test_reload_calls_the_daemon(self) -> None:
        admin, _, _ = make_admin()
        assert await call(admin, "POST", "/reload") == (200, {"message": "config reloaded"})

    async def test_replay_passes_function_and_id(self) -> None:
        admin, store, _ = make_admin()
        assert await call(admin, "POST", "/replay", {"function": "teams", "id": 7}) == (200, {"replayed": 1})
        assert store.replays == [{"function": "teams", "delivery_id": 7}]

    async def test_deliveries_list_and_detail(self) -> None:
        admin, _, _ = make_admin()
        _, data = await call(admin, "GET", "/deliveries", function="teams", state="dead")
        assert data["deliveries"][0]["state"] == "dead"
        status, one = await call(admin, "GET", "/deliveries/7")
        assert status == 200 and one["event"] == {"type": "track", "event": "X"} and one["history"][0]["number"] == 1
        assert (await call(admin, "GET", "/deliveries/8"))[0] == 404

    async def test_metrics_is_prometheus_text(self) -> None:
        admin, _, _ = make_admin()
        r = await admin.handle(req("GET", "/metrics"))
        text = r.body.decode()  # type: ignore[union-attr]
        assert r.content_type.startswith("text/plain")
        assert 'segfuncd_invocations_total{function="teams",outcome="delivered"} 10' in text
        assert 'segfuncd_deliveries{function="teams",state="dead"} 1' in text
        assert "segfuncd_runner_restarts_total 1" in text and 'segfuncd_intake_requests_total{status="400"} 2' in text

    async def test_unknown_path_and_wrong_method(self) -> None:
        admin, _, _ = make_admin()
        assert (await call(admin, "GET", "/nope"))[0] == 404
        assert (await call(admin, "GET", "/test"))[0] == 405


async def test_close_ends_followers_cleanly() -> None:
    """At shutdown the daemon calls close(): a `logs -f` stream ends instead of holding the stop."""
    admin, store, _ = make_admin()
    r = await admin.handle(req("GET", "/logs", follow="1", n="0"))
    it = r.body.__aiter__()  # type: ignore[union-attr]

    async def close_soon() -> None:
        await trio.sleep(0.05)
        admin.close()

    async with trio.open_nursery() as n:
        n.start_soon(close_soon)
        with trio.fail_after(5), pytest.raises(StopAsyncIteration):
            await it.__anext__()


async def test_test_says_when_the_file_on_disk_fails_and_the_live_version_ran() -> None:
    import dataclasses

    from segfuncd.ctl_format import render_test

    admin, _, _ = make_admin()
    reg: Any = admin.registry  # the fake registry
    error = f"{admin.config.plugins_dir}/teams.js:2: SyntaxError: oops"  # the registry names absolute paths
    reg.items["teams"] = dataclasses.replace(reg.items["teams"], error=error)
    _, data = await call(admin, "POST", "/test", {"function": "teams", "event": {"type": "track"}})
    assert data["load_error"] == "teams.js:2: SyntaxError: oops"
    assert "note: the file on disk does not load (teams.js:2: SyntaxError: oops)" in render_test(data)
