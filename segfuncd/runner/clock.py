"""An invocation's timeout_ms clock; pure (times are passed in).

timeout_ms is the time the function's own work may take, so the clock
* starts when the handler starts in its context, not when the request reached the runner
  (invocations beyond a context's admission limit wait in the runner first, child.py);
* pauses while the invocation waits for something the runner rations, not the function:
  a connection slot (fetch.py). A destination that answers in 3 s with timeout_ms = 10 s
  must not see a TimeoutError because other requests held the connections, nor a
  duplicate because its own request was sent just before a deadline that had run while
  it queued;
* does not run while the runner executes another function's long slice (`extend`): the
  runner has one JS loop, and a CPU burner at its cpu_ms limit must not make its
  neighbours' invocations time out (and be retried) while they could not run at all.
The pauses together are capped (`max_pause_s`), so an invocation always ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["InvocationClock"]


@dataclass(eq=False, slots=True)
class InvocationClock:
    timeout_s: float
    max_pause_s: float
    deadline: float = math.inf  # inf until started; moves later by each pause
    paused_total: float = 0.0
    _waits: int = 0  # waits in progress (several fetches may queue at once)
    _paused_since: float = 0.0

    @property
    def started(self) -> bool:
        return self.deadline != math.inf

    def start(self, now: float) -> None:
        if not self.started:
            self.deadline = now + self.timeout_s

    def pause(self, now: float) -> None:
        """One more wait began (nested waits pause once)."""
        if self._waits == 0:
            self._paused_since = now
        self._waits += 1

    def resume(self, now: float) -> None:
        """One wait ended; when none is left the deadline moves by the paused time (capped)."""
        if self._waits == 0:
            return
        self._waits -= 1
        if self._waits == 0:
            add = min(max(0.0, now - self._paused_since), self.max_pause_s - self.paused_total)
            self.paused_total += add
            self.deadline += add

    def extend(self, seconds: float) -> None:
        """Time spent running another function's code (one JS loop per runner) is not ours."""
        if self.started:
            add = min(max(0.0, seconds), self.max_pause_s - self.paused_total)
            self.paused_total += add
            self.deadline += add

    def _allowance(self) -> float:
        """Pause time still granted if the current pause goes on (0 when not paused)."""
        if self._waits == 0:
            return 0.0
        return max(0.0, self.max_pause_s - self.paused_total)

    def expired(self, now: float) -> bool:
        """Whether the deadline passed, counting the current pause as if it ended now."""
        if self._waits == 0:
            return now >= self.deadline
        return now >= self.deadline + min(max(0.0, now - self._paused_since), self._allowance())

    def next_check(self, now: float) -> float:
        """When to look again: the deadline, or the end of the pause allowance while paused."""
        return self.deadline + self._allowance()
