"""Every exception segfuncd raises on purpose; a leaf module (imports nothing of ours).

    SegfuncdError                 base: an operator-facing problem, printed as one line
    ├── ConfigError(path, key)    the config file is wrong: the operator's fault
    ├── IntakeError(status, msg)  a client sent something we refuse: the client's fault
    ├── Backpressure              the queue is over its limit: try again later (503)
    ├── StoreError                SQLite failed underneath us: the machine's fault
    ├── RunnerError               a runner process died or could not start
    ├── AlreadyRunning(lock)      another daemon holds the state directory
    └── DaemonUnreachable(socket) segfuncctl cannot talk to the daemon

Bugs are not SegfuncdErrors: they keep their traceback.
"""

from __future__ import annotations


class SegfuncdError(Exception):
    """Base class; `str()` is a complete sentence for the operator."""


class ConfigError(SegfuncdError):
    """The config file (or a value in it) is invalid; names the file and the key."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        self.message = message
        where = ": ".join(p for p in (path, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class IntakeError(SegfuncdError):
    """A request we refuse; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, *, field: str | None = None) -> None:
        self.status = status
        self.field = field
        self.message = message
        super().__init__(message)


class Backpressure(SegfuncdError):
    """Pending deliveries exceed the configured limit; callers answer 503 + Retry-After."""

    def __init__(self, message: str = "queue is full", *, retry_after_s: int = 5) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)


class StoreError(SegfuncdError):
    """SQLite failed (disk full, corrupt file, locked); translated from sqlite3 errors."""


class RunnerError(SegfuncdError):
    """A runner process could not be started or died while we waited on it."""


class AlreadyRunning(SegfuncdError):
    """Another segfuncd holds the lock on this state directory."""

    def __init__(self, lock_path: str, pid: int | None = None) -> None:
        self.lock_path = lock_path
        self.pid = pid
        who = f" (pid {pid})" if pid else ""
        super().__init__(f"another segfuncd{who} is already running on this state directory: {lock_path} is locked")


class DaemonUnreachable(SegfuncdError):
    """segfuncctl could not reach the admin socket."""

    def __init__(self, socket_path: str, reason: str) -> None:
        self.socket_path = socket_path
        self.reason = reason
        super().__init__(f"cannot reach the daemon at {socket_path}: {reason}")
