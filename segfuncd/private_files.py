"""Files and folders that hold event data, logs or secrets: created private, whatever the umask.

The quick start runs under a umask of 022, which would leave the database (event PII,
function logs) and a config (write keys, settings) readable by every local user. So the
modes here are set explicitly (fchmod / chmod after creation), not left to the umask:

* the state directory: 0700 (0750 when an admin group is configured);
* the database and its -wal / -shm / -journal: 0600 (0660 with an admin group); SQLite
  gives the files it creates the database file's mode, so creating that file first is enough;
* the state lock and a config written by `segfuncctl init`: 0600.

A folder that already exists is left as the operator made it (it may be shared).
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
GROUP_DIR_MODE = 0o750
FILE_MODE = 0o600
GROUP_FILE_MODE = 0o660
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def modes(group: bool) -> tuple[int, int]:
    """(directory mode, file mode) for state, with or without an admin group."""
    return (GROUP_DIR_MODE, GROUP_FILE_MODE) if group else (DIR_MODE, FILE_MODE)


def make_private_dir(path: Path, mode: int = DIR_MODE) -> None:
    """Create `path` (and parents) if missing; the folder created last gets exactly `mode`."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)


def private_file(path: Path, mode: int = FILE_MODE) -> None:
    """Create `path` if missing and give it exactly `mode` (an existing file is tightened too)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def private_database(path: Path, mode: int = FILE_MODE) -> None:
    """The SQLite file and any side files it has, with `mode`, before SQLite opens them."""
    private_file(path, mode)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, mode)


def write_private_text(path: Path, text: str, mode: int = FILE_MODE) -> None:
    """Write a new file (never an existing one) that only its owner can read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
