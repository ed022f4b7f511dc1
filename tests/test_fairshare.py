"""FairShare: slots served to functions in turn, caps, the guaranteed share (autojump_clock)."""

from __future__ import annotations

import trio
import trio.testing

from segfuncd.fairshare import FairShare


class Holders:
    """Tasks that take a slot, note who got it, and hold it until the test lets go."""

    def __init__(self, share: FairShare) -> None:
        self.share = share
        self.granted: list[str] = []
        self.holding: list[trio.Event] = []

    async def hold(self, owner: str, limit: int | None = None) -> None:
        gate = trio.Event()
        async with self.share.slot(owner, limit=limit):
            self.granted.append(owner)
            self.holding.append(gate)
            await gate.wait()

    async def let_go_oldest(self) -> None:
        self.holding.pop(0).set()
        await trio.sleep(0.1)


async def test_waiting_functions_are_served_in_turn_not_in_arrival_order(autojump_clock: trio.abc.Clock) -> None:
    share = FairShare(3)
    h = Holders(share)
    async with trio.open_nursery() as nursery:
        for owner in "abc":  # each holds one: all slots in use, everyone at its share
            nursery.start_soon(h.hold, owner)
            await trio.sleep(0.1)
        for owner in "aaabbcc":  # queued in this order
            nursery.start_soon(h.hold, owner)
            await trio.sleep(0.1)
        assert h.granted == ["a", "b", "c"] and share.statistics().waiting == {"a": 3, "b": 2, "c": 2}
        for _ in range(7):
            await h.let_go_oldest()
        assert h.granted[3:] == ["a", "b", "c", "a", "b", "c", "a"]
        nursery.cancel_scope.cancel()


async def test_a_function_at_its_cap_does_not_block_another(autojump_clock: trio.abc.Clock) -> None:
    share = FairShare(4)
    h = Holders(share)
    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(h.hold, "greedy", 2)
        await trio.sleep(0.1)
        assert share.statistics().held == {"greedy": 2}
        nursery.start_soon(h.hold, "victim")
        await trio.sleep(0.1)
        assert share.statistics().held == {"greedy": 2, "victim": 1}
        nursery.cancel_scope.cancel()


async def test_a_function_below_its_share_gets_a_slot_while_a_hung_one_holds_them_all(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The hung function's slots are not freed until its timeout; the victim must not wait for that."""
    share = FairShare(4)
    h = Holders(share)
    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(h.hold, "hung")
        await trio.sleep(0.1)
        assert share.statistics().held == {"hung": 4}
        for _ in range(3):
            nursery.start_soon(h.hold, "victim")
        await trio.sleep(0.1)
        stats = share.statistics()
        assert stats.held == {"hung": 4, "victim": 2}  # its share: 4 slots // 2 functions
        assert stats.in_use == 6 and stats.waiting == {"hung": 4, "victim": 1}
        nursery.cancel_scope.cancel()


async def test_a_lone_function_uses_every_slot(autojump_clock: trio.abc.Clock) -> None:
    share = FairShare(4)
    h = Holders(share)
    async with trio.open_nursery() as nursery:
        for _ in range(6):
            nursery.start_soon(h.hold, "solo")
        await trio.sleep(0.1)
        assert share.statistics().held == {"solo": 4} and share.statistics().waiting == {"solo": 2}
        nursery.cancel_scope.cancel()


async def test_a_cancelled_waiter_leaves_the_queue_and_no_slot_is_lost(autojump_clock: trio.abc.Clock) -> None:
    share = FairShare(1)
    h = Holders(share)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(h.hold, "a")
        await trio.sleep(0.1)
        with trio.move_on_after(1):
            await share.acquire("a")  # a holds its share: waits, then gives up
        assert share.statistics().waiting == {}
        await h.let_go_oldest()
        assert share.statistics().in_use == 0
        async with share.slot("a"):
            assert share.statistics().held == {"a": 1}
        nursery.cancel_scope.cancel()
    assert share.statistics().in_use == 0
