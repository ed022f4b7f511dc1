"""Python's cycle collector in a long-running process: what was there at start is frozen.

A full (generation 2) collection scans every object the collector tracks. In the daemon and
in a runner most of them are what was imported or built at start (modules, functions,
classes, the prelude's host tables): tens of thousands of objects that never become garbage.
Scanning them again on every full collection stalled a runner's loop for 14-20 ms, and every
function waiting on that loop with it (measured in bench/isolation.py's storm phase, with a
thousand fetches in flight). `gc.freeze()` moves them to a generation that is never scanned;
objects made later are collected as before.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_startup_objects"]


def freeze_startup_objects() -> None:
    """Collect what start-up left as garbage, then freeze the rest (call once, when ready)."""
    gc.collect()
    gc.freeze()
