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
from typing import Any

from segfuncd.config import FilterConfig
from segfuncd.errors import ConfigError
from segfuncd.fql import FQLSyntaxError, Predicate, compile_condition, json_text, parse_path

DROPPED = "dropped"
SAMPLED_OUT = "sampled_out"
FILTER_ERROR = "filter_error"

ACTIONS = ("sample", "drop", "drop_properties", "allow_properties")  # also the application order
_BELOW_ONE = math.nextafter(1.0, 0.0)
Rng = Callable[[], float]
_Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FilterDecision:
    """What the chain did: `event` is None when filtered out, and `reason` says why."""

    event: dict[str, Any] | None
    reason: str | None  # None | "dropped" | "sampled_out" | "filter_error"


@dataclass(frozen=True, slots=True)
class _Step:
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
                        return FilterDecision(None, SAMPLED_OUT)
                elif action == "drop":
                    return FilterDecision(None, DROPPED)
                else:
                    keep = action == "allow_properties"
                    for path, keys in step.fields:
                        current = _rewrite(current, path, keys, keep)
            except Exception:  # noqa: BLE001 - fail closed on any event we cannot evaluate
                return FilterDecision(None, FILTER_ERROR)
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
    steps: list[_Step] = []
    for index, f in enumerate(filters):
        key = f"functions.{function}.filters[{index}]"

        def fail(message: str, field: str) -> ConfigError:
            return ConfigError(f"function {function!r}, filter {index}: {message}", path=source, key=f"{key}.{field}")

        if f.action not in ACTIONS:
            raise fail(f"unknown action {f.action!r}; expected one of {', '.join(ACTIONS)}", "action")
        when: Predicate | None = None
        if f.if_ != "all":
            try:
                when = compile_condition(f.if_)
            except FQLSyntaxError as exc:
                raise fail(f"invalid FQL at column {exc.column}: {exc.message}: {f.if_!r}", "if") from exc
        percent, sample_path = f.percent, None
        if f.action == "sample":
            if not 0.0 <= percent <= 1.0:
                raise fail(f"must be between 0 and 1, got {percent!r}", "percent")
            if f.path:
                sample_path = _field_path(f.path, fail, "path")
        elif percent != 1.0 or f.path:
            raise fail("only a 'sample' filter takes percent and path", "percent" if percent != 1.0 else "path")
        fields: list[tuple[_Path, frozenset[str]]] = []
        if f.action in ("drop_properties", "allow_properties"):
            if not f.fields:
                raise fail(f"{f.action} needs fields, e.g. fields = {{ properties = [\"email\"] }}", "fields")
            for obj_path, keys in f.fields.items():
                fields.append((_field_path(obj_path, fail, "fields") if obj_path else (), frozenset(keys)))
        elif f.fields:
            raise fail("only drop_properties and allow_properties take fields", "fields")
        steps.append(_Step(f.action, when, percent, sample_path, tuple(fields)))
    steps.sort(key=lambda s: ACTIONS.index(s.action))  # stable: config order within an action
    return FilterChain(function, tuple(steps), rng)


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

    The digest's first 64 bits are the significand of a number in [0, 1); leading zero bits
    are refilled from the next 64 bits and the last bit is set, as in
    http://mumble.net/~campbell/tmp/random_real.c (what segmentio/sampler implements), so the
    spread is uniform down to tiny values. A missing value hashes as JSON null.
    """
    digest = hashlib.md5(json_text(value).encode("utf-8", "surrogatepass"), usedforsecurity=False).digest()
    significand = int.from_bytes(digest[:8], "big")
    exponent = -64
    zeros = 64 - significand.bit_length()
    if zeros:
        exponent -= zeros
        refill = int.from_bytes(digest[8:], "big") >> (64 - zeros)
        significand = ((significand << zeros) | refill) & (2**64 - 1)
    significand |= 1
    # float() rounds 64 bits to 53 and may round up to exactly 1.0; keep the range half-open.
    return min(math.ldexp(float(significand), exponent), _BELOW_ONE)


# ---------------------------------------------------------------- drop / allow properties


def _rewrite(value: Any, path: _Path, keys: frozenset[str], keep: bool) -> Any:
    """Copy-on-write: return `value` itself when nothing under `path` changes."""
    if value.__class__ is list:
        out = [_rewrite(item, path, keys, keep) for item in value]
        return value if all(a is b for a, b in zip(out, value)) else out
    if value.__class__ is not dict:
        return value
    if not path:
        if keep:
            if value.keys() <= keys:
                return value
            return {k: v for k, v in value.items() if k in keys}
        if keys.isdisjoint(value):
            return value
        return {k: v for k, v in value.items() if k not in keys}
    head = path[0]
    if head not in value:
        return value
    child = _rewrite(value[head], path[1:], keys, keep)
    if child is value[head]:
        return value
    copy = dict(value)
    copy[head] = child
    return copy
