"""Fair share (issue 10, item 6 and the log half of item 8), through a real segfuncd.

An attacker function and a victim function share the daemon's invocation slots and the
same runner processes (1 and 2 workers). Whatever the attacker does (hang, fetch storm,
flood its console, run at its max_concurrency), the victim's events all reach its
destination exactly once, without a TimeoutError, and its log lines stay.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from helpers import (
    FAIR_ATTACKER_JS,
    FAIR_BURNER_JS,
    FAIR_CHATTY_JS,
    FAIR_VICTIM_JS,
    fair_max_overlap,
    fair_sink_ids,
)

WORKERS = pytest.mark.parametrize("workers", [1, 2])
EVENTS = 60


def post_events(d: Any, n: int, tag: str) -> list[str]:
    ids = [f"{tag}-{i}" for i in range(n)]
    for start in range(0, n, 20):
        batch = [{"type": "track", "userId": "u", "event": "E", "messageId": m} for m in ids[start : start + 20]]
        assert d.post("/v1/batch", {"batch": batch}).status_code == 200
    return ids


def config(workers: int, timeout_ms: int, attacker: dict[str, Any], url: str, extra: str = "") -> str:
    settings = ", ".join(f"{k} = {json.dumps(v)}" for k, v in {"url": url, **attacker}.items())
    return f"""
[runtime]
workers = {workers}
timeout_ms = {timeout_ms}
[retry]
max_attempts = 5
base_delay_s = 0.5
[functions.victim]
settings = {{ url = "{url}" }}
[functions.attacker]
settings = {{ {settings} }}
{extra}
"""


def assert_victim_clean(d: Any, sink: Any, ids: list[str]) -> None:
    """Every event delivered once, on the first attempt, no error recorded."""
    d.wait_until(
        lambda: d.function_status("victim").get("delivered", 0) >= len(ids), timeout=60, what="victim deliveries"
    )
    seen = Counter(fair_sink_ids(sink.requests, "/victim"))
    assert set(seen) == set(ids)
    assert [m for m, n in seen.items() if n > 1] == []  # no duplicate at the destination
    fn = d.function_status("victim")
    assert (fn["delivered"], fn["attempts"]) == (len(ids), len(ids)), fn  # nothing retried
    assert fn["last_error"] is None, fn  # no TimeoutError, no RunnerCrashed


@WORKERS
def test_a_never_resolving_neighbour_neither_delays_nor_duplicates_the_victim(
    daemon: Any, sink: Any, workers: int
) -> None:
    sink.behaviour.routes["/hang"] = (200, 30.0, b"")
    d = daemon(
        config_text=config(workers, 2000, {"path": "/hang", "fanout": 4}, sink.url),
        plugins={"victim": FAIR_VICTIM_JS, "attacker": FAIR_ATTACKER_JS},
    )
    ids = post_events(d, EVENTS, "hung")
    assert_victim_clean(d, sink, ids)
    assert d.function_status("attacker")["delivered"] == 0  # it really hung


@WORKERS
def test_a_fetch_storm_does_not_time_out_the_victim(daemon: Any, sink: Any, workers: int) -> None:
    sink.behaviour.routes["/slow"] = (200, 0.5, b"")
    d = daemon(
        config_text=config(workers, 3000, {"path": "/slow", "fanout": 50}, sink.url),
        plugins={"victim": FAIR_VICTIM_JS, "attacker": FAIR_ATTACKER_JS},
    )
    ids = post_events(d, EVENTS, "storm")
    assert_victim_clean(d, sink, ids)


@WORKERS
def test_a_cpu_burner_at_its_limit_does_not_time_out_the_victim(daemon: Any, sink: Any, workers: int) -> None:
    """Its slices cannot be preempted; the victim's clock stops for them and the burner rests between."""
    d = daemon(
        config_text=config(workers, 3000, {}, sink.url).replace("[runtime]", "[runtime]\ncpu_ms = 200"),
        plugins={"victim": FAIR_VICTIM_JS, "attacker": FAIR_BURNER_JS},
    )
    ids = post_events(d, 40, "cpu")
    assert_victim_clean(d, sink, ids)
    burner = d.wait_until(
        lambda: (fn := d.function_status("attacker")).get("attempts", 0) > 0 and fn,
        timeout=60,
        what="a burner attempt",
    )
    assert burner["delivered"] == 0, burner


@WORKERS
def test_a_slow_destination_sees_no_spurious_timeout_and_no_duplicate(daemon: Any, sink: Any, workers: int) -> None:
    """1 s per answer with timeout_ms 2.5 s: queueing in the runner is not the function's time."""
    sink.behaviour.routes["/victim"] = (200, 1.0, b"{}")
    d = daemon(
        config_text=config(workers, 2500, {"path": "/none", "fanout": 0}, sink.url),
        plugins={"victim": FAIR_VICTIM_JS},
    )
    ids = post_events(d, 120, "slow")
    assert_victim_clean(d, sink, ids)


@WORKERS
def test_a_function_at_its_max_concurrency_does_not_block_another(daemon: Any, sink: Any, workers: int) -> None:
    sink.behaviour.routes["/busy"] = (200, 0.3, b"")
    d = daemon(
        config_text=config(workers, 5000, {"path": "/busy", "fanout": 1}, sink.url, "max_concurrency = 1"),
        plugins={"victim": FAIR_VICTIM_JS, "attacker": FAIR_ATTACKER_JS},
    )
    ids = post_events(d, EVENTS, "cap")
    assert_victim_clean(d, sink, ids)
    d.wait_until(lambda: d.function_status("attacker").get("delivered", 0) >= EVENTS, timeout=60, what="attacker")
    # one invocation in flight at a time: at most one chunk of events (25) at its destination
    assert fair_max_overlap(sink.requests, "/busy") <= 25


@WORKERS
def test_a_flooding_console_does_not_evict_the_victims_log_lines(daemon: Any, workers: int) -> None:
    d = daemon(
        config_text=f"""
[storage]
log_lines = 300
[runtime]
workers = {workers}
[functions.attacker]
settings = {{ lines = 40 }}
""",
        plugins={
            "victim": "async function onTrack(e) { console.log(`victim saw ${e.messageId}`) }",
            "attacker": FAIR_CHATTY_JS,
        },
    )
    ids = post_events(d, 40, "logs")  # the attacker writes 1,600 lines into a table of 300
    d.wait_until(
        lambda: (
            d.function_status("attacker").get("delivered", 0) >= 40
            and d.function_status("victim").get("delivered", 0) >= 40
        ),
        what="both functions done",
    )
    out = d.ctl("logs", "--json", "-n", "1000", "victim")
    assert out.returncode == 0, out.stderr
    mine = [json.loads(x)["message"] for x in out.stdout.splitlines() if json.loads(x)["source"] == "function"]
    assert sorted(mine) == sorted(f"victim saw {m}" for m in ids)
    flood = d.ctl("logs", "--json", "-n", "1000", "attacker")
    assert 0 < len(flood.stdout.splitlines()) < 300  # it kept its share, not the table
