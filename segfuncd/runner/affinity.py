"""Which runner an invocation goes to, so a CPU-heavy function cannot stall the others.

A runner has one JS loop: a slice of JS cannot be preempted, so a function that runs to
its cpu_ms limit holds that runner's loop for up to cpu_ms at a time and every function
sharing the runner waits. The operating system can preempt processes, though: a function
seen hitting its CPU limit recently (`HEAVY_FOR_S`) is confined to one runner, its home
(chosen by name, so two heavy functions spread out), and other functions avoid the homes
of heavy functions while another runner is up. With one runner nothing changes. Pure: the
pool passes the runners and the time in.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["CPU_HEAVY_ERRORS", "HEAVY_FOR_S", "Affinity"]

R = TypeVar("R")
HEAVY_FOR_S = 60.0
CPU_HEAVY_ERRORS = frozenset({"CPULimitError"})


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


def _home(function: str, n: int) -> int:
    return zlib.crc32(function.encode("utf-8")) % n
