"""sd_notify over a real datagram socket, and the unit file passes systemd-analyze."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from segfuncd.systemd import notify, watchdog_interval_s

ROOT = Path(__file__).resolve().parent.parent


def test_notify_sends_the_state_to_notify_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        assert notify("READY=1", env={"NOTIFY_SOCKET": path}) is True
        assert server.recv(64) == b"READY=1"


def test_notify_without_systemd_is_a_no_op() -> None:
    assert notify("READY=1", env={}) is False


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert watchdog_interval_s(env={"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s(env={"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s(env={}) is None


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """The unit as installed (ExecStart pointing at a real segfuncd) verifies cleanly."""
    segfuncd = shutil.which("segfuncd") or str(Path(sys.executable).parent / "segfuncd")
    assert Path(segfuncd).exists(), "segfuncd entry point is not installed"
    unit = (ROOT / "systemd/segfuncd.service").read_text()
    assert "Type=notify" in unit and "WatchdogSec=" in unit
    (tmp_path / "segfuncd.service").write_text(unit.replace("/opt/segfuncd/bin/segfuncd", segfuncd))
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "segfuncd.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_unit_stops_by_draining_the_daemon_alone() -> None:
    """SIGTERM reaches only the daemon (KillMode=mixed) and the stop outlasts the drain."""
    from segfuncd.config import RuntimeConfig

    unit = dict(
        line.split("=", 1)
        for line in (ROOT / "systemd/segfuncd.service").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert unit["KillMode"] == "mixed"
    assert unit["KillSignal"] == "SIGTERM"
    assert float(unit["TimeoutStopSec"]) > RuntimeConfig().drain_timeout_s + 5
    assert "MemoryMax" not in unit  # one 256 MB runner per CPU: no fixed cap fits every machine
