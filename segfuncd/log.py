"""structlog setup: JSON lines to stderr for journald, console output on a TTY.

The daemon's own events also go to the bounded log table (so `segfuncctl logs` shows
loads, reload errors, runner restarts and dead letters beside the functions' output): a
processor hands each event to a `LogTap`, which the daemon drains into the store.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from collections.abc import MutableMapping
from typing import Any

import structlog

# Fields that are part of the envelope, not of the event's own data.
_ENVELOPE = frozenset({"event", "level", "timestamp", "logger"})


class LogTap:
    """A bounded buffer of daemon log events waiting to be written to the store.

    A deque, not a channel: structlog processors are synchronous and may run from worker
    threads; when the buffer is full the oldest entries go (the stderr copy is kept).
    """

    def __init__(self, maxlen: int = 10_000) -> None:
        self._items: deque[dict[str, Any]] = deque(maxlen=maxlen)

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        fields = {k: _plain(v) for k, v in event_dict.items() if k not in _ENVELOPE}
        self._items.append(
            {
                "time": time.time(),
                "level": event_dict.get("level", method_name),
                "message": str(event_dict.get("event", "")),
                "function": fields.pop("function", None),
                "version": fields.pop("version", None),
                "fields": fields,
            }
        )
        return event_dict

    def drain(self) -> list[dict[str, Any]]:
        """Take everything buffered so far."""
        out = list(self._items)
        self._items.clear()
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


_threshold = logging.DEBUG  # unconfigured structlog prints every level


def debug_enabled() -> bool:
    """Whether configure() let debug lines through: hot paths skip building them otherwise."""
    return _threshold <= logging.DEBUG


def configure(*, level: str = "info", tap: LogTap | None = None, json: bool | None = None) -> None:
    """Configure structlog once per process (JSON unless stderr is a TTY)."""
    global _threshold
    _threshold = logging.getLevelName(level.upper())
    if json is None:
        json = not sys.stderr.isatty()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if tap is not None:
        processors.append(tap)
    if json:
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(**bind: Any) -> Any:
    """A structlog logger bound to `bind`."""
    return structlog.get_logger(**bind)
