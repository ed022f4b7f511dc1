"""The dispatcher's fair share, on a real SQLite store with a pool stand-in (autojump_clock)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from helpers import FairHangingPool
from test_store_helpers import FakeClock, event, store_at

from segfuncd.config import FunctionConfig
from segfuncd.delivery import Dispatcher
from segfuncd.functions import Target
from segfuncd.runner.version import PluginVersion
from segfuncd.store import Store

SOURCE = "async function onTrack(event, settings) {}"


async def delivered(store: Store, function: str, n: int) -> bool:
    """Whether `function` has `n` deliveries, polled a bounded number of times (the store
    works in real threads, so the autojump clock cannot bound this with a deadline)."""
    for _ in range(500):
        stats = (await store.stats()).functions.get(function)
        if stats is not None and stats.delivered >= n:
            return True
        await trio.sleep(0.1)
    return False


def resolve(function: str) -> Target:
    return Target(version=PluginVersion.from_source(function, SOURCE), config=FunctionConfig(), handlers=("onTrack",))


async def test_a_hung_functions_backlog_neither_fills_the_leases_nor_the_slots(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """The hog's 300 rows come first in due order; the victim's 5 are still delivered."""
    clock = FakeClock()
    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(i, functions=("hog",)) for i in range(300)])
        await store.accept([event(1000 + i, functions=("victim",)) for i in range(5)])
        pool: Any = FairHangingPool(hung="hog")
        d = Dispatcher(store, pool, resolve=resolve, batch_size=10, invoke_size=5, concurrency=2, clock=clock)
        async with trio.open_nursery() as nursery:
            await nursery.start(d.serve)
            assert await delivered(store, "victim", 5)
            stats = d.statistics()
            assert stats.slots.held["hog"] >= 1
            assert stats.held <= 2 * 10 + 5  # the hog holds its bound of leased rows, no more
            nursery.cancel_scope.cancel()
        assert "victim" in pool.calls


async def test_a_function_at_its_max_concurrency_leaves_slots_to_others(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    clock = FakeClock()

    def capped(function: str) -> Target:
        t = resolve(function)
        return Target(version=t.version, config=FunctionConfig(max_concurrency=1), handlers=t.handlers)

    async with store_at(tmp_path / "q.db", clock) as store:
        await store.accept([event(i, functions=("hog",)) for i in range(20)])
        await store.accept([event(100 + i, functions=("victim",)) for i in range(3)])
        pool: Any = FairHangingPool(hung="hog")
        d = Dispatcher(store, pool, resolve=capped, batch_size=50, invoke_size=2, concurrency=8, clock=clock)
        async with trio.open_nursery() as nursery:
            await nursery.start(d.serve)
            assert await delivered(store, "victim", 3)
            assert d.statistics().slots.held.get("hog") == 1  # its cap, though 7 slots are free
            nursery.cancel_scope.cancel()
