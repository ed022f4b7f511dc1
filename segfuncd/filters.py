"""Destination filters: sample, drop, drop_properties, allow_properties; pure.

Rules (https://segment.com/docs/connections/destinations/destination-filters/):

- Filters run in Segment's order whatever their order in the config: every `sample`, then
  every `drop`, then `drop_properties`, then `allow_properties`; within one action, in config
  order. Each filter's `if` sees the event as the filters before it left it.
- `if = "all"` matches every event; otherwise it is an FQL condition (segfuncd.fql).
- `sample` keeps a matching event with probability `percent` (0-1). With `path`, the decision
  is deterministic: MD5 of the JSON of the value at `path`, mapped to [0, 1) the way
  segmentio/sampler does, is compared with `percent`, so one user is always in or always out.
- `fields` maps an object path (`""` = the event itself) to keys; a list met on the way (or at
  the end) applies the rule to each of its objects.
- A filter that cannot be evaluated on an event drops the event (fail closed), reason
  "filter_error": letting it through could leak what the filter was written to hold back.
- The input event is never mutated; a copy (sharing untouched sub-trees) is returned only
  when properties change.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from segfuncd.config import FilterConfig
from segfuncd.errors import ConfigError
from segfuncd.fql import FQLSyntaxError, Predicate, compile_condition, json_text, parse_path

DROPPED = "dropped"
SAMPLED_OUT = "sampled_out"
FILTER_ERROR = "filter_error"

ACTIONS = ("sample", "drop", "drop_properties", "allow_properties")  # also the application order
_BELOW_ONE = math.nextafter(1.0, 0.0)
_TWO_128 = 2**128
Rng = Callable[[], float]
_Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FilterDecision:
    """What the chain did: `event` is None when filtered out, and `reason` says why."""

    event: dict[str, Any] | None
    reason: str | None  # None | "dropped" | "sampled_out" | "filter_error"


_OUT_DROPPED = FilterDecision(None, DROPPED)  # shared: decisions without an event are all alike
_OUT_SAMPLED = FilterDecision(None, SAMPLED_OUT)
_OUT_ERROR = FilterDecision(None, FILTER_ERROR)


@dataclass(frozen=True, slots=True)
class _Step:
    """One validated filter: its action, its compiled `if`, and that action's parameters."""

    action: str
    when: Predicate | None  # None: `if = "all"`
    percent: float = 1.0
    sample_path: _Path | None = None
    fields: tuple[tuple[_Path, frozenset[str]], ...] = ()


@dataclass(frozen=True, slots=True)
class FilterChain:
    """A function's compiled filters; `apply` runs on every delivery."""

    function: str
    steps: tuple[_Step, ...]
    rng: Rng = random.random

    def apply(self, event: dict[str, Any]) -> FilterDecision:
        """Run the filters over `event`; never mutates it."""
        current = event
        for step in self.steps:
            try:
                if step.when is not None and not step.when(current):
                    continue
                action = step.action
                if action == "sample":
                    if not _keep_sample(step, current, self.rng):
                        return _OUT_SAMPLED
                elif action == "drop":
                    return _OUT_DROPPED
                else:
                    keep = action == "allow_properties"
                    for path, keys in step.fields:
                        current = _rewrite(current, path, keys, keep)
            except Exception:  # noqa: BLE001 - fail closed on any event we cannot evaluate
                return _OUT_ERROR
        return FilterDecision(current, None)


def compile_filters(
    function: str,
    filters: tuple[FilterConfig, ...],
    *,
    source: str = "segfuncd.toml",
    rng: Rng = random.random,
) -> FilterChain:
    """Validate and compile a function's `[[functions.NAME.filters]]`; raises ConfigError.

    `rng` returns floats in [0, 1) for non-deterministic sampling (pass a seeded one in tests).
    """
    steps = [_compile_step(function, index, f, source) for index, f in enumerate(filters)]
    steps.sort(key=lambda s: ACTIONS.index(s.action))  # stable: config order within an action
    return FilterChain(function, tuple(steps), rng)


def _compile_step(function: str, index: int, f: FilterConfig, source: str) -> _Step:
    def fail(message: str, field: str) -> ConfigError:
        key = f"functions.{function}.filters[{index}].{field}"
        return ConfigError(f"function {function!r}, filter {index}: {message}", path=source, key=key)

    if f.action not in ACTIONS:
        raise fail(f"unknown action {f.action!r}; expected one of {', '.join(ACTIONS)}", "action")
    when: Predicate | None = None
    if f.if_ != "all":
        try:
            when = compile_condition(f.if_)
        except FQLSyntaxError as exc:
            raise fail(f"invalid FQL at column {exc.column}: {exc.message}: {f.if_!r}", "if") from exc
    sample_path: _Path | None = None
    if f.action == "sample":
        if not 0.0 <= f.percent <= 1.0:
            raise fail(f"must be between 0 and 1, got {f.percent!r}", "percent")
        if f.path:
            sample_path = _field_path(f.path, fail, "path")
    elif f.percent != 1.0 or f.path:
        raise fail("only a 'sample' filter takes percent and path", "percent" if f.percent != 1.0 else "path")
    fields: list[tuple[_Path, frozenset[str]]] = []
    if f.action in ("drop_properties", "allow_properties"):
        if not f.fields:
            raise fail(f'{f.action} needs fields, e.g. fields = {{ properties = ["email"] }}', "fields")
        for obj_path, keys in f.fields.items():
            fields.append((_field_path(obj_path, fail, "fields") if obj_path else (), frozenset(keys)))
    elif f.fields:
        raise fail("only drop_properties and allow_properties take fields", "fields")
    return _Step(f.action, when, f.percent, sample_path, tuple(fields))


def _field_path(text: str, fail: Callable[[str, str], ConfigError], field: str) -> _Path:
    try:
        return parse_path(text)
    except FQLSyntaxError as exc:
        raise fail(f"invalid path {text!r} at column {exc.column}: {exc.message}", field) from exc


# ---------------------------------------------------------------- sampling


def _keep_sample(step: _Step, event: Mapping[str, Any], rng: Rng) -> bool:
    if step.percent >= 1.0:
        return True
    if step.percent <= 0.0:
        return False
    if step.sample_path is None:
        return rng() < step.percent
    return sample_point(_get(event, step.sample_path)) < step.percent


def _get(event: Mapping[str, Any], path: _Path) -> Any:
    value: Any = event
    for seg in path:
        value = value.get(seg) if value.__class__ is dict else None
    return value


def sample_point(value: Any) -> float:
    """Map a JSON value to [0, 1) via MD5, uniformly and deterministically.

    The 128-bit digest, read as a binary fraction and rounded to a double, is what
    http://mumble.net/~campbell/tmp/random_real.c (segmentio/sampler's method) computes, up
    to the last bit; a value is in a p-sample iff its point is < p, so a 30% sample is a
    subset of a 60% one. A missing value hashes as JSON null.
    """
    text = encode_basestring(value) if value.__class__ is str else json_text(value)  # fast path: ids
    digest = hashlib.md5(text.encode("utf-8", "surrogatepass"), usedforsecurity=False).digest()
    # Division of ints is correctly rounded, and may round up to exactly 1.0: keep [0, 1).
    return min(int.from_bytes(digest, "big") / _TWO_128, _BELOW_ONE)


# ---------------------------------------------------------------- drop / allow properties


def _rewrite(value: Any, path: _Path, keys: frozenset[str], keep: bool) -> Any:
    """Copy-on-write: return `value` itself when nothing under `path` changes."""
    if value.__class__ is list:
        out = [_rewrite(item, path, keys, keep) for item in value]
        return value if all(a is b for a, b in zip(out, value, strict=True)) else out
    if value.__class__ is not dict:
        return value
    if not path:
        if keep:
            if value.keys() <= keys:
                return value
            return {k: v for k, v in value.items() if k in keys}
        if keys.isdisjoint(value):
            return value
        copy = value.copy()
        for k in keys:
            copy.pop(k, None)
        return copy
    head = path[0]
    if head not in value:
        return value
    child = _rewrite(value[head], path[1:], keys, keep)
    if child is value[head]:
        return value
    copy = dict(value)
    copy[head] = child
    return copy
