"""State files no one else can read, whatever the umask (issue 11, item 7).

The README's quick start runs under umask 022; the daemon still makes its state directory
0700 and the database, WAL, SHM, lock and admin socket 0600 (0660 / 0750 with admin.group),
and `segfuncctl init` writes the config (where secrets live) 0600.
"""

from __future__ import annotations

import grp
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import _exe


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)  # inherited by the daemon and segfuncctl started below
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_state_is_private_under_umask_022(daemon: Any, umask_022: None) -> None:
    d = daemon(plugins={"noop": "async function onTrack(e) { return 1 }"})
    assert d.post("/v1/track", {"userId": "u", "event": "E"}).status_code == 200
    var = d.dir / "var"
    d.wait_until(lambda: (var / "segfuncd.db-wal").exists(), what="the WAL file")
    assert mode(var) == 0o700
    for name in ("segfuncd.db", "segfuncd.db-wal", "segfuncd.db-shm", "segfuncd.lock", "admin.sock"):
        assert mode(var / name) == 0o600, name


def test_an_admin_group_gets_group_access(daemon: Any, umask_022: None) -> None:
    group = grp.getgrgid(os.getgid()).gr_name
    d = daemon(f'[admin]\ngroup = "{group}"\n', plugins={"noop": "async function onTrack(e) { return 1 }"})
    assert d.post("/v1/track", {"userId": "u", "event": "E"}).status_code == 200
    var = d.dir / "var"
    d.wait_until(lambda: (var / "segfuncd.db-wal").exists(), what="the WAL file")
    assert mode(var) == 0o750
    for name in ("segfuncd.db", "segfuncd.db-wal", "segfuncd.db-shm", "admin.sock"):
        assert mode(var / name) == 0o660, name


def test_an_existing_world_readable_database_is_tightened(daemon: Any, tmp_path: Path, umask_022: None) -> None:
    var = tmp_path / "var"
    var.mkdir()
    (var / "segfuncd.db").touch(mode=0o644)
    os.chmod(var / "segfuncd.db", 0o644)
    daemon()
    assert mode(var / "segfuncd.db") == 0o600


def test_init_writes_the_config_0600(tmp_path: Path, umask_022: None) -> None:
    site = tmp_path / "site"
    out = subprocess.run([*_exe("segfuncctl", "segfuncd.ctl"), "init", str(site)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert mode(site / "segfuncd.toml") == 0o600
