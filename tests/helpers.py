"""Helpers shared by the tests: builders, waiters and small real servers.

Each section is owned by the area it serves; keep helpers here, not in test_*.py files.
"""

from __future__ import annotations

import copy
import os
import subprocess
from pathlib import Path
from typing import Any

import tomli_w

# --- processes (lifecycle tests, issue 13) ----------------------------------------------


def child_pids(pid: int) -> list[int]:
    """The direct children of process `pid` (its runner processes, for a segfuncd)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


# --- config files (reload tests, issue 13) ----------------------------------------------


def save_config(path: Path, config: dict[str, Any]) -> None:
    """Write `config` as TOML to `path` the way an editor saves: a temp file, then a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(tomli_w.dumps(config), encoding="utf-8")
    os.replace(tmp, path)


def with_changes(config: dict[str, Any], **sections: dict[str, Any]) -> dict[str, Any]:
    """A copy of `config` with each named section updated (`retry={"base_delay_s": 1}`)."""
    out = copy.deepcopy(config)
    for name, values in sections.items():
        out.setdefault(name, {}).update(values)
    return out


# --- functions (issue 13) -------------------------------------------------------------------


def functions_of(registry: Any, *, disabled: str | None = None) -> Any:
    """A plugin registry seen through segfuncd.functions.Functions, with `disabled` off in the config."""
    from segfuncd.config import Config, FunctionConfig
    from segfuncd.functions import Functions

    tables = {disabled: FunctionConfig(enabled=False)} if disabled else {}
    return Functions(registry, lambda: Config(functions=tables))


# --- following output (logs -f tests) -------------------------------------------------------


def until_a_line_arrives(stream: Any, write: Any, *, attempts: int = 10, wait_s: float = 2.0) -> tuple[str, Any]:
    """Call `write(i)` until `stream` yields a non-empty line; (that line, a queue.Queue of the next ones).

    A follower started with `-n 0` prints only what is written after its request reached
    the daemon, and nothing says when that was (a loaded machine can take seconds to start
    segfuncctl): so write again until something arrives, a bounded number of times.
    """
    import queue
    import threading

    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            if line.strip():
                lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    for i in range(attempts):
        write(i)
        try:
            return lines.get(timeout=wait_s), lines
        except queue.Empty:
            continue
    raise AssertionError(f"no line arrived after {attempts} writes")
