"""InvocationClock: timeout_ms from admission, paused while a fetch queues for a connection."""

from __future__ import annotations

from segfuncd.runner.clock import InvocationClock


def test_the_clock_runs_only_once_started() -> None:
    clock = InvocationClock(timeout_s=10, max_pause_s=10)
    assert not clock.started and not clock.expired(1e9)
    clock.start(100)
    assert not clock.expired(109.9) and clock.expired(110)


def test_waiting_for_a_connection_slot_moves_the_deadline() -> None:
    clock = InvocationClock(timeout_s=10, max_pause_s=10)
    clock.start(0)
    clock.pause(2)
    assert not clock.expired(11)  # 2 s of its own time, then 9 s waiting: not its time
    clock.resume(8)
    assert clock.deadline == 16 and not clock.expired(15.9) and clock.expired(16)


def test_concurrent_waits_pause_once() -> None:
    clock = InvocationClock(timeout_s=10, max_pause_s=10)
    clock.start(0)
    clock.pause(1)
    clock.pause(2)
    clock.resume(3)
    assert clock.deadline == 10  # still paused by the other wait
    clock.resume(4)
    assert clock.deadline == 13


def test_the_pause_is_capped_so_an_invocation_always_ends() -> None:
    clock = InvocationClock(timeout_s=10, max_pause_s=5)
    clock.start(0)
    clock.pause(1)
    assert not clock.expired(14.9) and clock.expired(15)
    assert clock.next_check(3) == 15
    clock.resume(100)
    assert clock.deadline == 15 and clock.paused_total == 5


def test_a_wait_that_began_after_the_deadline_does_not_save_it() -> None:
    clock = InvocationClock(timeout_s=10, max_pause_s=10)
    clock.start(0)
    clock.pause(10.5)
    assert clock.expired(10.6)


def test_another_functions_slice_extends_the_deadline_within_the_same_cap() -> None:
    clock = InvocationClock(timeout_s=10, max_pause_s=3)
    clock.extend(1)
    assert not clock.started and clock.paused_total == 0  # not running yet: nothing to extend
    clock.start(0)
    clock.extend(2)
    clock.pause(5)
    clock.resume(9)
    assert clock.deadline == 13 and clock.paused_total == 3
