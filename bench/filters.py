"""Filter evaluations per second: a 5-clause FQL filter vs the same filter hand-written.

    .venv/bin/python bench/filters.py [--seconds 0.5] [--rounds 5]

Both predicates run over the same 1,000 events (a mix that fails at each of the clauses; about
6% pass them all), in the same process, best of `rounds` interleaved timed loops. The target is
compiled FQL >= 0.5x the hand-written Python. FilterChain.apply rows add what delivery pays
per event (decision object, fail-closed guard, a sample step and a property rewrite); compare
them with the store's intake target of 20,000 events/s (bench/store.py), not with the baseline.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from segfuncd.config import FilterConfig  # noqa: E402
from segfuncd.filters import compile_filters  # noqa: E402
from segfuncd.fql import compile_condition  # noqa: E402

FQL = (
    "type = 'track' and event != 'Page Viewed' and properties.revenue > 10"
    " and match(context.library.version, '2.*') and 'beta' in properties.features"
)
TARGET = 0.5


def hand_written(e: dict[str, Any]) -> bool:
    """The same five clauses with FQL's type rules, as a careful person writes them."""
    if e.get("type") != "track" or e.get("event") == "Page Viewed":
        return False
    props = e.get("properties")
    if type(props) is not dict:
        return False
    revenue = props.get("revenue")
    if type(revenue) not in (int, float) or not revenue > 10:
        return False
    ctx = e.get("context")
    lib = ctx.get("library") if type(ctx) is dict else None
    version = lib.get("version") if type(lib) is dict else None
    if type(version) is not str or not version.startswith("2."):
        return False
    features = props.get("features")
    return type(features) is list and "beta" in features


def make_events(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(
            {
                "type": rng.choice(["track", "track", "track", "identify"]),
                "event": rng.choice(["Order Completed", "Page Viewed", "Signed Up", "Button Clicked"]),
                "userId": f"user-{rng.randrange(100_000)}",
                "messageId": f"m-{i}",
                "context": {
                    "library": {"name": "analytics.js", "version": rng.choice(["2.1", "2.11.3", "1.0"])},
                    "ip": "10.0.0.1",
                },
                "properties": {
                    "revenue": rng.choice([5, 12.5, 30, "40", True, None]),
                    "features": rng.sample(["beta", "dark-mode", "discounts", "new-ui"], k=2),
                    "email": "someone@example.com",
                },
            }
        )
    return out


def _passes(fn: Callable[[dict[str, Any]], Any], events: list[dict[str, Any]], loops: int) -> float:
    t0 = time.perf_counter()
    for _ in range(loops):
        for e in events:
            fn(e)
    return time.perf_counter() - t0


def rates(
    fns: list[Callable[[dict[str, Any]], Any]], events: list[dict[str, Any]], seconds: float, rounds: int
) -> list[float]:
    """Best evaluations/s of each fn; rounds are interleaved so machine noise hits all alike."""
    loops = []
    for fn in fns:  # calibrate passes so that one round of this fn takes about `seconds`
        n = 1
        while (took := _passes(fn, events, n)) < seconds / 4:
            n *= 2
        loops.append(max(1, int(n * seconds / took)))
    best = [0.0] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            best[i] = max(best[i], loops[i] * len(events) / _passes(fn, events, loops[i]))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="length of one timed round (default 0.5)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per row, best kept (default 5)")
    args = parser.parse_args()

    events = make_events(1_000)
    compiled = compile_condition(FQL)
    mismatches = [e for e in events if compiled(e) is not hand_written(e)]
    if mismatches:
        print(f"compiled FQL and the hand-written filter disagree on {len(mismatches)} events", file=sys.stderr)
        return 1
    passing = sum(hand_written(e) for e in events)

    drop_one = compile_filters("bench", (FilterConfig(if_=FQL, action="drop"),))
    full = compile_filters(
        "bench",
        (
            FilterConfig(action="sample", percent=0.9, path="userId"),
            FilterConfig(if_=FQL, action="drop"),
            FilterConfig(if_="type = 'track'", action="drop_properties", fields={"properties": ("email",)}),
            FilterConfig(action="allow_properties", fields={"context": ("library",)}),
        ),
    )
    names = [
        "hand-written Python (baseline)",
        "compiled FQL predicate",
        "FilterChain.apply: 1 drop filter",
        "FilterChain.apply: sample+drop+drop/allow props",
    ]
    measured = rates([hand_written, compiled, drop_one.apply, full.apply], events, args.seconds, args.rounds)
    rows = list(zip(names, measured, strict=True))
    base = rows[0][1]
    print(f"filter: {FQL}")
    print(f"events: {len(events)} ({passing} match), Python {sys.version.split()[0]}, best of {args.rounds}")
    print()
    print(f"{'what':<50} {'evals/s':>12} {'vs baseline':>12}")
    print("-" * 76)
    for name, r in rows:
        print(f"{name:<50} {r:>12,.0f} {r / base:>11.2f}x")
    ratio = rows[1][1] / base
    print()
    print(f"compiled FQL / hand-written = {ratio:.2f}x (target >= {TARGET}x): {'PASS' if ratio >= TARGET else 'FAIL'}")
    return 0 if ratio >= TARGET else 2


if __name__ == "__main__":
    raise SystemExit(main())
