"""Affinity: a function that hits its CPU limit is kept on one runner; others avoid it."""

from __future__ import annotations

from segfuncd.runner.affinity import HEAVY_FOR_S, PREEMPT_PER_START_S, PREEMPT_S, Affinity, _home, preempt_s

RUNNERS = ["r0", "r1", "r2"]


def load(runner: str) -> int:
    return {"r0": 0, "r1": 1, "r2": 2}[runner]


def test_without_heavy_functions_the_least_loaded_runner_is_chosen() -> None:
    a = Affinity()
    a.note("f", [None, "TimeoutError"], now=0)
    assert a.choose("f", RUNNERS, load, now=1) == "r0"


def test_a_cpu_heavy_function_stays_home_and_the_others_avoid_its_home() -> None:
    a = Affinity()
    a.note("burner", [None, "CPULimitError"], now=0)
    home = RUNNERS[_home("burner", len(RUNNERS))]
    assert {a.choose("burner", RUNNERS, load, now=1) for _ in range(5)} == {home}
    others = {a.choose("healthy", RUNNERS, load, now=1) for _ in range(5)}
    assert home not in others and len(others) == 1


def test_heaviness_wears_off_and_one_runner_is_shared_by_all() -> None:
    a = Affinity()
    a.note("burner", ["CPULimitError"], now=0)
    assert a.choose("healthy", ["only"], lambda r: 0, now=1) == "only"
    assert a.heavy(now=HEAVY_FOR_S + 1) == []
    assert a.choose("burner", RUNNERS, load, now=HEAVY_FOR_S + 1) == "r0"


def test_an_invoke_is_movable_anywhere_but_the_home_of_a_known_heavy_function() -> None:
    a = Affinity()
    home = RUNNERS[_home("burner", len(RUNNERS))]
    away = [r for r in RUNNERS if r != home]
    # not known heavy: movable everywhere, its home included (its first long slice tells)
    assert all(a.movable("burner", r, RUNNERS, now=0) for r in RUNNERS)
    a.note("burner", ["CPULimitError"], now=0)
    assert not a.movable("burner", home, RUNNERS, now=1)  # where it is sent to run for good
    assert all(a.movable("burner", r, RUNNERS, now=1) for r in away)
    assert not a.movable("burner", "only", ["only"], now=1)  # one runner: nowhere else to go
    assert not a.movable("healthy", "only", ["only"], now=1)


def test_a_slice_of_many_quick_events_is_not_taken_for_a_heavy_function() -> None:
    assert preempt_s(1) == PREEMPT_S
    assert preempt_s(500) == 500 * PREEMPT_PER_START_S > PREEMPT_S
