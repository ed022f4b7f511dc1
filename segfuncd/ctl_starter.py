"""What `segfuncctl init` writes: a commented starter segfuncd.toml and an example plugin; pure.

Here: EXAMPLE_PLUGIN and `starter_config()`. Not here: the `init` command itself, which
refuses to overwrite files (`ctl.py`).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import tomli_w

from .config import Config

# One example, shipped as package data; the repository's plugins/example.js links to it.
EXAMPLE_PLUGIN = (resources.files("segfuncd") / "starter" / "example.js").read_text(encoding="utf-8")

_D = Config()  # the starter shows the built-in defaults, read from the one place they are set
# (section, comment above it, [(key, value, comment)]) — values are written by tomli-w.
_STARTER: list[tuple[str, str, list[tuple[str, Any, str]]]] = [
    (
        "intake",
        "Where events come in: the Segment HTTP Tracking API (/v1/track, /v1/batch, ...).",
        [
            ("listen", _D.intake.listen, 'TCP address; "" disables TCP'),
            ("write_keys", list(_D.intake.write_keys), "accepted write keys; empty: no auth (loopback clients only)"),
        ],
    ),
    (
        "admin",
        "segfuncctl talks to the daemon over this Unix socket (mode 0600).",
        [
            ("socket", _D.admin.socket, "relative paths are relative to this file's folder"),
        ],
    ),
    (
        "storage",
        "Every event is committed to SQLite before intake answers 200.",
        [
            ("path", _D.storage.path, ""),
        ],
    ),
    (
        "runtime",
        "Functions run in separate runner processes, with limits per invocation.",
        [
            ("plugins_dir", _D.runtime.plugins_dir, "one NAME.js per function; edits go live by themselves"),
            ("workers", _D.runtime.workers, "runner processes; 0: one per CPU"),
            ("timeout_ms", _D.runtime.timeout_ms, "wall-clock limit of one invocation"),
            ("cpu_ms", _D.runtime.cpu_ms, "CPU limit of one invocation"),
            ("memory_mb", _D.runtime.memory_mb, "per runner process"),
            (
                "egress_allow",
                [],
                'fetch may not reach loopback or metadata addresses; e.g. ["127.0.0.1:9000"] opens one',
            ),
        ],
    ),
    (
        "retry",
        "Failed deliveries are retried with backoff, then dead-lettered (segfuncctl replay).",
        [
            ("max_attempts", _D.retry.max_attempts, "first try + 9 retries over about 4 hours, as Segment does"),
            ("base_delay_s", _D.retry.base_delay_s, "doubling each time, with jitter"),
        ],
    ),
]


def starter_config() -> str:
    """A commented segfuncd.toml: the data written by tomli-w, the comments around it."""
    out = [
        "# segfuncd configuration, written by `segfuncctl init`. Every key is optional;",
        "# the values below are the defaults. Reference: the README's Configuration section.",
        "",
    ]
    for section, comment, keys in _STARTER:
        out += [f"# {comment}", f"[{section}]"]
        for key, value, note in keys:
            line = tomli_w.dumps({key: value}).strip()
            out.append(f"{line}  # {note}" if note else line)
        out.append("")
    out += [
        "# One table per plugin file: plugins/example.js is [functions.example].",
        "# settings is the handler's `settings` argument; the values of apiKey and of the",
        "# settings named in secret_settings are redacted from logs.",
        tomli_w.dumps(
            {
                "functions": {
                    "example": {
                        "enabled": True,
                        "settings": {"apiKey": "replace-me", "endpoint": ""},
                        "secret_settings": [],
                    }
                }
            }
        ).strip(),
        "",
    ]
    return "\n".join(out)
