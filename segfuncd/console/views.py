"""Pure shaping for the console's pages: time ranges, chart inputs, small formatters.

Plain functions over the admin's JSON and the store's timeline buckets; no trio, no I/O.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..store.timeline import MinuteBucket
from .charts import Axis, Series, lines, stacked_bars

DELIVERY_SERIES = (
    Series(key="delivered", label="delivered", colour="#2f9e62"),
    Series(key="retried", label="retried", colour="#e3a21a"),
    Series(key="dead", label="dead", colour="#d64545"),
)
SUCCESS_SERIES = (Series(key="success", label="success rate", colour="#2f7fd6"),)
LATENCY_SERIES = (
    Series(key="mean", label="mean", colour="#2f7fd6"),
    Series(key="max", label="max", colour="#9b59b6"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Range:
    """A chart's time range: `count` buckets of `step_minutes` ending with the current one."""

    key: str
    label: str
    step_minutes: int
    count: int

    def axis(self, now: float) -> Axis:
        step_s = self.step_minutes * 60
        end = math.floor(now / step_s) * step_s + step_s  # the current bucket is the last one
        return Axis(start=end - self.count * step_s, step_s=step_s, count=self.count)


RANGES = {
    "1h": Range(key="1h", label="last hour", step_minutes=1, count=60),
    "24h": Range(key="24h", label="last 24 hours", step_minutes=15, count=96),
}


def pick_range(raw: str | None) -> Range:
    return RANGES.get(raw or "", RANGES["1h"])


def by_function(buckets: Iterable[MinuteBucket]) -> dict[str, list[MinuteBucket]]:
    out: dict[str, list[MinuteBucket]] = {}
    for b in buckets:
        out.setdefault(b.function, []).append(b)
    return out


def _index(axis: Axis, buckets: Iterable[MinuteBucket]) -> dict[int, MinuteBucket]:
    out = {}
    for b in buckets:
        i = int(round((b.start - axis.start) / axis.step_s))
        if 0 <= i < axis.count:
            out[i] = b
    return out


def delivery_chart(name: str, axis: Axis, buckets: Iterable[MinuteBucket], *, width: int = 560) -> str:
    values = {
        i: {"delivered": b.delivered, "retried": b.retried, "dead": b.dead} for i, b in _index(axis, buckets).items()
    }
    return stacked_bars(
        values, axis=axis, series=DELIVERY_SERIES, label=f"{name}: delivered, retried and dead", width=width
    )


def success_chart(name: str, axis: Axis, buckets: Iterable[MinuteBucket], *, width: int = 400) -> str:
    values: dict[int, Mapping[str, float | None]] = {
        i: {"success": None if b.success_rate is None else 100 * b.success_rate}
        for i, b in _index(axis, buckets).items()
    }
    return lines(
        values, axis=axis, series=SUCCESS_SERIES, label=f"{name}: success rate", unit="%", fixed_top=100.0, width=width
    )


def latency_chart(name: str, axis: Axis, buckets: Iterable[MinuteBucket], *, width: int = 400) -> str:
    values: dict[int, Mapping[str, float | None]] = {
        i: {"mean": b.mean_ms, "max": b.duration_ms_max if b.attempts else None}
        for i, b in _index(axis, buckets).items()
    }
    return lines(values, axis=axis, series=LATENCY_SERIES, label=f"{name}: latency", unit=" ms", width=width)


def totals(buckets: Iterable[MinuteBucket]) -> dict[str, float]:
    out = {"delivered": 0.0, "retried": 0.0, "dead": 0.0, "attempts": 0.0}
    for b in buckets:
        out["delivered"] += b.delivered
        out["retried"] += b.retried
        out["dead"] += b.dead
        out["attempts"] += b.attempts
    return out


def ago(seconds: float | None) -> str:
    """`12 s`, `5 min`, `3 h`, `2 d` (rough, for tables)."""
    if seconds is None:
        return "-"
    s = max(0.0, seconds)
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    if s < 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def clock(ts: float | None) -> str:
    """`2024-05-01 12:03:04` UTC."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def ms(v: Any) -> str:
    if v is None:
        return "-"
    v = float(v)
    return f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str, ensure_ascii=False)


def first_line(text: Any) -> str:
    return str(text).strip().splitlines()[0] if text and str(text).strip() else ""


def log_view(rec: Mapping[str, Any]) -> dict[str, Any]:
    """One log record as the live log shows it (also the SSE payload), like `segfuncctl logs`."""
    fields = rec.get("fields") or {}
    daemon = rec.get("source") == "daemon"
    function = rec.get("function") or fields.get("function") or ""
    version = str(rec.get("version") or "")[:8]
    who = (
        ("segfuncd" + (f" · {function}" if function else ""))
        if daemon
        else f"{function}@{version}"
        if version
        else function
    )
    context = [str(rec["outcome"])] if rec.get("outcome") and not daemon else []
    context += [f"{k}={v}" for k, v in fields.items() if k not in ("function", "message_id")]
    return {
        "id": rec.get("id"),
        "time": clock(rec.get("time")),
        "level": rec.get("level") or "log",
        "who": who,
        "function": function,
        "message_id": rec.get("message_id") or fields.get("message_id") or "",
        "message": rec.get("message") or "",
        "context": " ".join(context),
    }
