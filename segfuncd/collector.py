"""Python's cycle collector in a long-running process: what was there at start is frozen,
and the youngest generation is collected after 10,000 net allocations, not 700.

A full (generation 2) collection scans every object the collector tracks. In the daemon and
in a runner most of them are what was imported or built at start (modules, functions,
classes, the prelude's host tables): tens of thousands of objects that never become garbage.
Scanning them again on every full collection stalled a runner's loop for 14-20 ms, and every
function waiting on that loop with it (measured in bench/isolation.py's storm phase, with a
thousand fetches in flight). `gc.freeze()` moves them to a generation that is never scanned;
objects made later are collected as before.

The young generation's threshold counts allocations minus frees of tracked objects. A slice's
answer, a batch's rows or a lease's records are a few hundred short-lived objects at once, so
at 700 a collection ran every few events, each one scanning everything in flight (the fetches
and invocations under way) only to find almost nothing: in bench/e2e.py that was ~150 ms of
CPU per runner and ~150 ms in the daemon for 26,000 events. At 10,000 it is a few dozen
collections per run, and what they find is the same: our hot paths make no cycles (httpclient
breaks the one a response parser makes). Memory held by young garbage stays a few MB at most.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "freeze_startup_objects"]

YOUNG_THRESHOLD = 10_000


def freeze_startup_objects() -> None:
    """Collect what start-up left as garbage, freeze the rest, and raise the young generation's
    threshold (call once, when ready)."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
