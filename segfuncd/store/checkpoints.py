"""The WAL checkpointer: a thread with its own connection copies the WAL back into the
database while the writer goes on, so no commit waits for that copy.

Rules:
* SQLite's own checkpoint runs inside whichever commit pushed the WAL past
  `wal_autocheckpoint` pages, and that commit (an intake answer, a delivery's completion)
  waits for the copy and its fsync: measured, that added ~20 ms to bench/e2e.py's paced
  p99. So the writer's automatic checkpoint is pushed far out (WRITER_AUTOCHECKPOINT_PAGES,
  a safety net that finds the frames already copied) and this thread does the work.
* It runs a PASSIVE checkpoint at most every `interval_s`, and only when the writer
  committed since the last one (`commits()`): an idle daemon does nothing here.
  PASSIVE never waits for the writer or a reader; what it cannot copy yet (a reader still
  on an old snapshot) is copied next time.
* A failed checkpoint loses nothing (the WAL only grows until one succeeds): it is logged
  once until one succeeds again, and retried; nothing it raises ends the thread.
* A retention pass's TRUNCATE checkpoint that meets one of these running is skipped (SQLite
  answers busy) and done at the next pass.
* `close()` stops the thread and closes its connection before the writer and the reader
  close; the last of those checkpoints and removes the WAL.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

from ..log import get_logger

INTERVAL_S = 0.25
WRITER_AUTOCHECKPOINT_PAGES = 16_384  # 64 MiB of 4 KiB pages: reached only if this thread stalls

log = get_logger()


class Checkpointer:
    """PASSIVE checkpoints on `conn` (its own connection) after the writer's commits."""

    def __init__(self, conn: sqlite3.Connection, *, commits: Callable[[], int], interval_s: float = INTERVAL_S) -> None:
        self._conn = conn
        self._commits = commits
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="segfuncd-store-checkpointer", daemon=True)
        self.checkpoints = 0  # PASSIVE checkpoints run (for tests and statistics)
        self.failing = False

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop the thread (after a checkpoint in progress) and close the connection. Blocking."""
        self._stop.set()
        self._thread.join()
        self._conn.close()

    def _main(self) -> None:
        seen = self._commits()
        while not self._stop.wait(self._interval_s):
            now = self._commits()
            if now == seen:
                continue
            seen = now
            self._checkpoint()

    def _checkpoint(self) -> None:
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception as exc:  # noqa: BLE001 - never end the thread: the next commit tries again
            if not self.failing:
                log.warning("store_checkpoint_failed", error=str(exc))
            self.failing = True
            return
        if self.failing:
            log.info("store_checkpoint_recovered")
        self.failing = False
        self.checkpoints += 1
