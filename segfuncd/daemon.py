"""`segfuncd`: load the config, then run everything in one root nursery until a signal.

Start order (each service is started with `nursery.start`, so READY=1 reaches systemd only
once everything listens): state lock -> store -> runner pool -> plugins (first scan) ->
delivery -> intake -> admin.

Shutdown on SIGTERM / SIGINT, staged:
  1. STOPPING=1; intake answers 503 to new events (nothing half-accepted: a request that
     was committing still gets its 200);
  2. delivery stops leasing and lets in-flight invocations finish for up to
     runtime.drain_timeout_s;
  3. deliveries still leased go back to pending (shielded, short deadline), SQLite closes;
  4. exit 0.
A second signal skips the drain: leases expire on their own, so nothing committed is lost.
SIGHUP (and `segfuncctl reload`) re-reads the config and rescans the plugins.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import trio

from . import __version__
from .config import Config, FunctionConfig, load_config, parse_config_file
from .errors import AlreadyRunning, ConfigError, SegfuncdError
from .log import LogTap, configure, get_logger
from .systemd import notify, watchdog_interval_s

log = get_logger()

EXIT_OK = 0
EXIT_ERROR = 1  # a runtime problem (state dir locked, socket in use, ...)
EXIT_CONFIG = 2  # the config is invalid

LOG_PUMP_INTERVAL_S = 0.25


@contextmanager
def state_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` so two daemons never share one state directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid_text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise AlreadyRunning(str(path), int(pid_text) if pid_text.isdigit() else None) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


class Daemon:
    """The running daemon's parts; `config` is swapped by reload, nothing else is global."""

    def __init__(self, config: Config, *, tap: LogTap) -> None:
        self.config = config
        self.tap = tap
        self.started_at = time.time()
        self.reloads = 0

    # The wiring lives in run(); see there.
