"""Delivery metrics: latency and success windows per function, and Prometheus text.

Pure: no I/O, no clock of its own (`now` is passed in), no trio. What lives here:

* `Metrics.record(function, result, now)`: the delivery path calls it once per invocation
  result (every attempt, so retries count). It feeds two windows per function, the last
  5 minutes and the last 24 hours, plus cumulative Prometheus counters and histograms.
* `Metrics.snapshot(now) -> MetricsSnapshot`: frozen data that `status`, `--json` and
  `/metrics` all render (one source of truth).
* `render_prometheus(...)`: the text exposition format (version 0.0.4) of a snapshot plus
  the gauges and counters other components own (queue depth, intake requests by status,
  runner restarts, deliveries by final state), handed in as plain mappings.

Memory is bounded whatever the traffic: a window is a ring of time buckets (60 s buckets
for 5 minutes, 15 min buckets for 24 hours), and each bucket is a fixed log-scale
histogram of `N_BINS` counters (4 bins per doubling, 0.1 ms to ~100 s, so a percentile is
within ~10% of the truth). A window's edge is a bucket boundary: "5 min" covers the last
5 to 6 minutes, "24 h" the last 24 h to 24 h 15 min.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .outcomes import InvocationResult, Outcome

# EventNotSupported means "this function does not handle this event" (often: no handler
# for its type). Counting it in the windows would make a track-only function look 50%
# broken on a source that also sends identify, and its ~0 ms would drag p50 down; it is
# still counted in the outcome and error counters.
NOT_RUN = frozenset({"EventNotSupported"})

# --- the log-scale histogram --------------------------------------------------------------

MIN_MS = 0.1
BINS_PER_DOUBLING = 4
N_BINS = 80  # 0.1 ms * 2**(80/4) ≈ 105 s; slower invocations land in the last bin
_STEP = 2 ** (1 / BINS_PER_DOUBLING)

# Prometheus histogram buckets (seconds): the client libraries' defaults, plus 30 s.
PROM_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def bin_of(ms: float) -> int:
    """The histogram bin of a latency in milliseconds."""
    if ms <= MIN_MS:
        return 0
    return min(N_BINS - 1, int(math.log(ms / MIN_MS, _STEP)) + 1)


def bin_value(i: int) -> float:
    """A representative latency (ms) for bin `i`: the geometric middle of its edges."""
    if i == 0:
        return MIN_MS
    lo = MIN_MS * _STEP ** (i - 1)
    return lo * math.sqrt(_STEP)


def percentile(hist: list[int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) of a histogram, in ms; None when it is empty."""
    total = sum(hist)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for i, n in enumerate(hist):
        seen += n
        if seen >= rank:
            return bin_value(i)
    return bin_value(len(hist) - 1)  # pragma: no cover - unreachable


# --- windows ------------------------------------------------------------------------------


class _Bucket:
    __slots__ = ("start", "count", "ok", "hist")

    def __init__(self, start: int) -> None:
        self.start = start
        self.count = 0
        self.ok = 0  # delivered
        self.hist = [0] * N_BINS


class Window:
    """Counts and a latency histogram over the last `span_s`, in buckets of `bucket_s`."""

    def __init__(self, *, span_s: int, bucket_s: int) -> None:
        if span_s % bucket_s:
            raise ValueError("span_s must be a multiple of bucket_s")
        self.span_s = span_s
        self.bucket_s = bucket_s
        self._n = span_s // bucket_s + 1  # the current, partly filled bucket too
        self._ring: list[_Bucket | None] = [None] * self._n

    def add(self, *, ms: float, ok: bool, now: float) -> None:
        b = self._bucket(now)
        if b is None:
            return  # older than what the ring still holds: it is outside the window anyway
        b.count += 1
        b.ok += ok
        b.hist[bin_of(ms)] += 1

    def _bucket(self, now: float) -> _Bucket | None:
        start = int(now // self.bucket_s) * self.bucket_s
        slot = (start // self.bucket_s) % self._n
        b = self._ring[slot]
        if b is not None and b.start > start:
            return None
        if b is None or b.start != start:
            b = self._ring[slot] = _Bucket(start)
        return b

    def summary(self, now: float) -> WindowSummary:
        oldest = int(now // self.bucket_s) * self.bucket_s - self.span_s
        count = ok = 0
        hist = [0] * N_BINS
        for b in self._ring:
            if b is None or b.start < oldest or b.start > now:
                continue
            count += b.count
            ok += b.ok
            for i, n in enumerate(b.hist):
                if n:
                    hist[i] += n
        return WindowSummary(
            span_s=self.span_s,
            count=count,
            delivered=ok,
            success_rate=(ok / count) if count else None,
            p50_ms=percentile(hist, 0.50),
            p99_ms=percentile(hist, 0.99),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowSummary:
    """One function over one window."""

    span_s: int  # 300 or 86400
    count: int  # invocations (attempts) that finished in the window
    delivered: int  # of which returned
    success_rate: float | None  # delivered / count; None with no invocations
    p50_ms: float | None  # None with no invocations
    p99_ms: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionMetrics:
    """Everything recorded for one function."""

    name: str
    last_5m: WindowSummary
    last_24h: WindowSummary
    attempts: int  # since the daemon started
    outcomes: Mapping[str, int]  # Outcome value -> attempts since start
    errors: Mapping[str, int]  # error class name -> attempts since start
    last_error: str | None  # "Name: message" of the newest failed attempt
    last_error_at: float | None
    histogram: tuple[int, ...]  # cumulative counts per PROM_BUCKETS_S bound, then +Inf
    latency_sum_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSnapshot:
    """All functions at `now`; what status and /metrics render."""

    now: float
    functions: Mapping[str, FunctionMetrics] = field(default_factory=dict)


class _FunctionRecord:
    __slots__ = ("w5m", "w24h", "outcomes", "errors", "last_error", "last_error_at", "prom", "sum_s")

    def __init__(self) -> None:
        self.w5m = Window(span_s=300, bucket_s=60)
        self.w24h = Window(span_s=86_400, bucket_s=900)
        self.outcomes: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.prom = [0] * (len(PROM_BUCKETS_S) + 1)  # non-cumulative; last is > max bound
        self.sum_s = 0.0


class Metrics:
    """Per-function delivery metrics; `record` from the delivery path, `snapshot` to read.

    Not thread-safe: call from the daemon's trio thread only.
    """

    def __init__(self, *, max_functions: int = 1_000) -> None:
        # A bound on names, so a stream of bogus function names cannot grow memory forever.
        self.max_functions = max_functions
        self._functions: dict[str, _FunctionRecord] = {}

    def record(self, function: str, result: InvocationResult, now: float) -> None:
        """Count one finished invocation of `function` that ended at `now`."""
        rec = self._functions.get(function)
        if rec is None:
            if len(self._functions) >= self.max_functions:
                return
            rec = self._functions[function] = _FunctionRecord()
        ms = max(0.0, float(result.duration_ms))
        ok = result.outcome is Outcome.DELIVERED
        if result.error_name not in NOT_RUN:
            rec.w5m.add(ms=ms, ok=ok, now=now)
            rec.w24h.add(ms=ms, ok=ok, now=now)
        key = result.outcome.value
        rec.outcomes[key] = rec.outcomes.get(key, 0) + 1
        if result.error_name is not None:
            rec.errors[result.error_name] = rec.errors.get(result.error_name, 0) + 1
            if result.outcome is not Outcome.DISCARDED:
                rec.last_error = result.error
                rec.last_error_at = now
        s = ms / 1000.0
        rec.sum_s += s
        for i, bound in enumerate(PROM_BUCKETS_S):
            if s <= bound:
                rec.prom[i] += 1
                break
        else:
            rec.prom[-1] += 1

    def snapshot(self, now: float) -> MetricsSnapshot:
        """Frozen metrics of every function at `now`."""
        out = {}
        for name, rec in sorted(self._functions.items()):
            cumulative, running = [], 0
            for n in rec.prom:
                running += n
                cumulative.append(running)
            out[name] = FunctionMetrics(
                name=name,
                last_5m=rec.w5m.summary(now),
                last_24h=rec.w24h.summary(now),
                attempts=sum(rec.outcomes.values()),
                outcomes=dict(rec.outcomes),
                errors=dict(rec.errors),
                last_error=rec.last_error,
                last_error_at=rec.last_error_at,
                histogram=tuple(cumulative),
                latency_sum_s=rec.sum_s,
            )
        return MetricsSnapshot(now=now, functions=out)


# --- Prometheus text ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Gauges:
    """What other components own, as plain data, for `render_prometheus`."""

    pending: int = 0
    leased: int = 0
    dead: int = 0
    oldest_pending_age_s: float = 0.0
    # (function, state) -> deliveries currently in that state in the store
    deliveries: Mapping[tuple[str, str], int] = field(default_factory=dict)
    intake_requests: Mapping[str, int] = field(default_factory=dict)  # HTTP status -> count
    intake_events: Mapping[str, int] = field(default_factory=dict)  # accepted/duplicate/rejected
    runners_alive: int = 0
    runner_restarts: int = 0
    functions_live: Mapping[str, bool] = field(default_factory=dict)
    uptime_s: float = 0.0


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_esc(str(v))}"' for k, v in labels.items()) + "}"


def _num(v: float) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str, samples: Iterable[tuple[str, Mapping[str, str], float]]) -> None:
        self.lines.append(f"# HELP {name} {help_}")
        self.lines.append(f"# TYPE {name} {kind}")
        for suffix, labels, value in samples:
            self.lines.append(f"{name}{suffix}{_labels(**labels)} {_num(value)}")


def render_prometheus(snapshot: MetricsSnapshot, gauges: Gauges) -> str:
    """The Prometheus text exposition (version 0.0.4) of a snapshot and the gauges."""
    w = _Writer()
    fns = snapshot.functions
    w.family(
        "segfuncd_invocations_total",
        "counter",
        "Function invocations (delivery attempts) by outcome since the daemon started.",
        (("", {"function": n, "outcome": o}, c) for n, f in fns.items() for o, c in sorted(f.outcomes.items())),
    )
    w.family(
        "segfuncd_attempts_total",
        "counter",
        "Delivery attempts per function since the daemon started.",
        (("", {"function": n}, f.attempts) for n, f in fns.items()),
    )
    w.family(
        "segfuncd_invocation_errors_total",
        "counter",
        "Failed invocations by thrown error class since the daemon started.",
        (("", {"function": n, "error": e}, c) for n, f in fns.items() for e, c in sorted(f.errors.items())),
    )
    w.family(
        "segfuncd_deliveries",
        "gauge",
        "Deliveries kept in the store, by function and state.",
        (("", {"function": fn, "state": st}, c) for (fn, st), c in sorted(gauges.deliveries.items())),
    )

    def hist_samples() -> Iterable[tuple[str, Mapping[str, str], float]]:
        for n, f in fns.items():
            for bound, c in zip(PROM_BUCKETS_S, f.histogram, strict=False):
                yield "_bucket", {"function": n, "le": _num(bound)}, c
            yield "_bucket", {"function": n, "le": "+Inf"}, f.histogram[-1]
            yield "_sum", {"function": n}, f.latency_sum_s
            yield "_count", {"function": n}, f.histogram[-1]

    w.family(
        "segfuncd_invocation_duration_seconds",
        "histogram",
        "Wall-clock duration of function invocations.",
        hist_samples(),
    )
    w.family(
        "segfuncd_queue_pending", "gauge", "Deliveries waiting to run (due or backing off).", [("", {}, gauges.pending)]
    )
    w.family("segfuncd_queue_leased", "gauge", "Deliveries being run right now.", [("", {}, gauges.leased)])
    w.family("segfuncd_queue_dead", "gauge", "Dead-lettered deliveries (replayable).", [("", {}, gauges.dead)])
    w.family(
        "segfuncd_queue_oldest_pending_age_seconds",
        "gauge",
        "Age of the oldest pending delivery.",
        [("", {}, gauges.oldest_pending_age_s)],
    )
    w.family(
        "segfuncd_intake_requests_total",
        "counter",
        "Intake HTTP requests by response status.",
        (("", {"status": str(s)}, c) for s, c in sorted(gauges.intake_requests.items(), key=lambda kv: str(kv[0]))),
    )
    w.family(
        "segfuncd_intake_events_total",
        "counter",
        "Events received at intake by result (accepted, duplicate, rejected).",
        (("", {"result": r}, c) for r, c in sorted(gauges.intake_events.items())),
    )
    w.family("segfuncd_runners_alive", "gauge", "Runner processes alive.", [("", {}, gauges.runners_alive)])
    w.family(
        "segfuncd_runner_restarts_total",
        "counter",
        "Runner processes restarted (crash or recycle).",
        [("", {}, gauges.runner_restarts)],
    )
    w.family(
        "segfuncd_function_live",
        "gauge",
        "1 when the function's current version is loaded and enabled.",
        (("", {"function": n}, int(live)) for n, live in sorted(gauges.functions_live.items())),
    )
    w.family("segfuncd_uptime_seconds", "gauge", "Seconds since the daemon started.", [("", {}, gauges.uptime_s)])
    return "\n".join(w.lines) + "\n"
