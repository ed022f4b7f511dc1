"""Destination filters: order, sampling, property drop/allow, fail-closed, config errors."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from segfuncd.config import FilterConfig
from segfuncd.errors import ConfigError
from segfuncd.filters import (
    DROPPED,
    FILTER_ERROR,
    SAMPLED_OUT,
    FilterChain,
    FilterDecision,
    compile_filters,
    sample_point,
)


def chain(*filters: FilterConfig, rng: Any = random.random) -> FilterChain:
    return compile_filters("clicks", tuple(filters), rng=rng)


def track(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "track",
        "event": "Order Completed",
        "userId": "u-1",
        "context": {"ip": "10.0.0.1", "traits": {"email": "a@b.c", "name": "Kim"}},
        "properties": {
            "email": "a@b.c",
            "total": 30,
            "products": [
                {"sku": "x", "price": 10, "name": "X", "meta": {"cost": 3, "tag": "t"}},
                {"sku": "y", "price": 20, "name": "Y", "meta": {"cost": 4}},
                "not-an-object",
            ],
        },
    }
    event.update(overrides)
    return event


class TestDrop:
    def test_matching_event_is_dropped(self) -> None:
        decision = chain(FilterConfig(if_="event = 'Order Completed'", action="drop")).apply(track())
        assert decision == FilterDecision(None, DROPPED)

    def test_non_matching_event_passes_unchanged_and_uncopied(self) -> None:
        event = track()
        decision = chain(FilterConfig(if_="event = 'Signed Up'", action="drop")).apply(event)
        assert decision.event is event and decision.reason is None

    def test_if_all_drops_everything(self) -> None:
        assert chain(FilterConfig(if_="all", action="drop")).apply(track()).reason == DROPPED

    def test_empty_chain_passes_everything(self) -> None:
        event = track()
        assert chain().apply(event) == FilterDecision(event, None)

    def test_only_send_is_a_drop_of_the_negation(self) -> None:
        only = chain(FilterConfig(if_="!( event in ['Signed Up', 'Order Completed'] )", action="drop"))
        assert only.apply(track()).event is not None
        assert only.apply(track(event="Page Viewed")).reason == DROPPED


class TestDropProperties:
    def test_top_level_and_nested(self) -> None:
        event = track()
        before = copy.deepcopy(event)
        f = FilterConfig(action="drop_properties", fields={"": ("userId",), "context.traits": ("email",)})
        out = chain(f).apply(event).event
        assert out is not None
        assert "userId" not in out and out["context"]["traits"] == {"name": "Kim"}
        assert out["properties"] is event["properties"]  # untouched sub-trees are shared, not copied
        assert event == before  # the input is never mutated

    def test_array_of_objects_applies_to_every_element(self) -> None:
        event = track()
        before = copy.deepcopy(event)
        f = FilterConfig(action="drop_properties", fields={"properties.products": ("price",)})
        out = chain(f).apply(event).event
        assert out is not None
        assert out["properties"]["products"] == [
            {"sku": "x", "name": "X", "meta": {"cost": 3, "tag": "t"}},
            {"sku": "y", "name": "Y", "meta": {"cost": 4}},
            "not-an-object",
        ]
        assert event == before

    def test_path_through_an_array(self) -> None:
        f = FilterConfig(action="drop_properties", fields={"properties.products.meta": ("cost",)})
        out = chain(f).apply(track()).event
        assert out is not None
        assert [p["meta"] for p in out["properties"]["products"][:2]] == [{"tag": "t"}, {}]

    def test_missing_path_or_key_returns_the_same_event(self) -> None:
        event = track()
        f = FilterConfig(action="drop_properties", fields={"traits": ("email",), "properties": ("nope",)})
        assert chain(f).apply(event).event is event

    def test_escaped_dot_in_field_path(self) -> None:
        event = {"properties": {"a.b": {"secret": 1, "ok": 2}}}
        f = FilterConfig(action="drop_properties", fields={"properties.a\\.b": ("secret",)})
        assert chain(f).apply(event).event == {"properties": {"a.b": {"ok": 2}}}

    def test_only_when_condition_matches(self) -> None:
        f = FilterConfig(if_="type = 'identify'", action="drop_properties", fields={"properties": ("email",)})
        event = track()
        assert chain(f).apply(event).event is event


class TestAllowProperties:
    def test_keeps_only_listed_keys(self) -> None:
        f = FilterConfig(action="allow_properties", fields={"properties": ("total",), "context.traits": ("name",)})
        out = chain(f).apply(track()).event
        assert out is not None
        assert out["properties"] == {"total": 30}
        assert out["context"] == {"ip": "10.0.0.1", "traits": {"name": "Kim"}}
        assert out["event"] == "Order Completed"

    def test_on_array_elements(self) -> None:
        event = track()
        before = copy.deepcopy(event)
        f = FilterConfig(action="allow_properties", fields={"properties.products": ("sku",)})
        out = chain(f).apply(event).event
        assert out is not None
        assert out["properties"]["products"] == [{"sku": "x"}, {"sku": "y"}, "not-an-object"]
        assert event == before

    def test_top_level(self) -> None:
        f = FilterConfig(action="allow_properties", fields={"": ("type", "event")})
        assert chain(f).apply(track()).event == {"type": "track", "event": "Order Completed"}

    def test_nothing_to_remove_returns_the_same_event(self) -> None:
        event = {"properties": {"total": 1}}
        f = FilterConfig(action="allow_properties", fields={"properties": ("total", "other")})
        assert chain(f).apply(event).event is event


class TestSampling:
    def test_deterministic_same_user_same_decision(self) -> None:
        f = chain(FilterConfig(action="sample", percent=0.5, path="userId"))
        for i in range(200):
            decisions = {f.apply(track(userId=f"user-{i}", event=f"E{j}")).reason for j in range(5)}
            assert len(decisions) == 1  # every event of one user: all in or all out

    def test_deterministic_decision_does_not_depend_on_rng(self) -> None:
        def boom() -> float:
            raise AssertionError("rng must not be used with a path")

        a = chain(FilterConfig(action="sample", percent=0.3, path="userId"), rng=boom)
        b = chain(FilterConfig(action="sample", percent=0.3, path="userId"))
        ids = [f"id{i}" for i in range(300)]
        assert [a.apply(track(userId=u)).reason for u in ids] == [b.apply(track(userId=u)).reason for u in ids]

    @pytest.mark.parametrize("percent", [0.1, 0.25, 0.5, 0.9])
    def test_deterministic_percent_on_10000_ids(self, percent: float) -> None:
        f = chain(FilterConfig(action="sample", percent=percent, path="userId"))
        kept = sum(f.apply(track(userId=f"user-{i}")).event is not None for i in range(10_000))
        assert abs(kept / 10_000 - percent) < 0.02  # ~4.5 sigma at p=0.5

    def test_random_percent_with_seeded_rng(self) -> None:
        f = chain(FilterConfig(action="sample", percent=0.2), rng=random.Random(7).random)
        kept = sum(f.apply(track()).event is not None for _ in range(10_000))
        assert abs(kept / 10_000 - 0.2) < 0.02

    def test_sampled_out_reason(self) -> None:
        f = chain(FilterConfig(action="sample", percent=0.5), rng=lambda: 0.9)
        assert f.apply(track()) == FilterDecision(None, SAMPLED_OUT)
        f = chain(FilterConfig(action="sample", percent=0.5), rng=lambda: 0.1)
        assert f.apply(track()).reason is None

    def test_zero_and_one(self) -> None:
        assert chain(FilterConfig(action="sample", percent=0.0)).apply(track()).reason == SAMPLED_OUT
        assert chain(FilterConfig(action="sample", percent=1.0)).apply(track()).reason is None

    def test_only_matching_events_are_sampled(self) -> None:
        f = chain(FilterConfig(if_="event = 'Page Viewed'", action="sample", percent=0.0))
        assert f.apply(track()).reason is None
        assert f.apply(track(event="Page Viewed")).reason == SAMPLED_OUT

    def test_sample_point_is_uniform_in_unit_interval(self) -> None:
        points = [sample_point(f"u{i}") for i in range(10_000)]
        assert all(0.0 <= p < 1.0 for p in points)
        for lo in (0.0, 0.25, 0.5, 0.75):
            share = sum(lo <= p < lo + 0.25 for p in points) / len(points)
            assert abs(share - 0.25) < 0.02

    def test_sample_point_hashes_json_of_the_value(self) -> None:
        assert sample_point("42") != sample_point(42)
        assert sample_point(2.0) == sample_point(2)  # JavaScript has one number type
        assert sample_point(None) == sample_point(None)


class TestOrder:
    def test_sample_then_drop_then_drop_properties_then_allow_properties(self) -> None:
        """Config order does not matter: Segment applies sample, drop, drop props, allow props."""
        calls: list[float] = []

        def rng() -> float:
            calls.append(0.0)
            return 0.0

        filters = (
            FilterConfig(action="allow_properties", fields={"properties": ("email", "total")}),
            FilterConfig(if_="properties.email = null", action="drop"),  # sees the event before drop_properties
            FilterConfig(action="drop_properties", fields={"properties": ("email",)}),
            FilterConfig(action="sample", percent=0.5),
        )
        out = chain(*filters, rng=rng).apply(track())
        assert calls == [0.0]
        assert out.event is not None and out.event["properties"] == {"total": 30}

    def test_drop_before_properties_even_if_listed_later(self) -> None:
        filters = (
            FilterConfig(action="drop_properties", fields={"": ("event",)}),
            FilterConfig(if_="event = 'Order Completed'", action="drop"),
        )
        assert chain(*filters).apply(track()).reason == DROPPED

    def test_later_conditions_see_earlier_property_changes(self) -> None:
        filters = (
            FilterConfig(action="drop_properties", fields={"properties": ("email",)}),
            FilterConfig(if_="properties.email = null", action="allow_properties", fields={"properties": ("total",)}),
        )
        out = chain(*filters).apply(track()).event
        assert out is not None and out["properties"] == {"total": 30}

    def test_sampled_out_event_is_not_dropped_again(self) -> None:
        filters = (FilterConfig(action="drop"), FilterConfig(action="sample", percent=0.0))
        assert chain(*filters).apply(track()).reason == SAMPLED_OUT


class TestFailClosed:
    def test_evaluation_error_drops_with_filter_error(self) -> None:
        f = chain(FilterConfig(if_="length(properties) > 3", action="drop"))
        assert f.apply(track()) == FilterDecision(None, FILTER_ERROR)

    def test_even_a_drop_properties_filter_fails_closed(self) -> None:
        f = chain(FilterConfig(if_="number(event) > 1", action="drop_properties", fields={"": ("userId",)}))
        assert f.apply(track()).reason == FILTER_ERROR

    def test_error_only_for_events_that_trigger_it(self) -> None:
        f = chain(FilterConfig(if_="length(properties.x) > 100", action="drop"))
        assert f.apply(track(properties={"x": "short"})).reason is None
        assert f.apply(track(properties={"x": {"an": "object"}})).reason == FILTER_ERROR

    def test_non_json_value_fails_closed(self) -> None:
        """Events are JSON, but a non-JSON value reaching a generic comparison still drops."""
        f = chain(FilterConfig(if_="properties.x = properties.y", action="drop"))
        assert f.apply(track(properties={"x": {1, 2}, "y": 1})).reason == FILTER_ERROR


class TestCompileErrors:
    def test_bad_fql_names_function_index_and_column(self) -> None:
        with pytest.raises(ConfigError) as info:
            compile_filters("clicks", (FilterConfig(action="drop"), FilterConfig(if_="event = 'x' and", action="drop")))
        err = info.value
        assert err.key == "functions.clicks.filters[1].if"
        assert err.path == "segfuncd.toml"
        assert "column 16" in str(err) and "'clicks'" in str(err) and "filter 1" in str(err)

    def test_source_is_the_config_file(self) -> None:
        with pytest.raises(ConfigError, match=r"^/etc/segfuncd\.toml: functions\.f\.filters\[0\]\.if: "):
            compile_filters("f", (FilterConfig(if_="(", action="drop"),), source="/etc/segfuncd.toml")

    @pytest.mark.parametrize(
        ("config", "key", "fragment"),
        [
            (FilterConfig(action="explode"), "action", "unknown action 'explode'"),
            (FilterConfig(action="sample", percent=1.5), "percent", "between 0 and 1"),
            (FilterConfig(action="sample", percent=-0.1), "percent", "between 0 and 1"),
            (FilterConfig(action="sample", percent=0.5, path="a..b"), "path", "invalid path 'a..b' at column 3"),
            (FilterConfig(action="drop", percent=0.5), "percent", "only a 'sample' filter"),
            (FilterConfig(action="drop", path="userId"), "path", "only a 'sample' filter"),
            (FilterConfig(action="drop_properties"), "fields", "needs fields"),
            (FilterConfig(action="allow_properties"), "fields", "needs fields"),
            (FilterConfig(action="drop", fields={"properties": ("a",)}), "fields", "only drop_properties"),
            (FilterConfig(action="drop_properties", fields={"a b": ("x",)}), "fields", "invalid path 'a b'"),
            (FilterConfig(if_="", action="drop"), "if", "empty expression"),
            (FilterConfig(if_="lowercase(event)", action="drop"), "if", "needs a condition"),
        ],
    )
    def test_invalid_filter_config(self, config: FilterConfig, key: str, fragment: str) -> None:
        with pytest.raises(ConfigError) as info:
            compile_filters("fn", (config,))
        assert info.value.key == f"functions.fn.filters[0].{key}"
        assert fragment in str(info.value)


class TestFromToml:
    def test_config_file_filters_compile_and_apply(self, tmp_path: Any) -> None:
        """The TOML shape operators write (config.example.toml) reaches compile_filters intact."""
        import tomllib
        from pathlib import Path

        from segfuncd.config import parse_config

        text = """
[functions.example]
[[functions.example.filters]]
if = "type = 'track' and event = 'Order Completed'"
action = "drop"

[[functions.example.filters]]
if = "all"
action = "drop_properties"
fields = { "context" = ["ip"], "properties" = ["email"], "" = ["userId"] }

[[functions.example.filters]]
action = "sample"
percent = 0.5
path = "userId"
"""
        config = parse_config(tomllib.loads(text), source="segfuncd.toml", base_dir=Path(tmp_path))
        fc = compile_filters("example", config.functions["example"].filters)
        assert fc.apply(track()).reason == DROPPED
        kept = [fc.apply(track(event="Signed Up", userId=f"u{i}")) for i in range(200)]
        out = next(d.event for d in kept if d.event is not None)
        assert "userId" not in out and "ip" not in out["context"] and "email" not in out["properties"]
        assert any(d.reason == SAMPLED_OUT for d in kept)


def test_larger_samples_contain_smaller_ones() -> None:
    """A user in a 30% sample is also in the 60% one (the point is fixed, the bar moves)."""
    ids = [f"user-{i}" for i in range(2_000)]
    chains = {p: chain(FilterConfig(action="sample", percent=p, path="userId")) for p in (0.1, 0.3, 0.6)}
    kept = {p: {u for u in ids if c.apply(track(userId=u)).event is not None} for p, c in chains.items()}
    assert kept[0.1] <= kept[0.3] <= kept[0.6]
