"""Refused intake requests: counts by reason over 5 minutes and since start; one log line a minute."""

from __future__ import annotations

from typing import Any

from helpers import ManualClock

from segfuncd.refusals import Refusals, reason_for


def make() -> tuple[Refusals, ManualClock, list[dict[str, Any]]]:
    lines: list[dict[str, Any]] = []
    clock = ManualClock()
    return Refusals(log=lambda event, **kw: lines.append({"event": event, **kw}), clock=clock), clock, lines


def test_one_log_line_per_reason_per_minute_naming_the_client() -> None:
    refusals, clock, lines = make()
    for i in range(100):
        clock.now += 0.1
        refusals.record("bad_key", status=401, client=f"10.0.0.{i % 3}", message="unknown write key")
    refusals.record("origin", status=403, client="10.9.9.9", message="origin not allowed")
    assert [(line["reason"], line["client"]) for line in lines] == [("bad_key", "10.0.0.0"), ("origin", "10.9.9.9")]
    clock.now += 60
    refusals.record("bad_key", status=401, client="10.0.0.7", message="unknown write key")
    assert lines[-1]["client"] == "10.0.0.7" and lines[-1]["suppressed"] == 99
    assert lines[-1]["event"] == "intake_refused" and lines[-1]["status"] == 401


def test_the_five_minute_window_forgets_and_the_total_does_not() -> None:
    refusals, clock, _ = make()
    for _ in range(3):
        refusals.record("too_large", status=413, client=None, message="big")
    clock.now += 200
    refusals.record("too_large", status=413, client=None, message="big")
    stats = refusals.statistics()
    assert (stats["too_large"].last_5m, stats["too_large"].total) == (4, 4)
    assert (stats["malformed"].last_5m, stats["malformed"].total) == (0, 0)
    clock.now += 150
    stats = refusals.statistics()
    assert (stats["too_large"].last_5m, stats["too_large"].total) == (1, 4)


def test_statuses_map_to_reasons() -> None:
    assert [reason_for(s) for s in (400, 401, 403, 404, 413, 431, 503)] == [
        "malformed",
        "bad_key",
        "bad_key",
        None,
        "too_large",
        "malformed",
        None,
    ]
