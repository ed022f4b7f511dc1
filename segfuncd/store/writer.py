"""Owner threads: each SQLite connection belongs to one thread, fed jobs from trio.

Rules:
* A job is a plain function `fn(conn, now)` run in the owner thread; trio callers await
  `submit()`, which hands the job over and waits for it to finish. The thread reports back
  with one `run_sync_soon` per group, not per job.
* The writer merges jobs into groups: everything queued (up to `max_rows`, lingering up to
  `window_s` for more while the group is small) runs in ONE transaction and one commit —
  group commit. Accept jobs of a group are merged further by `merge` (one executemany per
  table for the whole group). Each job has its own SAVEPOINT, so a job that fails rolls
  back alone; a failed COMMIT fails every job of the group.
* A caller learns its outcome only after the commit (or the rollback) of its group. Write
  callers wait shielded from cancellation: the write cannot be abandoned halfway, and the
  caller must know whether it happened (so never abandon_on_cancel on writes).
* sqlite3 errors become StoreError at `submit()`, with `kind` naming the cause (`error_kind`);
  any other exception is a bug and keeps its type and traceback.
* A failed rollback never hides the error that caused it. SQLite rolls the whole
  transaction back by itself after some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM);
  then `ROLLBACK TO` would fail with "no transaction is active". The writer checks
  `in_transaction` first, and when the transaction is gone it fails the rest of the
  group with the original error instead of running their jobs outside any transaction.
"""

from __future__ import annotations

import errno
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import trio

from ..errors import StoreError

T = TypeVar("T")
JobFn = Callable[[sqlite3.Connection, float], T]
# merge(conn, now, payloads) -> one result per payload, in order
MergeFn = Callable[[sqlite3.Connection, float, list[Any]], list[Any]]


class Job(Generic[T]):
    """One unit of work for an owner thread, and its outcome."""

    __slots__ = ("fn", "payload", "rows", "what", "bare", "result", "error", "task", "abandoned")

    def __init__(
        self, fn: JobFn[T] | None, *, payload: Any = None, rows: int = 1, what: str, bare: bool = False
    ) -> None:
        self.fn = fn  # None: a mergeable payload
        self.bare = bare  # True: runs outside any transaction, after the group's commit (checkpoints)
        self.payload = payload
        self.rows = rows
        self.what = what  # named in StoreError messages: "accept", "lease", ...
        self.result: Any = None
        self.error: BaseException | None = None
        self.task: trio.lowlevel.Task | None = None  # the caller waiting for it
        self.abandoned = False  # the caller was cancelled (reads only) and left


# What an operator reads first in the error message, per kind.
_CAUSES = {
    "full": "storage full",
    "corrupt": "database corrupt",
    "io": "disk I/O error",
    "busy": "database locked",
    "other": "storage error",
}
_FULL = {getattr(sqlite3, "SQLITE_FULL", 13)}
_CORRUPT = {getattr(sqlite3, "SQLITE_CORRUPT", 11), getattr(sqlite3, "SQLITE_NOTADB", 26)}
_IOERR = 10  # SQLITE_IOERR; extended codes keep it in their low byte
_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED


def error_kind(exc: BaseException) -> str:
    """The cause of a sqlite3 (or OS) error: "full", "corrupt", "io", "busy" or "other"."""
    if isinstance(exc, OSError):
        return "full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "io"
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        primary = code & 0xFF
        if primary in _FULL:
            return "full"
        if primary in _CORRUPT:
            return "corrupt"
        if primary == _IOERR:
            # SQLITE_IOERR_WRITE & co. on a full disk show as I/O errors: look at the text too.
            return "full" if "full" in str(exc).lower() else "io"
        if primary in _BUSY:
            return "busy"
    text = str(exc).lower()
    if "disk is full" in text or "database or disk is full" in text:
        return "full"
    if "malformed" in text or "not a database" in text:
        return "corrupt"
    return "other"


def _rollback(conn: sqlite3.Connection, statement: str) -> bool:
    """Run a ROLLBACK [TO ...]; False when there was no transaction left to roll back."""
    if not conn.in_transaction:
        return False
    try:
        conn.execute(statement)
    except sqlite3.Error:
        return False  # the caller raises the error that made it roll back, not this one
    return True


class _TransactionLost(Exception):
    """SQLite ended the group's transaction itself after `cause`; the group fails with it."""

    def __init__(self, cause: BaseException) -> None:
        self.cause = cause
        super().__init__(str(cause))


class OwnerThread:
    """A thread that owns `conn` and runs jobs one at a time, each in its own transaction.

    Used for reads: BEGIN (deferred) gives each job one consistent snapshot.
    """

    def __init__(self, conn: sqlite3.Connection, *, name: str, clock: Callable[[], float]) -> None:
        self._conn = conn
        self._clock = clock
        self._token = trio.lowlevel.current_trio_token()
        self._cv = threading.Condition(threading.Lock())  # a C lock: cheaper than the RLock default
        self._queue: deque[Job[Any]] = deque()
        self._closing = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.commits = 0
        self.healthy = True
        self.closed_cleanly = False  # the connection closed without error (the WAL is gone)

    def start(self) -> None:
        self._thread.start()

    async def aclose(self) -> None:
        """Finish the queued jobs, stop the thread, close the connection."""
        with self._cv:
            self._closing = True
            self._cv.notify()
        await trio.to_thread.run_sync(self._thread.join)

    async def submit(self, job: Job[T], *, shield: bool) -> T:
        """Run `job` in the owner thread and return its result (StoreError on SQLite errors)."""
        job.task = trio.lowlevel.current_task()
        with self._cv:
            if self._closing:
                raise StoreError(f"the store is closed ({job.what})", kind="closed")
            self._queue.append(job)
            self._cv.notify()

        # The caller sleeps until the thread's report reschedules it. A write refuses to
        # be cancelled (Abort.FAILED: the cancel is delivered at the next checkpoint after
        # it finished), exactly like trio.to_thread.run_sync without abandon_on_cancel; this
        # is also cheaper per call than a shielded CancelScope around an Event.
        def abort(_: object) -> trio.lowlevel.Abort:
            if shield:
                return trio.lowlevel.Abort.FAILED
            job.abandoned = True
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
        if job.error is not None:
            if isinstance(job.error, sqlite3.Error | OSError):
                kind = error_kind(job.error)
                raise StoreError(
                    f"{_CAUSES[kind]}: SQLite failed during {job.what}: {job.error}", kind=kind
                ) from job.error
            raise job.error
        return job.result  # type: ignore[no-any-return]

    # --- in the owner thread ------------------------------------------------------------

    def _take(self) -> list[Job[Any]] | None:
        with self._cv:
            while not self._queue:
                if self._closing:
                    return None
                self._cv.wait()
            return [self._queue.popleft()]

    def _main(self) -> None:
        try:
            while (group := self._take()) is not None:
                try:
                    self._run_group(group)
                except BaseException as exc:  # noqa: BLE001 - reported to every caller
                    for job in group:
                        if job.error is None:
                            job.error = exc
                self._report(group)
        finally:
            try:
                self._conn.close()
                self.closed_cleanly = True
            except sqlite3.Error:
                pass

    def _report(self, group: Sequence[Job[Any]]) -> None:
        try:
            self._token.run_sync_soon(_set_done, group)
        except trio.RunFinishedError:
            pass  # nobody is waiting any more

    def _run_group(self, group: list[Job[Any]]) -> None:
        conn = self._conn
        for job in group:
            conn.execute("BEGIN")
            try:
                assert job.fn is not None
                job.result = job.fn(conn, self._clock())
                conn.execute("COMMIT")
            except BaseException as exc:  # noqa: BLE001
                job.error = exc
                _rollback(conn, "ROLLBACK")


class GroupWriter(OwnerThread):
    """The one writer: group commit over everything queued (see the module docstring)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        clock: Callable[[], float],
        merge: MergeFn,
        window_s: float,
        max_rows: int,
    ) -> None:
        super().__init__(conn, name="segfuncd-store-writer", clock=clock)
        self._merge = merge
        self._window_s = window_s
        self._max_rows = max_rows
        self.largest_group = 0

    def _take(self) -> list[Job[Any]] | None:
        with self._cv:
            while not self._queue:
                if self._closing:
                    return None
                self._cv.wait()
            group = [self._queue.popleft()]
            rows = group[0].rows
            deadline = time.monotonic() + self._window_s
            while rows < self._max_rows:
                if self._queue:
                    job = self._queue.popleft()
                    group.append(job)
                    rows += job.rows
                    continue
                # Linger for companions only while they are likely: a lone job at low load
                # commits at once instead of paying the window in latency.
                left = deadline - time.monotonic()
                if left <= 0 or self._closing or len(group) == 1:
                    break
                self._cv.wait(left)
            return group

    def _run_group(self, group: list[Job[Any]]) -> None:
        conn = self._conn
        now = self._clock()
        merged = [job for job in group if job.fn is None]
        others = [job for job in group if job.fn is not None and not job.bare]
        bare = [job for job in group if job.bare]
        if merged or others:
            self._run_transaction(now, merged, others)
        for job in bare:
            try:
                assert job.fn is not None
                job.result = job.fn(conn, now)
            except BaseException as exc:  # noqa: BLE001
                job.error = exc

    def _run_transaction(self, now: float, merged: list[Job[Any]], others: list[Job[Any]]) -> None:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            if merged:
                conn.execute("SAVEPOINT merged")
                try:
                    results = self._merge(conn, now, [job.payload for job in merged])
                    conn.execute("RELEASE merged")
                    for job, result in zip(merged, results, strict=True):
                        job.result = result
                except BaseException as exc:  # noqa: BLE001
                    self._undo_savepoint("merged", exc)
                    for job in merged:
                        job.error = exc
            for job in others:
                conn.execute("SAVEPOINT job")
                try:
                    assert job.fn is not None
                    job.result = job.fn(conn, now)
                    conn.execute("RELEASE job")
                except BaseException as exc:  # noqa: BLE001
                    job.error = exc
                    self._undo_savepoint("job", exc)
            conn.execute("COMMIT")
        except _TransactionLost as lost:
            _rollback(conn, "ROLLBACK")
            self.healthy = False
            raise lost.cause from None
        except BaseException:
            _rollback(conn, "ROLLBACK")
            self.healthy = False
            raise
        self.commits += 1
        self.healthy = True
        self.largest_group = max(self.largest_group, len(merged))

    def _undo_savepoint(self, name: str, cause: BaseException) -> None:
        """Roll back one job's savepoint; raise _TransactionLost if SQLite already ended it all."""
        if not _rollback(self._conn, f"ROLLBACK TO {name}"):
            raise _TransactionLost(cause)
        try:
            self._conn.execute(f"RELEASE {name}")
        except sqlite3.Error:
            if not self._conn.in_transaction:
                raise _TransactionLost(cause) from None
            raise


def _set_done(group: Sequence[Job[Any]]) -> None:
    for job in group:
        if not job.abandoned and job.task is not None:
            trio.lowlevel.reschedule(job.task)
