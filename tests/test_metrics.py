"""Latency windows, percentiles and the Prometheus text, with time passed in."""

from __future__ import annotations

import re

import pytest

from segfuncd.metrics import (
    N_BINS,
    Gauges,
    Metrics,
    Window,
    bin_of,
    bin_value,
    percentile,
    render_prometheus,
)
from segfuncd.outcomes import InvocationResult, Outcome

T0 = 1_800_000_000.0  # a minute boundary


def ok(ms: float) -> InvocationResult:
    return InvocationResult(outcome=Outcome.DELIVERED, duration_ms=ms)


def err(name: str, outcome: Outcome, ms: float = 5.0) -> InvocationResult:
    return InvocationResult(outcome=outcome, error_name=name, error_message="boom", duration_ms=ms)


class TestHistogram:
    def test_bins_are_monotonic_and_bounded(self) -> None:
        values = [0.0, 0.05, 0.1, 0.2, 1, 10, 100, 1_000, 10_000, 100_000, 10**9]
        bins = [bin_of(v) for v in values]
        assert bins == sorted(bins)
        assert bins[0] == 0 and bins[-1] == N_BINS - 1

    @pytest.mark.parametrize("ms", [0.5, 3.0, 42.0, 250.0, 1234.0, 9000.0])
    def test_a_bin_represents_its_values_within_ten_percent(self, ms: float) -> None:
        assert abs(bin_value(bin_of(ms)) - ms) / ms < 0.10

    def test_percentiles_of_a_known_distribution(self) -> None:
        hist = [0] * N_BINS
        for _ in range(99):
            hist[bin_of(10.0)] += 1
        hist[bin_of(2000.0)] += 1
        assert percentile(hist, 0.5) == pytest.approx(10.0, rel=0.1)
        assert percentile(hist, 0.99) == pytest.approx(10.0, rel=0.1)
        hist[bin_of(2000.0)] += 1  # now 2 of 101 are slow: p99 is slow
        assert percentile(hist, 0.99) == pytest.approx(2000.0, rel=0.1)

    def test_empty_histogram_has_no_percentile(self) -> None:
        assert percentile([0] * N_BINS, 0.5) is None


class TestWindow:
    def test_old_buckets_fall_out_of_the_window(self) -> None:
        w = Window(span_s=300, bucket_s=60)
        w.add(ms=1, ok=True, now=T0)
        assert w.summary(T0 + 300).count == 1  # 5 minutes later: still in (bucket edge)
        assert w.summary(T0 + 360).count == 0  # 6 minutes later: gone

    def test_a_reused_slot_starts_empty(self) -> None:
        w = Window(span_s=300, bucket_s=60)
        w.add(ms=1, ok=True, now=T0)
        w.add(ms=1, ok=False, now=T0 + 360)  # same ring slot, new bucket
        s = w.summary(T0 + 360)
        assert (s.count, s.delivered) == (1, 0)

    def test_span_must_be_a_multiple_of_the_bucket(self) -> None:
        with pytest.raises(ValueError):
            Window(span_s=100, bucket_s=60)


class TestMetrics:
    def test_success_rate_and_percentiles_per_window(self) -> None:
        m = Metrics()
        for i in range(9):
            m.record("teams", ok(20.0), T0 + i)
        m.record("teams", err("RetryError", Outcome.RETRY, 900.0), T0 + 10)
        m.record("teams", ok(20.0), T0 - 3600)  # an hour ago: only in the 24 h window
        f = m.snapshot(T0 + 20).functions["teams"]
        assert f.last_5m.count == 10 and f.last_5m.success_rate == pytest.approx(0.9)
        assert f.last_5m.p50_ms == pytest.approx(20.0, rel=0.1)
        assert f.last_5m.p99_ms == pytest.approx(900.0, rel=0.1)
        assert f.last_24h.count == 11 and f.last_24h.delivered == 10
        assert f.attempts == 11
        assert f.outcomes == {"delivered": 10, "retry": 1}
        assert f.last_error == "RetryError: boom" and f.last_error_at == T0 + 10

    def test_a_window_with_no_traffic_has_no_rate(self) -> None:
        m = Metrics()
        m.record("a", ok(1.0), T0)
        f = m.snapshot(T0 + 7200).functions["a"]
        assert f.last_5m.count == 0 and f.last_5m.success_rate is None and f.last_5m.p50_ms is None
        assert f.last_24h.count == 1

    def test_discards_are_counted_but_are_not_the_last_error(self) -> None:
        m = Metrics()
        m.record("a", err("ValidationError", Outcome.DISCARDED), T0)
        f = m.snapshot(T0).functions["a"]
        assert f.errors == {"ValidationError": 1} and f.last_error is None
        assert f.last_5m.count == 1 and f.last_5m.success_rate == 0.0

    def test_event_not_supported_stays_out_of_rate_and_latency(self) -> None:
        """A track-only function on a source that also sends identify is not 50% broken."""
        m = Metrics()
        m.record("a", ok(30.0), T0)
        m.record("a", err("EventNotSupported", Outcome.DISCARDED, 0.1), T0)
        f = m.snapshot(T0).functions["a"]
        assert f.last_5m.count == 1 and f.last_5m.success_rate == 1.0
        assert f.outcomes == {"delivered": 1, "discarded": 1} and f.attempts == 2

    def test_memory_is_bounded_by_buckets_not_events(self) -> None:
        m = Metrics()
        for i in range(20_000):
            m.record("a", ok(float(i % 500)), T0 + i * 10)  # ~55 hours of traffic
        rec = m._functions["a"]
        assert len(rec.w24h._ring) == 97 and len(rec.w5m._ring) == 6
        assert m.snapshot(T0 + 200_000).functions["a"].last_24h.count <= 86_400 // 10 + 90

    def test_function_names_are_bounded(self) -> None:
        m = Metrics(max_functions=2)
        for name in "abc":
            m.record(name, ok(1.0), T0)
        assert list(m.snapshot(T0).functions) == ["a", "b"]


class TestPrometheus:
    def render(self) -> str:
        m = Metrics()
        m.record('we"ird', ok(3.0), T0)
        m.record("teams", ok(3.0), T0)
        m.record("teams", err("TypeError", Outcome.FAILED, 40_000.0), T0)
        gauges = Gauges(
            pending=4,
            dead=1,
            oldest_pending_age_s=12.5,
            deliveries={("teams", "delivered"): 1, ("teams", "dead"): 1},
            intake_requests={"200": 10, "400": 2},
            runners_alive=2,
            runner_restarts=3,
            functions_live={"teams": True},
        )
        return render_prometheus(m.snapshot(T0), gauges)

    def test_every_sample_line_is_well_formed(self) -> None:
        sample = re.compile(r'^[a-z_]+(\{([a-z_]+="([^"\\]|\\.)*",?)+\})? [-+0-9.eInf]+$')
        for line in self.render().splitlines():
            assert line.startswith("# ") or sample.match(line), line

    def test_counters_histograms_and_gauges_are_present(self) -> None:
        text = self.render()
        assert 'segfuncd_invocations_total{function="teams",outcome="failed"} 1' in text
        assert 'segfuncd_attempts_total{function="teams"} 2' in text
        assert 'segfuncd_invocation_duration_seconds_bucket{function="teams",le="0.005"} 1' in text
        assert 'segfuncd_invocation_duration_seconds_bucket{function="teams",le="30.0"} 1' in text
        assert 'segfuncd_invocation_duration_seconds_bucket{function="teams",le="+Inf"} 2' in text
        assert 'segfuncd_invocation_duration_seconds_count{function="teams"} 2' in text
        assert 'segfuncd_deliveries{function="teams",state="dead"} 1' in text
        assert 'segfuncd_intake_requests_total{status="400"} 2' in text
        assert "segfuncd_queue_pending 4" in text and "segfuncd_runner_restarts_total 3" in text
        assert 'function="we\\"ird"' in text

    def test_each_family_is_declared_once(self) -> None:
        types = [line.split()[2] for line in self.render().splitlines() if line.startswith("# TYPE")]
        assert len(types) == len(set(types))
