"""FQL syntax: the AST, the tokenizer and the recursive-descent parser; pure.

Here: FQLSyntaxError, the AST node classes, `parse`, `parse_path`, ARITY and MAX_DEPTH, and
the load-time refusal of operands that can never be true. Not here: what a value means at
run time (`runtime.py`: types, equality, the built-in functions, globs) and turning an AST
into Python (`compiler.py`). The language's rules are in the package docstring.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .runtime import glob_regex, type_of

MAX_DEPTH = 64  # nesting limit: keeps the parser and Python's compiler far from recursion limits


class FQLSyntaxError(ValueError):
    """An FQL string does not parse; `column` is 1-based within the FQL source."""

    def __init__(self, message: str, *, column: int) -> None:
        self.message = message
        self.column = column
        super().__init__(f"column {column}: {message}")


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

ARITY = {
    "contains": 2,
    "match": 2,
    "length": 1,
    "lowercase": 1,
    "uppercase": 1,
    "snakecase": 1,
    "kebabcase": 1,
    "titlecase": 1,
    "typeof": 1,
    "bool": 1,
    "string": 1,
    "number": 1,
}
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
