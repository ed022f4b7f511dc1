"""File descriptors (issue 11, item 6): the daemon raises its soft RLIMIT_NOFILE, keeps intake
connections under a budget below it, refuses the excess quickly, and the admin socket keeps
answering."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from segfuncd.fdlimits import ADMIN_MAX_CONNECTIONS, PER_RUNNER_FDS, RESERVED_FDS

HEALTH = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


def nofile_limits(pid: int) -> tuple[int, int]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no Max open files line")


def test_the_soft_fd_limit_is_raised_to_the_hard_one(daemon: Any) -> None:
    d = daemon(nofile=(256, 2048))
    assert nofile_limits(d.pid) == (2048, 2048)


def test_past_the_budget_connections_get_a_quick_503_and_admin_keeps_answering(daemon: Any) -> None:
    # hard limit 256 (as a container might impose): the default max_connections (1024) cannot fit
    d = daemon(nofile=(256, 256))
    budget = 256 - RESERVED_FDS - PER_RUNNER_FDS * 1 - ADMIN_MAX_CONNECTIONS
    host, port = d.intake_url.removeprefix("http://").split(":")
    idle: list[socket.socket] = []
    try:
        for _ in range(budget):  # keep-alive clients, answered once and then idle, fill the budget
            s = socket.create_connection((host, int(port)), timeout=10)
            idle.append(s)
            s.sendall(HEALTH)
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        refused = 0
        for _ in range(40):  # then 40 more, each answered 503 at once and closed
            with socket.create_connection((host, int(port)), timeout=10) as extra:
                extra.sendall(HEALTH)
                head = extra.recv(4096)
                refused += head.startswith(b"HTTP/1.1 503")
        assert refused == 40
        assert d.admin_get("/status").status_code == 200  # the reserve keeps the admin socket working
        assert "max_connections_capped" in d.stderr()
    finally:
        for s in idle:
            s.close()
    d.wait_until(lambda: d.post("/v1/track", {"userId": "u", "event": "E"}).status_code == 200, what="intake back")


def test_the_shipped_unit_sets_a_generous_fd_limit() -> None:
    unit = (Path(__file__).resolve().parents[2] / "systemd" / "segfuncd.service").read_text()
    limits = [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("LimitNOFILE=")]
    assert limits and int(limits[0].split(":")[0]) >= 16384
    assert "StateDirectoryMode=0700" in unit
