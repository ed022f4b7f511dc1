"""FQL values at run time: types, strict equality, the built-in functions, globs; pure.

Here: FQLEvalError, `type_of`, `strict_equal`, `json_text`, `glob_regex` and the private
helpers the generated code calls (`_in`, `_match`, `_path`, `_FUNCS`, ...). Not here: syntax
(`parser.py`) or code generation (`compiler.py`). Imports nothing from segfuncd.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from typing import Any


class FQLEvalError(Exception):
    """A valid FQL expression cannot be evaluated on this event (e.g. `length` of an object)."""


def type_of(value: Any) -> str:
    """FQL's name for a value's type; raises FQLEvalError for non-JSON values."""
    c = value.__class__
    if c is str:
        return "string"
    if c is bool:
        return "bool"
    if c is int or c is float:
        return "number"
    if value is None:
        return "null"
    if c is list or c is tuple:
        return "list"
    if c is dict:
        return "object"
    raise FQLEvalError(f"unsupported value of type {c.__name__}")


def strict_equal(a: Any, b: Any) -> bool:
    """FQL `=`: same type and equal; lists and objects compare deeply by the same rule."""
    ka = type_of(a)
    if ka != type_of(b):
        return False
    if ka == "list":
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    if ka == "object":
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _in(value: Any, seq: Any) -> bool:
    if seq.__class__ is not list and seq.__class__ is not tuple:
        return False
    if value.__class__ is str:
        return value in seq  # a str only equals a str, so list.__contains__ is already strict
    return any(strict_equal(value, x) for x in seq)


def _length(value: Any) -> int:
    c = value.__class__
    if c is str:
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if c is list or c is tuple:
        return len(value)
    if value is None:
        return 0
    raise FQLEvalError(f"length() takes a list or a string, got a {type_of(value)}")


def json_text(value: Any) -> str:
    """Compact JSON as JavaScript's JSON.stringify writes it (for string() and sampling)."""
    return json.dumps(_js_numbers(value), separators=(",", ":"), ensure_ascii=False)


def _js_numbers(value: Any) -> Any:
    # JavaScript has one number type and prints 2.0 as 2; the MD5 of a sampled value must agree.
    c = value.__class__
    if c is float and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if c is list or c is tuple:
        return [_js_numbers(v) for v in value]
    if c is dict:
        return {k: _js_numbers(v) for k, v in value.items()}
    return value


_NUMERIC = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


def _to_number(value: Any) -> int | float | None:
    kind = type_of(value)
    if kind == "number" or value is None:
        return value  # type: ignore[no-any-return]
    m = _NUMERIC.fullmatch(value) if kind == "string" else None
    if m is None:
        raise FQLEvalError(f"number() cannot convert the {kind} {value!r}")
    return float(value) if m[2] or m[3] or "." in value else int(value)


def _to_bool(value: Any) -> bool:
    kind = type_of(value)
    if kind == "string":
        return value.strip().lower() not in ("", "false", "0")
    if kind == "number":
        return bool(value != 0)
    return bool(value)  # null -> false; bool; non-empty list or object -> true


def _to_string(value: Any) -> str:
    return value if value.__class__ is str else json_text(value)


_SPACE = re.compile(r"\s")
_WORD_START = re.compile(r"(?:^|(?<=\s))\S")


def _case(fn: Callable[[str], str]) -> Callable[[Any], str | None]:
    def apply(value: Any) -> str | None:
        return fn(value) if value.__class__ is str else None

    return apply


_FUNCS: dict[str, Callable[[Any], Any]] = {
    "length": _length,
    "lowercase": _case(str.lower),
    "uppercase": _case(str.upper),
    "snakecase": _case(lambda s: _SPACE.sub("_", s)),
    "kebabcase": _case(lambda s: _SPACE.sub("-", s)),
    "titlecase": _case(lambda s: _WORD_START.sub(lambda m: m[0].upper(), s)),
    "typeof": type_of,
    "bool": _to_bool,
    "string": _to_string,
    "number": _to_number,
}


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a Segment glob into a regex for `fullmatch`; ValueError if malformed.

    Every `*chunk` but the last is an atomic lazy group: like segmentio/glob, each chunk binds
    to its first occurrence and is never retried, so matching stays linear-ish in the input
    (no catastrophic backtracking on event data).
    """
    chunks: list[list[str]] = [[]]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if chunks[-1] or len(chunks) == 1:
                chunks.append([])
        elif c == "?":
            chunks[-1].append(".")
        elif c == "\\":
            if i + 1 >= n:
                raise ValueError("it ends with a lone backslash")
            i += 1
            chunks[-1].append(re.escape(pattern[i]))
        elif c == "[":
            cls, i = _glob_class(pattern, i + 1)
            chunks[-1].append(cls)
            continue
        else:
            chunks[-1].append(re.escape(c))
        i += 1
    parts = ["".join(chunks[0])]
    for k, chunk in enumerate(chunks[1:], start=1):
        body = "".join(chunk)
        parts.append(f".*{body}" if k == len(chunks) - 1 else f"(?>.*?{body})")
    return re.compile("".join(parts), re.DOTALL)


def _glob_class(p: str, i: int) -> tuple[str, int]:
    """Parse `[...]` starting after the "["; returns (regex, index after "]")."""
    negate = i < len(p) and p[i] == "^"
    i += negate
    ranges: list[str] = []
    count = 0
    while True:
        if i >= len(p):
            raise ValueError("a '[' is never closed")
        if p[i] == "]" and count:
            i += 1
            break
        lo, i = _glob_char(p, i)
        hi = lo
        if i < len(p) and p[i] == "-":
            hi, i = _glob_char(p, i + 1)
        count += 1
        if lo <= hi:  # an inverted range matches nothing, as in Go's path.Match
            ranges.append(f"{re.escape(lo)}-{re.escape(hi)}")
    if not ranges:
        return ("." if negate else "(?!)"), i
    return f"[{'^' if negate else ''}{''.join(ranges)}]", i


def _glob_char(p: str, i: int) -> tuple[str, int]:
    if i >= len(p) or p[i] in "-]":
        raise ValueError("a character class is malformed")
    if p[i] == "\\":
        i += 1
        if i >= len(p):
            raise ValueError("it ends with a lone backslash")
    return p[i], i + 1


@functools.lru_cache(maxsize=256)
def _dynamic_glob(pattern: str) -> re.Pattern[str] | None:
    try:
        return glob_regex(pattern)
    except ValueError:
        return None


def _match(text: Any, pattern: Any) -> bool:
    if text.__class__ is not str or pattern.__class__ is not str:
        return False
    rx = _dynamic_glob(pattern)
    return rx is not None and rx.fullmatch(text) is not None


def _contains(text: Any, sub: Any) -> bool:
    return text.__class__ is str and sub.__class__ is str and sub in text


def _index(value: Any, i: int) -> Any:
    return value[i] if value.__class__ is list and i < len(value) else None


def _path(event: Mapping[str, Any], segments: tuple[str, ...]) -> Any:
    """A long path, walked in a loop (short ones are inlined by the compiler)."""
    value: Any = event.get(segments[0])
    for seg in segments[1:]:
        if value.__class__ is dict:
            value = value.get(seg)
        elif seg.isdigit():
            value = _index(value, int(seg))
        else:
            return None
    return value
