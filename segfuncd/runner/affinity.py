"""Which runner an invocation goes to, so a CPU-heavy function cannot stall the others.

A runner has one JS loop: a slice of JS cannot be preempted, so a function that runs to
its cpu_ms limit holds that runner's loop for up to cpu_ms at a time and every function
sharing the runner waits. The operating system can preempt processes, though: a function
seen hitting its CPU limit recently (`HEAVY_FOR_S`) is confined to one runner, its home
(chosen by name, so two heavy functions spread out), and other functions avoid the homes
of heavy functions while another runner is up. With one runner nothing changes. Pure: the
pool passes the runners and the time in.

The first contact. Nothing is known of a function until one of its slices runs long, and
that slice may land on a runner other functions share. So an invoke is *movable* when it
goes anywhere but the function's home, or to its home while the function is not known
heavy: there, a slice of invocations that did nothing outside JS yet may hold the loop for
`preempt_s()` at most. Past it the runner stops the slice, hands the invocations back unrun
and says the function is heavy; the pool sends them home, never movable again (one hop, no
ping-pong), and by then other functions keep off that home. A stall of a shared runner by a function never seen
before is thus one quantum, not cpu_ms per event. An invocation that already fetched or set
a timer cannot be run again, so it is never stopped this way.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["CPU_HEAVY_ERRORS", "HEAVY_FOR_S", "Affinity", "preempt_s"]

R = TypeVar("R")
HEAVY_FOR_S = 60.0
CPU_HEAVY_ERRORS = frozenset({"CPULimitError"})
# A movable slice may run this long, or this much per invocation it starts if that is more
# (a batch of 500 events of a 1 ms function is not a heavy function).
PREEMPT_S = 0.1
PREEMPT_PER_START_S = 0.002


def preempt_s(starts: int) -> float:
    """How much CPU a movable slice that starts `starts` invocations may use before it is
    stopped and its invocations are moved to the function's home runner."""
    return max(PREEMPT_S, PREEMPT_PER_START_S * starts)


class Affinity:
    def __init__(self) -> None:
        self._heavy: dict[str, float] = {}  # function -> when it last hit its CPU limit

    def note(self, function: str, error_names: Sequence[str | None], now: float) -> None:
        """Record an invocation's results: a CPU limit makes `function` heavy for a while."""
        if any(name in CPU_HEAVY_ERRORS for name in error_names):
            self._heavy[function] = now

    def heavy(self, now: float) -> list[str]:
        for function, at in list(self._heavy.items()):
            if now - at > HEAVY_FOR_S:
                del self._heavy[function]
        return sorted(self._heavy)

    def choose(self, function: str, ready: Sequence[R], load: Callable[[R], int], now: float) -> R:
        """The runner for `function` among `ready` (non-empty), least loaded where it may go."""
        heavy = self.heavy(now)
        if len(ready) < 2 or not heavy:
            return min(ready, key=load)
        if function in heavy:
            return ready[_home(function, len(ready))]
        homes = {_home(h, len(ready)) for h in heavy}
        free = [r for i, r in enumerate(ready) if i not in homes]
        return min(free or ready, key=load)

    def movable(self, function: str, runner: R, ready: Sequence[R], now: float) -> bool:
        """Whether an invoke of `function` sent to `runner` may be handed back (see the module
        doc): anywhere but its home, and at its home too while it is not known heavy, so
        that its first long slice there also tells the pool within one quantum. Never with
        one runner: there is nowhere else to go."""
        if len(ready) < 2:
            return False
        return ready[_home(function, len(ready))] is not runner or function not in self.heavy(now)


def _home(function: str, n: int) -> int:
    return zlib.crc32(function.encode("utf-8")) % n
