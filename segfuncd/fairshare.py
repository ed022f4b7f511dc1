"""Fair sharing of a limited number of slots among owners (functions).

Used twice: the dispatcher's invocation slots (delivery.py) and each runner's outbound
connections (runner/fetch.py). What lives here is only the scheduling policy; the
callers decide what a slot means and who the owner is.

Rules (each one is a symptom from issue 10 that must not come back):
* An owner never holds more than its own cap (`limit`), whatever else is idle.
* While fewer than `total` slots are in use, an owner under its cap gets one at once.
* An owner holding fewer than its guaranteed share, `max(1, total // active owners)`,
  gets a slot even when `total` is reached. Slots held by a hung destination are not
  freed until its timeout, so without this a never-resolving function would make every
  other function wait for that timeout. The total may overshoot by at most one share
  per active owner: slots are cheap (a task waiting on a pipe or a socket), starving a
  healthy function is not.
* Owners that wait are served in turn (round-robin: the owner served last goes to the
  back); one owner's waiters are served first come, first served.
* A waiter that is cancelled leaves the queue; if it was granted a slot in the same
  instant, the slot is handed on, never lost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio

__all__ = ["FairShare", "FairShareStatistics"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FairShareStatistics:
    total: int  # slots shared before the per-owner guarantee applies
    in_use: int  # slots held now (may exceed total, see the module rules)
    held: Mapping[str, int] = field(default_factory=dict)  # slots held per owner
    waiting: Mapping[str, int] = field(default_factory=dict)  # tasks waiting per owner


@dataclass(eq=False, slots=True)
class _Waiter:
    owner: str
    limit: int
    event: trio.Event = field(default_factory=trio.Event)
    granted: bool = False


class FairShare:
    """`total` slots shared fairly among owners; `async with share.slot(owner, limit=n)`."""

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError(f"total must be at least 1, got {total}")
        self._total = total
        self._in_use = 0
        self._held: dict[str, int] = {}
        # owners with waiters, in turn order (dict order is the rotation)
        self._queues: dict[str, deque[_Waiter]] = {}

    @property
    def total(self) -> int:
        return self._total

    def statistics(self) -> FairShareStatistics:
        return FairShareStatistics(
            total=self._total,
            in_use=self._in_use,
            held=dict(self._held),
            waiting={owner: len(q) for owner, q in self._queues.items()},
        )

    def share(self) -> int:
        """The slots each active owner (holding or waiting) is guaranteed now."""
        active = len(self._held.keys() | self._queues.keys())
        return max(1, self._total // max(1, active))

    @asynccontextmanager
    async def slot(
        self, owner: str, *, limit: int | None = None, on_wait: Callable[[], None] | None = None
    ) -> AsyncIterator[None]:
        """Hold one of `owner`'s slots for the block (at most `limit` at once, default `total`)."""
        await self.acquire(owner, limit=limit, on_wait=on_wait)
        try:
            yield
        finally:
            self.release(owner)

    def try_acquire(self, owner: str, *, limit: int | None = None) -> bool:
        """Take a slot for `owner` if one is free for it now: no waiting, no checkpoint
        (runner/fetch.py, which needs no cancel scope for a request that does not wait)."""
        cap = self._total if limit is None else max(1, limit)
        if owner not in self._queues and self._may_take(owner, cap):
            self._take(owner)
            return True
        return False

    async def acquire(self, owner: str, *, limit: int | None = None, on_wait: Callable[[], None] | None = None) -> None:
        """Take a slot for `owner`; `on_wait()` is called first if it has to wait for one."""
        cap = self._total if limit is None else max(1, limit)
        await trio.lowlevel.checkpoint_if_cancelled()
        if self.try_acquire(owner, limit=cap):
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        if on_wait is not None:
            on_wait()
        waiter = _Waiter(owner, cap)
        self._queues.setdefault(owner, deque()).append(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.granted:
                self.release(owner)
            else:
                self._drop(waiter)
            raise

    def release(self, owner: str) -> None:
        held = self._held.get(owner, 0)
        if held <= 0:
            raise RuntimeError(f"release() of {owner!r} without a slot held")
        if held == 1:
            del self._held[owner]
        else:
            self._held[owner] = held - 1
        self._in_use -= 1
        self._grant_waiting()

    # --- policy ---------------------------------------------------------------------------

    def _may_take(self, owner: str, limit: int) -> bool:
        held = self._held.get(owner, 0)
        if held >= limit:
            return False
        return self._in_use < self._total or held < self.share()

    def _take(self, owner: str) -> None:
        self._held[owner] = self._held.get(owner, 0) + 1
        self._in_use += 1

    def _grant_waiting(self) -> None:
        """Hand free slots to waiting owners in turn until none can take one."""
        granted = True
        while granted and self._queues:
            granted = False
            for owner in list(self._queues):
                queue = self._queues[owner]
                waiter = queue[0]
                if not self._may_take(owner, waiter.limit):
                    continue
                queue.popleft()
                del self._queues[owner]  # served: to the back of the rotation
                if queue:
                    self._queues[owner] = queue
                self._take(owner)
                waiter.granted = True
                waiter.event.set()
                granted = True
                break

    def _drop(self, waiter: _Waiter) -> None:
        queue = self._queues.get(waiter.owner)
        if queue is None:
            return
        try:
            queue.remove(waiter)
        except ValueError:
            return
        if not queue:
            del self._queues[waiter.owner]
            # one fewer active owner: everyone's share may have grown
            self._grant_waiting()
