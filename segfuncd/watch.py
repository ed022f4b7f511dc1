"""Watching a directory for changes (inotify via watchfiles), stoppable at once.

Used for the plugins directory (plugins.py) and the config file's folder (reload.py).

Why not a bare `watchfiles.awatch` loop: awatch waits for changes in a worker thread that
trio cannot cancel, and it only tells that thread to stop *after* the wait returns, which
is up to its 5 s `rust_timeout` later; a daemon told to stop sat idle that long. Here a
sibling task sets the stop event as soon as the watch is cancelled, and the thread returns
within one `step`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import trio
import watchfiles

# A burst of editor events (save via rename fires several) becomes one callback.
DEFAULT_DEBOUNCE_MS = 150
STEP_MS = 100  # how often the watch thread looks at the stop event (each look wakes a thread: 30 ms cost 0.3% CPU per watcher idle)

OnChange = Callable[[set[Path]], Awaitable[None]]


async def watch_dir(
    directory: Path,
    on_change: OnChange,
    *,
    debounce_ms: int = DEFAULT_DEBOUNCE_MS,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Call `on_change(paths)` for each debounced burst of changes directly in `directory`.

    Runs until cancelled; cancellation returns within about STEP_MS.
    """
    stop = anyio.Event()

    async def stop_when_cancelled() -> None:
        try:
            await trio.sleep_forever()
        finally:
            stop.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(stop_when_cancelled)
        task_status.started()
        async for changes in watchfiles.awatch(
            directory, debounce=debounce_ms, step=STEP_MS, recursive=False, stop_event=stop
        ):
            await on_change({Path(p) for _, p in changes})
        nursery.cancel_scope.cancel()
