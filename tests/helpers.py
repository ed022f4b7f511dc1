"""Helpers shared by the tests: builders, waiters and small real servers.

Each section is owned by the area it serves; keep helpers here, not in test_*.py files.
"""

from __future__ import annotations

import json as _json
from pathlib import Path as _Path
from typing import Any as _Any

# --- config files (secrets, sources) ---------------------------------------------------


def write_toml(tmp_path: _Path, text: str) -> _Path:
    """Write `text` as tmp_path/segfuncd.toml and return its path."""
    p = tmp_path / "segfuncd.toml"
    p.write_text(text)
    return p


# --- intake from a browser ---------------------------------------------------------------


def beacon_post(intake_url: str, path: str, body: dict[str, _Any], origin: str | None, **headers: str) -> _Any:
    """A sendBeacon-style POST (text/plain, no preflight) with an optional Origin; the httpx.Response."""
    import httpx

    h = {"content-type": "text/plain;charset=UTF-8", **headers}
    if origin is not None:
        h["origin"] = origin
    return httpx.post(intake_url + path, content=_json.dumps(body).encode(), headers=h, timeout=10)


# --- deliveries through segfuncctl (pause, attempt records) ------------------------------


def ctl_deliveries(d: _Any, *args: str) -> list[dict[str, _Any]]:
    """`segfuncctl deliveries --json -n 100 ARGS` of a running DaemonProc, as rows."""
    out = d.ctl("deliveries", "--json", "-n", "100", *args)
    assert out.returncode == 0, out.stderr
    rows: list[dict[str, _Any]] = _json.loads(out.stdout)["deliveries"]
    return rows


# --- time ------------------------------------------------------------------------------


class ManualClock:
    """A clock (seconds) that moves only when a test sets `now`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def held_by_pause(rows: list[dict[str, _Any]], n: int) -> bool:
    """n deliveries, each put back by the dispatcher because its function is paused (no attempt used)."""
    return len(rows) == n and all("paused" in (r.get("note") or "") and r["attempts"] == 0 for r in rows)
