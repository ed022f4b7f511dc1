"""Refused intake requests, counted by reason and logged without flooding the log.

Four reasons (`status` shows each over the last 5 minutes and since start):

    bad_key    401: missing / unknown write key; 403: no keys configured, remote client
    origin     403: an Origin outside intake.cors_origins
    too_large  413: a body or an event over the limits
    malformed  400 / 431: not JSON, bad gzip, invalid event, broken HTTP

Rules:
* The log gets at most one line per reason per minute (`intake_refused`, a warning),
  naming the client address and the message of the refusal that triggered it, and how
  many of the same reason went unlogged since the last line. A client hammering with a
  wrong key costs one line a minute, not a line per request.
* Counting is O(1) per refusal and the 5-minute window costs at most 300 small buckets
  per reason. Time is passed in (`clock`), so the rate limit is testable without sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

REASONS = ("bad_key", "origin", "too_large", "malformed")
WINDOW_S = 300.0
LOG_EVERY_S = 60.0

# How a refusal's HTTP status maps to a reason when the caller does not say.
_BY_STATUS = {400: "malformed", 401: "bad_key", 403: "bad_key", 413: "too_large", 431: "malformed"}

LogFn = Callable[..., Any]


def reason_for(status: int) -> str | None:
    """The reason a refused request of this status counts under (None: not counted, e.g. 404, 503)."""
    return _BY_STATUS.get(status)


@dataclass(frozen=True, slots=True, kw_only=True)
class RefusalCount:
    """One reason's figures."""

    last_5m: int
    total: int


class Refusals:
    """The counters and the rate-limited log of refused requests."""

    def __init__(self, *, log: LogFn, clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._clock = clock
        self._total = dict.fromkeys(REASONS, 0)
        self._buckets: dict[str, deque[list[float]]] = {r: deque() for r in REASONS}  # [second, count]
        self._logged_at: dict[str, float] = {}
        self._unlogged = dict.fromkeys(REASONS, 0)

    def record(self, reason: str, *, status: int, client: str | None, message: str) -> None:
        """Count one refusal; log it unless this reason was logged in the last minute."""
        now = self._clock()
        self._total[reason] += 1
        buckets = self._buckets[reason]
        second = float(int(now))
        if buckets and buckets[-1][0] == second:
            buckets[-1][1] += 1
        else:
            buckets.append([second, 1])
            self._trim(buckets, now)
        last = self._logged_at.get(reason)
        if last is not None and now - last < LOG_EVERY_S:
            self._unlogged[reason] += 1
            return
        self._logged_at[reason] = now
        suppressed, self._unlogged[reason] = self._unlogged[reason], 0
        self._log(
            "intake_refused",
            reason=reason,
            status=status,
            client=client or "unix socket",
            message=message,
            suppressed=suppressed,
        )

    @staticmethod
    def _trim(buckets: deque[list[float]], now: float) -> None:
        while buckets and buckets[0][0] <= now - WINDOW_S:
            buckets.popleft()

    def statistics(self) -> Mapping[str, RefusalCount]:
        """reason -> counts over the last 5 minutes and since start (every reason, even at 0)."""
        now = self._clock()
        out = {}
        for reason in REASONS:
            buckets = self._buckets[reason]
            self._trim(buckets, now)
            out[reason] = RefusalCount(last_5m=int(sum(b[1] for b in buckets)), total=self._total[reason])
        return out
