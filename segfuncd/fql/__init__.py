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

Layout: `parser.py` (tokenizer, AST, parser), `runtime.py` (value semantics and the built-in
functions the generated code calls), `compiler.py` (AST -> one generated Python function).
Only the names below are used outside this package; nothing here touches I/O.
"""

from __future__ import annotations

from .compiler import Predicate, ValueFn, compile_condition, compile_value
from .parser import (
    ARITY,
    MAX_DEPTH,
    BoolOp,
    Call,
    Compare,
    FQLSyntaxError,
    ListExpr,
    Literal,
    Node,
    Not,
    Path,
    parse,
    parse_path,
)
from .runtime import FQLEvalError, glob_regex, json_text, strict_equal, type_of

__all__ = [
    "ARITY",
    "MAX_DEPTH",
    "BoolOp",
    "Call",
    "Compare",
    "FQLEvalError",
    "FQLSyntaxError",
    "ListExpr",
    "Literal",
    "Node",
    "Not",
    "Path",
    "Predicate",
    "ValueFn",
    "compile_condition",
    "compile_value",
    "glob_regex",
    "json_text",
    "parse",
    "parse_path",
    "strict_equal",
    "type_of",
]
