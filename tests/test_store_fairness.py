"""The store's side of fair share: the log table's shares, leasing that skips, lease renewal."""

from __future__ import annotations

from pathlib import Path

from test_store_helpers import FakeClock, event, store_at

from segfuncd.store import LogRecord
from segfuncd.store.logs import fair_levels

T0 = 1_800_000_000.0


def line(i: int, function: str | None) -> LogRecord:
    return LogRecord(
        time=T0 + i,
        level="info",
        source="function" if function else "daemon",
        function=function,
        message=f"{function or 'daemon'} {i}",
        fields={},
    )


def test_fair_levels_cut_only_the_shares_above_the_level() -> None:
    assert fair_levels({"a": 5, "b": 3}, 10) == {}
    assert fair_levels({"flood": 100, "victim": 10, None: 5}, 60) == {"flood": 55}
    assert fair_levels({"a": 50, "b": 40, "c": 2}, 32) == {"a": 35, "b": 25}


async def test_a_flooding_function_does_not_evict_another_functions_lines(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock(), log_lines=100) as store:
        await store.append_logs([line(i, "victim") for i in range(20)])
        await store.append_logs([line(i, None) for i in range(10)])
        for start in range(0, 1000, 50):
            await store.append_logs([line(start + i, "flood") for i in range(50)])
        victim = await store.read_logs(function="victim", limit=1000)
        assert [x.message for x in victim] == [f"victim {i}" for i in range(20)]
        everything = await store.read_logs(limit=1000)
        assert len(everything) == 100
        assert sum(1 for x in everything if x.source == "daemon") == 10
        flood = [x.message for x in everything if x.function == "flood"]
        assert flood == [f"flood {i}" for i in range(930, 1000)]  # its newest lines, within what is left


async def test_shares_even_out_between_two_busy_functions_and_survive_a_reopen(tmp_path: Path) -> None:
    async with store_at(tmp_path / "q.db", FakeClock(), log_lines=40) as store:
        await store.append_logs([line(i, "a") for i in range(100)])
    async with store_at(tmp_path / "q.db", FakeClock(), log_lines=40) as store:
        await store.append_logs([line(i, "b") for i in range(30)])
        everything = await store.read_logs(limit=1000)
        assert len(everything) == 40
        assert sum(1 for x in everything if x.function == "b") == 20
        assert sum(1 for x in everything if x.function == "a") == 20


async def test_lease_skips_the_functions_asked_and_next_due_ignores_them(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(i, functions=("hog",)) for i in range(50)])
        await store.accept([event(100 + i, functions=("victim",)) for i in range(3)])
        first = await store.lease(limit=10, lease_s=60)
        assert {x.function for x in first} == {"hog"}
        second = await store.lease(limit=10, lease_s=60, skip=["hog"])
        assert [x.function for x in second] == ["victim"] * 3
        assert await store.next_due(skip=["hog", "victim"]) is None
        assert await store.next_due(skip=["victim"]) == clock.now


async def test_renew_keeps_a_held_lease_from_expiring(tmp_path: Path) -> None:
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(1)])
        (held,) = await store.lease(limit=10, lease_s=60)
        clock.advance(50)
        await store.renew([held.id], lease_s=60)
        clock.advance(50)  # 100 s after leasing: past the first lease, within the renewed one
        assert await store.lease(limit=10, lease_s=60) == []
        clock.advance(11)
        assert [x.id for x in await store.lease(limit=10, lease_s=60)] == [held.id]
