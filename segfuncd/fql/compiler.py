"""FQL compiler: an AST becomes one generated Python function per filter; pure.

Conditions are compiled once into generated Python source (one `def` per filter) because
FilterChain.apply runs on every delivery: a tree walk costs a call per node, the generated
code costs what hand-written Python would. Only `repr()` of str/int/finite float literals is
spliced into the source; every other constant is passed in the function's globals.

Here: `compile_condition`, `compile_value`, Predicate and ValueFn. Not here: parsing
(`parser.py`) or the value semantics the generated code calls (`runtime.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from .parser import (
    BoolOp,
    Call,
    Compare,
    FQLSyntaxError,
    ListExpr,
    Literal,
    Node,
    Not,
    Path,
    _require_condition,
    parse,
)
from .runtime import _FUNCS, _contains, _in, _index, _match, _path, glob_regex, strict_equal

Predicate = Callable[[Mapping[str, Any]], bool]
ValueFn = Callable[[Mapping[str, Any]], Any]
_INLINE_PATH = 4  # paths up to this many segments become inline code, longer ones a loop

_RUNTIME: dict[str, Any] = {
    "__builtins__": {},
    "dict": dict,
    "bool": bool,
    "str": str,
    "_NUM": frozenset({int, float}),
    "_eq": strict_equal,
    "_in": _in,
    "_contains": _contains,
    "_match": _match,
    "_index": _index,
    "_path": _path,
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
