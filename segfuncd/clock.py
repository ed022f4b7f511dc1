"""Time for due times: wall-clock seconds that do not jump when the system clock is stepped.

Due times (retries, lease expiry, the dedupe window) are stored as unix seconds, so they
survive a restart and read well in listings. Reading `time.time()` for them would let a
clock step move every retry: back 1 h stalls them all for an hour, forward 25 h lets a
deduplicated messageId in again (issue 12). `SteadyClock` anchors to the wall clock once
and then advances with a monotonic clock, so inside one process a step of the system
clock moves nothing; a restart re-anchors (a step while stopped shifts due times once,
by the step, and never makes a retry more than its delay early or late afterwards).

Both sources are parameters, so tests drive it with a fake wall clock and trio's clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

TimeSource = Callable[[], float]


class SteadyClock:
    """`now()` = wall time at creation + monotonic time elapsed since; call it as a function."""

    __slots__ = ("_offset", "_monotonic")

    def __init__(self, *, wall: TimeSource = time.time, monotonic: TimeSource = time.monotonic) -> None:
        self._monotonic = monotonic
        self._offset = wall() - monotonic()

    def __call__(self) -> float:
        return self._offset + self._monotonic()


# The process's clock for due times: the store and the dispatcher default to it.
steady_time: TimeSource = SteadyClock()
