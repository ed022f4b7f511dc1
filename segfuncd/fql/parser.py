"""Segment's Filter Query Language: tokenizer, parser, and a compiler to Python; pure.

Semantics follow https://segment.com/docs/api/public-api/fql/ (and segmentio/tsub-js where
the page is silent). The rules, all enforced here:

- A path (`context.library.version`, `properties.product\\ 1.price`) names a field; a missing
  field, or a path through a non-object, is `null`. Numeric segments also index lists.
- `=` is true only for the same type and equal values (`1 = '1'` is false, `1 = true` is
  false); `!=` is its negation. `> >= < <=` are false unless both sides are numbers.
- `and`, `or`, `!` treat anything but `true` as false (so `!null` is true).
- `in` needs a list on its right; `contains` and `match` are false for non-strings;
  `length(null)` is 0 and counts UTF-8 bytes of a string; case functions give `null` for
  non-strings; `match` is a whole-string, case-sensitive glob (`* ? [abc] [a-z] [^a] \\x`).
- In string literals `\\'` `\\"` `\\\\` `\\n` `\\t` `\\r` are escapes; any other `\\x` is kept as
  written, so glob escapes read as in Segment's docs (`match( 'ab*d', 'ab\\*d' )`).
- Evaluation errors (`length` of an object, `number('abc')`) raise FQLEvalError, which
  filters.py turns into "drop the event": Segment fails closed on a filter it cannot run.

Conditions are compiled once into generated Python source (one `def` per filter) because
FilterChain.apply runs on every delivery: a tree walk costs a call per node, the generated
code costs what hand-written Python would. Only `repr()` of str/int/finite float literals is
spliced into the source; every other constant is passed in the function's globals.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]
ValueFn = Callable[[Mapping[str, Any]], Any]
_INLINE_PATH = 4  # paths up to this many segments become inline code, longer ones a loop
MAX_DEPTH = 64  # nesting limit: keeps the parser and Python's compiler far from recursion limits


class FQLSyntaxError(ValueError):
    """An FQL string does not parse; `column` is 1-based within the FQL source."""

    def __init__(self, message: str, *, column: int) -> None:
        self.message = message
        self.column = column
        super().__init__(f"column {column}: {message}")


class FQLEvalError(Exception):
    """A valid FQL expression cannot be evaluated on this event (e.g. `length` of an object)."""


# ---------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class Literal:
    """A string, number, `true`, `false` or `null` written in the FQL."""

    value: str | int | float | bool | None
    col: int


@dataclass(frozen=True, slots=True)
class ListExpr:
    """`[a, b, ...]`; all-literal lists become one constant tuple."""

    items: tuple[Node, ...]
    col: int


@dataclass(frozen=True, slots=True)
class Path:
    """A field path, already split on unescaped dots and unescaped."""

    segments: tuple[str, ...]
    col: int


@dataclass(frozen=True, slots=True)
class Not:
    """`!x`: true when x is not `true`."""

    operand: Node
    col: int


@dataclass(frozen=True, slots=True)
class BoolOp:
    """`a and b and ...` or `a or b or ...`, flattened."""

    op: str  # "and" | "or"
    operands: tuple[Node, ...]
    col: int


@dataclass(frozen=True, slots=True)
class Compare:
    """A binary comparison or `in`; `col` is the operator's."""

    op: str  # = != > >= < <= in
    left: Node
    right: Node
    col: int


@dataclass(frozen=True, slots=True)
class Call:
    """A built-in function call; arity is checked by the parser."""

    name: str
    args: tuple[Node, ...]
    col: int


Node = Literal | ListExpr | Path | Not | BoolOp | Compare | Call

ARITY = {"contains": 2, "match": 2, "length": 1, "lowercase": 1, "uppercase": 1, "snakecase": 1,
         "kebabcase": 1, "titlecase": 1, "typeof": 1, "bool": 1, "string": 1, "number": 1}
_BOOL_FUNCS = frozenset({"contains", "match", "bool"})
_KEYWORDS = {"true": True, "false": False, "null": None}

# ---------------------------------------------------------------- tokenizer

_PUNCT = ("!=", ">=", "<=", "=", ">", "<", "!", "(", ")", "[", "]", ",")
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_IDENT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # str | num | ident | op | end
    value: Any  # str, number, tuple of path segments, operator text
    col: int
    bare: str | None = None  # an ident without dots or escapes: keyword or function name


def _tokenize(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c.isspace():
            i += 1
            continue
        col = i + 1
        if c in "'\"":
            out, i = [], i + 1
            while i < n and src[i] != c:
                if src[i] == "\\" and i + 1 < n:
                    i += 1
                    # Unknown escapes stay as written, so glob escapes read as in Segment's
                    # docs: match( 'ab*d', 'ab\*d' ). \' \" \\ \n \t \r are the escapes.
                    esc = src[i]
                    out.append(esc if esc in "\\'\"" else _ESCAPES.get(esc, "\\" + esc))
                else:
                    out.append(src[i])
                i += 1
            if i >= n:
                raise FQLSyntaxError(f"unterminated string starting with {c}", column=col)
            toks.append(_Tok("str", "".join(out), col))
            i += 1
        elif c.isdigit() or (c == "-" and i + 1 < n and src[i + 1].isdigit()):
            m = _NUMBER.match(src, i)
            assert m is not None  # the first character is a digit or "-digit"
            i = m.end()
            if i < n and (src[i] in _IDENT or src[i] in ".\\"):
                raise FQLSyntaxError(f"unexpected {src[i]!r} after the number {m[0]}", column=i + 1)
            text = m[0]
            num: int | float = float(text) if m[1] or m[2] else int(text)
            toks.append(_Tok("num", num, col))
        elif c in _IDENT or c == "\\":
            segments, i, escaped = _scan_path(src, i)
            bare = segments[0] if len(segments) == 1 and not escaped else None
            toks.append(_Tok("ident", segments, col, bare))
        else:
            op = next((p for p in _PUNCT if src.startswith(p, i)), None)
            if op is None:
                raise FQLSyntaxError(f"unexpected character {c!r}", column=col)
            toks.append(_Tok("op", op, col))
            i += len(op)
    toks.append(_Tok("end", None, n + 1))
    return toks


def _scan_path(src: str, i: int) -> tuple[tuple[str, ...], int, bool]:
    """Read a dotted path from src[i:]; `\\x` makes any x part of the name."""
    segments: list[str] = []
    seg: list[str] = []
    escaped = False
    n = len(src)
    while True:
        if i < n and src[i] == "\\":
            if i + 1 >= n:
                raise FQLSyntaxError("a path ends with a lone backslash", column=i + 1)
            seg.append(src[i + 1])
            escaped = True
            i += 2
        elif i < n and src[i] in _IDENT:
            seg.append(src[i])
            i += 1
        else:
            if not seg:
                raise FQLSyntaxError("empty field name in path", column=i + 1)
            segments.append("".join(seg))
            if i < n and src[i] == ".":
                seg, i = [], i + 1
                continue
            return tuple(segments), i, escaped


def parse_path(text: str) -> tuple[str, ...]:
    """A bare field path (`properties.a\\.b` -> ("properties", "a.b")); used by filters.py."""
    segments, end, _ = _scan_path(text, 0)
    if end != len(text):
        raise FQLSyntaxError(f"unexpected {text[end]!r} in path", column=end + 1)
    return segments


# ---------------------------------------------------------------- parser


def _describe(tok: _Tok) -> str:
    if tok.kind == "end":
        return "end of input"
    if tok.kind == "ident":
        return "'" + ".".join(tok.value) + "'"
    return repr(tok.value) if tok.kind == "str" else f"'{tok.value}'"


class _Parser:
    """Recursive descent; precedence: or < and < ! < comparison < primary."""

    def __init__(self, src: str) -> None:
        self.toks = _tokenize(src)
        self.pos = 0
        self.depth = 0

    def peek(self) -> _Tok:
        return self.toks[self.pos]

    def take(self) -> _Tok:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def is_op(self, *ops: str) -> bool:
        tok = self.peek()
        return (tok.kind == "op" and tok.value in ops) or (tok.kind == "ident" and tok.bare in ops)

    def expect(self, op: str) -> None:
        if not self.is_op(op):
            tok = self.peek()
            raise FQLSyntaxError(f"expected '{op}', got {_describe(tok)}", column=tok.col)
        self.pos += 1

    def nest(self, col: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FQLSyntaxError(f"nested more than {MAX_DEPTH} levels deep", column=col)

    def bool_op(self, op: str, sub: Callable[[], Node]) -> Node:
        first = sub()
        operands = [first]
        while self.is_op(op):
            self.pos += 1
            operands.append(sub())
        if len(operands) == 1:
            return first
        for o in operands:
            _require_condition(o, f"'{op}'")
        return BoolOp(op, tuple(operands), first.col)

    def or_(self) -> Node:
        return self.bool_op("or", self.and_)

    def and_(self) -> Node:
        return self.bool_op("and", self.unary)

    def unary(self) -> Node:
        if self.is_op("!"):
            col = self.take().col
            self.nest(col)
            operand = self.unary()
            self.depth -= 1
            _require_condition(operand, "'!'")
            return Not(operand, col)
        return self.comparison()

    def comparison(self) -> Node:
        left = self.primary()
        if not self.is_op("=", "!=", ">", ">=", "<", "<=", "in"):
            return left
        tok = self.take()
        op = tok.bare or tok.value
        right = self.primary()
        if op == "in" and isinstance(right, Literal):
            raise FQLSyntaxError("'in' needs a list on its right, like ['a', 'b']", column=right.col)
        return Compare(op, left, right, tok.col)

    def primary(self) -> Node:
        tok = self.take()
        if tok.kind in ("str", "num"):
            return Literal(tok.value, tok.col)
        if tok.kind == "ident":
            if tok.bare in _KEYWORDS:
                return Literal(_KEYWORDS[tok.bare], tok.col)
            if tok.bare in ("and", "or", "in"):
                raise FQLSyntaxError(f"expected a value, got '{tok.bare}'", column=tok.col)
            if self.is_op("(") and tok.bare is not None:
                return self.call(tok)
            return Path(tok.value, tok.col)
        if tok.kind == "op" and tok.value in ("(", "["):
            self.nest(tok.col)
            if tok.value == "(":
                node = self.or_()
                self.expect(")")
            else:
                node = ListExpr(tuple(self.items("]")), tok.col)
            self.depth -= 1
            return node
        raise FQLSyntaxError(f"expected a value, got {_describe(tok)}", column=tok.col)

    def items(self, close: str) -> list[Node]:
        out: list[Node] = []
        if self.is_op(close):
            self.pos += 1
            return out
        while True:
            out.append(self.or_())
            if self.is_op(close):
                self.pos += 1
                return out
            self.expect(",")

    def call(self, tok: _Tok) -> Node:
        name = tok.bare
        assert name is not None
        if name not in ARITY:
            raise FQLSyntaxError(f"unknown function '{name}'; known: {', '.join(ARITY)}", column=tok.col)
        self.pos += 1  # the "("
        self.nest(tok.col)
        args = self.items(")")
        self.depth -= 1
        if len(args) != ARITY[name]:
            raise FQLSyntaxError(f"{name}() takes {ARITY[name]} argument(s), got {len(args)}", column=tok.col)
        if name == "match" and isinstance(args[1], Literal) and isinstance(args[1].value, str):
            try:
                glob_regex(args[1].value)
            except ValueError as exc:
                raise FQLSyntaxError(f"invalid match() pattern: {exc}", column=args[1].col) from None
        return Call(name, tuple(args), tok.col)


def _require_condition(node: Node, where: str) -> None:
    """Refuse, at load time, operands that can never be true (`event = 'A' or 'B'`)."""
    if isinstance(node, Literal) and not isinstance(node.value, bool):
        what = "null" if node.value is None else f"the {type_of(node.value)} {node.value!r}"
    elif isinstance(node, ListExpr):
        what = "a list"
    elif isinstance(node, Call) and node.name not in _BOOL_FUNCS:
        what = f"{node.name}(), which is not a bool"
    else:
        return
    raise FQLSyntaxError(f"{where} needs a condition, got {what}", column=node.col)


def parse(source: str) -> Node:
    """Parse an FQL string into an AST; raises FQLSyntaxError with the column."""
    p = _Parser(source)
    if p.peek().kind == "end":
        raise FQLSyntaxError("empty expression", column=1)
    node = p.or_()
    tok = p.peek()
    if tok.kind != "end":
        raise FQLSyntaxError(f"unexpected {_describe(tok)}; expected 'and', 'or' or the end", column=tok.col)
    return node


# ---------------------------------------------------------------- runtime helpers


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


# ---------------------------------------------------------------- compiler

_RUNTIME: dict[str, Any] = {
    "__builtins__": {}, "dict": dict, "bool": bool, "str": str, "_NUM": frozenset({int, float}),
    "_eq": strict_equal, "_in": _in, "_contains": _contains, "_match": _match, "_index": _index, "_path": _path,
    **{f"_f_{name}": fn for name, fn in _FUNCS.items()},
}


class _Codegen:
    """Turns an AST into one Python expression over the event `e`.

    `value()` yields the FQL value; `cond()` yields a Python bool that is True exactly when
    the FQL value is `true`. Comparisons against literals are specialised inline, because
    they are what filters are made of.
    """

    def __init__(self) -> None:
        self.consts: dict[str, Any] = {}
        self.temps = 0

    def const(self, value: Any) -> str:
        name = f"_k{len(self.consts)}"
        self.consts[name] = value
        return name

    def tmp(self) -> str:
        self.temps += 1
        return f"_t{self.temps}"

    def lit(self, v: Any) -> str:
        if v.__class__ is float and not math.isfinite(v):
            return self.const(v)
        return repr(v)  # str, int, finite float, bool, None: a plain Python literal

    def value(self, node: Node) -> str:
        if isinstance(node, Literal):
            return self.lit(node.value)
        if isinstance(node, ListExpr):
            if all(isinstance(i, Literal) for i in node.items):
                return self.const(tuple(i.value for i in node.items))  # type: ignore[union-attr]
            return "(" + "".join(f"{self.value(i)}, " for i in node.items) + ")"
        if isinstance(node, Path):
            if len(node.segments) > _INLINE_PATH:
                return f"_path(e, {self.const(node.segments)})"
            code = f"e.get({node.segments[0]!r})"
            for seg in node.segments[1:]:
                t = self.tmp()
                other = f"_index({t}, {int(seg)})" if seg.isdigit() else "None"
                code = f"({t}.get({seg!r}) if ({t} := {code}).__class__ is dict else {other})"
            return code
        if isinstance(node, Call) and node.name not in ("contains", "match"):
            return f"_f_{node.name}({self.value(node.args[0])})"
        return self.cond(node)

    def cond(self, node: Node) -> str:
        if isinstance(node, Literal):
            return "True" if node.value is True else "False"
        if isinstance(node, Not):
            return f"(not {self.cond(node.operand)})"
        if isinstance(node, BoolOp):
            return "(" + f" {node.op} ".join(self.cond(o) for o in node.operands) + ")"
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, Call) and node.name in ("contains", "match"):
            text, pattern = node.args
            if isinstance(pattern, Literal) and isinstance(pattern.value, str):
                t = self.tmp()
                if node.name == "contains":
                    test = f"{pattern.value!r} in {t}"
                else:
                    test = f"{self.const(glob_regex(pattern.value))}.fullmatch({t}) is not None"
                return f"(({t} := {self.value(text)}).__class__ is str and {test})"
            return f"_{node.name}({self.value(text)}, {self.value(pattern)})"
        return f"({self.value(node)} is True)"

    def compare(self, node: Compare) -> str:
        op, left, right = node.op, node.left, node.right
        if op == "in":
            items = right.items if isinstance(right, ListExpr) else ()
            if items and all(isinstance(i, Literal) and i.value.__class__ is str for i in items):
                t, names = self.tmp(), self.const(frozenset(i.value for i in items))  # type: ignore[union-attr]
                return f"(({t} := {self.value(left)}).__class__ is str and {t} in {names})"
            return f"_in({self.value(left)}, {self.value(right)})"
        if op in ("=", "!="):
            code = self.equal(left, right)
            return code if op == "=" else f"(not {code})"
        guards, operands = [], []
        for side in (left, right):
            if isinstance(side, Literal):
                if side.value.__class__ not in (int, float):
                    return "False"  # a non-number literal never compares
                operands.append(self.lit(side.value))
            else:
                t = self.tmp()
                guards.append(f"({t} := {self.value(side)}).__class__ in _NUM")
                operands.append(t)
        return "(" + " and ".join([*guards, f"{operands[0]} {op} {operands[1]}"]) + ")"

    def equal(self, left: Node, right: Node) -> str:
        if isinstance(left, Literal):
            left, right = right, left
        if not isinstance(right, Literal):
            return f"_eq({self.value(left)}, {self.value(right)})"
        v, x = right.value, self.value(left)
        if v is None or v.__class__ is bool:
            return f"({x} is {v!r})"
        if v.__class__ is str:
            return f"({x} == {v!r})"  # only a str equals a str
        t = self.tmp()
        return f"(({t} := {x}) == {self.lit(v)} and {t}.__class__ is not bool)"


def _build(node: Node, *, condition: bool) -> Callable[[Mapping[str, Any]], Any]:
    gen = _Codegen()
    body = gen.cond(node) if condition else gen.value(node)
    src = f"def _fql(e):\n    return {body}\n"
    namespace = {**_RUNTIME, **gen.consts}
    try:
        code = compile(src, "<fql>", "exec")
    except (SyntaxError, RecursionError, MemoryError) as exc:  # Python's own nesting limits
        raise FQLSyntaxError("expression is too deeply nested", column=1) from exc
    exec(code, namespace)  # safe: the source holds only repr()'d literals and generated names
    fn: Callable[[Mapping[str, Any]], Any] = namespace["_fql"]
    fn.__doc__ = src  # keeps the generated code inspectable when debugging a filter
    return fn


def compile_condition(source: str | Node) -> Predicate:
    """Compile an FQL condition into `f(event) -> bool`; raises FQLSyntaxError."""
    node = parse(source) if isinstance(source, str) else source
    _require_condition(node, "a filter")
    return _build(node, condition=True)


def compile_value(source: str | Node) -> ValueFn:
    """Compile any FQL expression into `f(event) -> value` (`lowercase(event)` -> str | None)."""
    return _build(parse(source) if isinstance(source, str) else source, condition=False)
