"""collector.py: what the daemon and each runner do to Python's cycle collector once started."""

from __future__ import annotations

import subprocess
import sys


def test_start_up_objects_are_frozen_and_the_young_threshold_is_raised() -> None:
    # a process of its own: the collector's settings are global to the interpreter
    code = (
        "import gc\n"
        "from segfuncd.collector import YOUNG_THRESHOLD, freeze_startup_objects\n"
        "before = gc.get_threshold()\n"
        "freeze_startup_objects()\n"
        "print(before[0], gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:]), gc.get_freeze_count() > 1000)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["700", "True", "True"], out
