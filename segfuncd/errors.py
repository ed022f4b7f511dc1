"""Every exception segfuncd raises on purpose; a leaf module (imports nothing of ours).

    SegfuncdError                 base: an operator-facing problem, printed as one line
    ├── ConfigError(path, key)    the config file is wrong: the operator's fault
    ├── IntakeError(status, msg)  a client sent something we refuse: the client's fault
    ├── Backpressure              the queue is over its limit: try again later (503)
    ├── StoreError(kind)          SQLite failed underneath us: the machine's fault
    │   ├── DamagedState          the state directory lost or broke its database while we were
    │   │                         stopped; refuse to start (the operator decides)
    │   └── ClusterError          NATS JetStream failed or refused ([storage] backend = "jetstream"):
    │                             unreachable, JetStream off, no permission, no quorum
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
    """SQLite failed (disk full, corrupt file, locked); translated from sqlite3 errors.

    `kind` names the cause for operators and for the store's fault state: "full" (disk or
    database full), "corrupt" (damaged file), "io" (the disk failed a read or write),
    "busy" (locked), "closed" (the store is shutting down) or "other".
    """

    def __init__(self, message: str, *, kind: str = "other") -> None:
        self.kind = kind
        super().__init__(message)


class DamagedState(StoreError):
    """At start, the state directory does not hold the database it held when last stopped.

    The machine's (or an operator's) fault: a deleted, truncated or replaced database file, a
    write-ahead log lost after an unclean stop, a failed integrity check. `segfuncd
    --accept-state-loss` starts anyway.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="damaged")


class ClusterError(StoreError):
    """The NATS JetStream cluster failed or refused a request (segfuncd/jetstream/).

    The cluster's fault (servers down, quorum lost) or the operator's (wrong URL, JetStream
    not enabled, an account without the permissions); the message says which and names the
    `[storage.jetstream]` key to look at when there is one.
    """

    def __init__(self, message: str, *, kind: str = "cluster") -> None:
        super().__init__(message, kind=kind)


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
