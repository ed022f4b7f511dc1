"""The README's two set-up commands, run the way a new user runs them: in a fresh copy and venv."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from conftest import ROOT, wait_until  # type: ignore[import-not-found]


def readme_commands() -> list[str]:
    """The shell blocks under "## Set up", in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    run_daemon, run_tests = readme_commands()
    assert "segfuncd" in run_daemon and "pytest" in run_tests
    ci = (ROOT / ".ci/run").read_text()
    assert run_tests in ci.splitlines()


def test_readme_daemon_command_works_from_a_fresh_copy(tmp_path: Path) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8088)) == 0:
            pytest.skip("something already listens on 127.0.0.1:8088")
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    if not files:
        pytest.skip("not a git checkout")
    copy = tmp_path / "segfuncd"
    for name in files:
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    run_daemon = readme_commands()[0]
    env = {k: v for k, v in os.environ.items() if k not in ("SEGFUNCD_CONFIG", "VIRTUAL_ENV")}
    proc = subprocess.Popen(
        ["bash", "-c", run_daemon],
        cwd=copy,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(
            lambda: (copy / "var" / "admin.sock").exists() or proc.poll() is not None,
            timeout=300,
            interval=0.5,
            what="the daemon to start after pip install",
        )
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.5)
        r = httpx.post("http://127.0.0.1:8088/v1/track", json={"userId": "u1", "event": "Signed Up"}, timeout=10)
        assert r.json() == {"success": True}
        ctl = str(copy / ".venv" / "bin" / "segfuncctl")

        def delivered() -> bool:
            out = subprocess.run([ctl, "status", "--json"], cwd=copy, env=env, capture_output=True, text=True)
            return out.returncode == 0 and '"delivered": 1' in out.stdout.replace('"delivered":1', '"delivered": 1')

        wait_until(delivered, timeout=30, what="the example plugin to deliver the event")
        logs = subprocess.run([ctl, "logs", "-n", "5", "example"], cwd=copy, env=env, capture_output=True, text=True)
        assert 'track "Signed Up" from u1' in logs.stdout
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0
