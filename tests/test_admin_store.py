"""The admin API over the real SQLite store (runner pool and registry are stand-ins)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import trio
from test_admin_fakes import make_admin

from segfuncd.outcomes import DeliveryState, InvocationResult, Outcome
from segfuncd.server import Request
from segfuncd.store import Completion, LogRecord, NewEvent, open_store


def req(method: str, path: str, body: Any = None, **query: str) -> Request:
    raw = b"" if body is None else json.dumps(body).encode()
    return Request(method=method, target=path, path=path, query=query, headers={}, body=raw, peer=None, local=True)


async def get(admin: Any, path: str, **query: str) -> Any:
    r = await admin.handle(req("GET", path, **query))
    assert r.status == 200, r.body
    return json.loads(r.body)


async def test_status_deliveries_replay_and_logs_over_the_real_store(tmp_path: Path) -> None:
    async with open_store(tmp_path / "s.db") as store:
        admin, _, _ = make_admin(store=store, clock=time.time)
        await store.accept(
            [
                NewEvent(
                    message_id=f"m{i}", type="track", body={"type": "track", "event": f"E{i}"}, functions=("teams",)
                )
                for i in range(3)
            ]
        )
        leases = await store.lease(limit=10, lease_s=30)
        bug = InvocationResult(outcome=Outcome.FAILED, error_name="TypeError", error_message="boom", duration_ms=2)
        ok = InvocationResult(outcome=Outcome.DELIVERED, duration_ms=3)
        await store.complete(
            [
                Completion(
                    delivery_id=leases[0].id, function="teams", result=bug, version="v1", state=DeliveryState.DEAD
                ),
                Completion(
                    delivery_id=leases[1].id, function="teams", result=ok, version="v1", state=DeliveryState.DELIVERED
                ),
                Completion(
                    delivery_id=leases[2].id,
                    function="teams",
                    result=bug,
                    version="v1",
                    state=DeliveryState.PENDING,
                    next_attempt_at=time.time() + 3600,
                ),
            ]
        )

        status = await get(admin, "/status")
        teams = next(f for f in status["functions"] if f["name"] == "teams")
        assert (teams["delivered"], teams["dead"], teams["retrying"]) == (1, 1, 1)
        assert status["queue"]["dead"] == 1 and status["queue"]["pending"] == 1

        dead = (await get(admin, "/deliveries", function="teams", state="dead"))["deliveries"]
        assert [d["id"] for d in dead] == [leases[0].id] and dead[0]["last_error"] == "TypeError: boom"
        retrying = (await get(admin, "/deliveries", state="retrying"))["deliveries"]
        assert [d["id"] for d in retrying] == [leases[2].id]
        one = await get(admin, f"/deliveries/{leases[0].id}")
        assert one["event"]["event"] == "E0" and one["history"][0]["error"] == "TypeError: boom"
        bad = await admin.handle(req("GET", "/deliveries", state="nope"))
        assert bad.status == 400

        r = await admin.handle(req("POST", "/replay", {"function": "teams"}))
        assert json.loads(r.body) == {"replayed": 1}  # type: ignore[arg-type]

        await store.append_logs(
            [
                LogRecord(time=time.time(), level="log", source="function", function="teams", message=f"line {i}")
                for i in range(5)
            ]
        )
        logs = (await get(admin, "/logs", n="2", function="teams"))["logs"]
        assert [x["message"] for x in logs] == ["line 3", "line 4"]

        text = (await admin.handle(req("GET", "/metrics"))).body.decode()  # type: ignore[union-attr]
        assert 'segfuncd_deliveries{function="teams",state="delivered"} 1' in text


async def test_follow_wakes_on_new_lines_from_the_real_store(tmp_path: Path) -> None:
    async with open_store(tmp_path / "s.db") as store:
        admin, _, _ = make_admin(store=store, clock=time.time)
        await store.append_logs(
            [LogRecord(time=time.time(), level="log", source="function", function="teams", message="old")]
        )
        r = await admin.handle(req("GET", "/logs", follow="1", n="0"))
        it = r.body.__aiter__()  # type: ignore[union-attr]

        async def later() -> None:
            await trio.sleep(0.1)
            await store.append_logs(
                [LogRecord(time=time.time(), level="info", source="daemon", message="plugin_loaded")]
            )

        async with trio.open_nursery() as n:
            n.start_soon(later)
            with trio.fail_after(5):
                chunk = await it.__anext__()
        assert [json.loads(x)["message"] for x in chunk.splitlines()] == ["plugin_loaded"]
        await it.aclose()  # type: ignore[union-attr]


async def test_follow_skips_daemon_lines_pumped_late_but_older_than_the_request(tmp_path: Path) -> None:
    async with open_store(tmp_path / "s.db") as store:
        admin, _, _ = make_admin(store=store, clock=time.time)
        now = time.time()
        await store.append_logs([LogRecord(time=now, level="log", source="function", function="teams", message="fn")])
        # a daemon event from a moment earlier, written after it (higher id, older time)
        await store.append_logs([LogRecord(time=now - 0.2, level="info", source="daemon", message="late")])
        r = await admin.handle(req("GET", "/logs", follow="1", n="0"))
        it = r.body.__aiter__()  # type: ignore[union-attr]

        async def later() -> None:
            await trio.sleep(0.1)
            await store.append_logs([LogRecord(time=time.time(), level="info", source="daemon", message="new")])

        async with trio.open_nursery() as n:
            n.start_soon(later)
            with trio.fail_after(5):
                chunk = await it.__anext__()
        assert [json.loads(x)["message"] for x in chunk.splitlines()] == ["new"]
        await it.aclose()  # type: ignore[union-attr]
