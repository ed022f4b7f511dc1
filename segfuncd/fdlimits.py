"""File descriptors: raise the soft RLIMIT_NOFILE at start, and budget intake connections under it.

systemd's default soft limit is 1,024, which equalled the default `intake.max_connections`:
1,100 idle sockets made accept() fail with EMFILE, and the admin socket stopped answering
too. So at start the daemon raises its soft limit to the hard one (the shipped unit sets
`LimitNOFILE=`), and intake may hold at most what is left after a reserve for everything
else that needs descriptors: the admin socket and its clients, the store (database, WAL,
SHM, two connections), the lock, listeners, DNS, the plugin watcher, and the pipes to each
runner. Past that budget a new connection gets a quick 503 (server/loop.py), while the
reserve keeps the admin socket answering.
"""

from __future__ import annotations

import resource

RESERVED_FDS = 64  # store, lock, listeners, log pipes, DNS sockets, the plugin watcher
PER_RUNNER_FDS = 8  # stdin/stdout/stderr pipes of a runner, and a replacement being started
ADMIN_MAX_CONNECTIONS = 64  # segfuncctl clients (logs -f stays connected)


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (as far as the kernel allows); the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if target == resource.RLIM_INFINITY:
        target = _nr_open()
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass  # keep what we have; the budget below adapts
    return int(soft) if soft != resource.RLIM_INFINITY else _nr_open()


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open", encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 1 << 20


def connection_budget(configured: int, *, nofile: int, workers: int) -> int:
    """intake.max_connections, capped so the reserve for everything else stays free."""
    spare = nofile - RESERVED_FDS - PER_RUNNER_FDS * workers - ADMIN_MAX_CONNECTIONS
    return max(1, min(configured, spare))
