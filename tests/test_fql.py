"""FQL as a spec: Segment's published examples, every operator and function, null/type rules."""

from __future__ import annotations

from typing import Any

import pytest

from segfuncd.fql import (
    FQLEvalError,
    FQLSyntaxError,
    compile_condition,
    compile_value,
    glob_regex,
    parse,
    parse_path,
)

# The object from https://segment.com/docs/api/public-api/fql/#examples
SEGMENT_EVENT = {
    "event": "Button Clicked",
    "type": "track",
    "context": {"library": {"name": "analytics.js", "version": "1.0"}},
    "properties": {"features": ["discounts", "dark-mode"]},
}

SEGMENT_EXAMPLES = [
    ("event = 'Button Clicked'", True),
    ("event = 'Screen Tapped'", False),
    ("context.path.path = '/login'", False),
    ("type = 'identify' or type = 'track'", True),
    ("event = 'Button Clicked' and type = 'track'", True),
    ("match( context.library.version, '1.*' )", True),
    ("match( context.library.version, '2.*' )", False),
    ("type = 'track' and ( event = 'Click' or match( event, 'Button *' ) )", True),
    ("!contains( context.library.name, 'js' )", False),
    ("'dark-mode' in properties.features", True),
    ("'blink' in properties.features", False),
    ("!( type in ['track', 'identify'] )", False),
    (
        "( type = 'track' or type = 'identify' ) and ( properties.enabled or match( traits.email, '*@company.com' ) )",
        False,
    ),
]


@pytest.mark.parametrize(("fql", "expected"), SEGMENT_EXAMPLES)
def test_segment_published_examples(fql: str, expected: bool) -> None:
    assert compile_condition(fql)(SEGMENT_EVENT) is expected


EVENT: dict[str, Any] = {
    "type": "track",
    "event": "Order Completed",
    "userId": "u-42",
    "anonymousId": None,
    "properties": {
        "revenue": 42.5,
        "count": 3,
        "one": 1,
        "flag": True,
        "off": False,
        "name": "Kana ア",
        "tags": ["a", "b", 1, True, None],
        "nums": [1, 2.0],
        "empty": "",
        "nested": {"a": 1},
        "product 1": {"price": "19.99"},
        "a.b": "dotted",
        "items": [{"sku": "x"}, {"sku": "y"}],
        "pattern": "Order*",
        "bad_pattern": "[",
        "numstr": "12.5",
        "intstr": "7",
        "word": "abc",
    },
    "traits": {"email": "kim@company.com"},
}

CONDITIONS = [
    # = and != need the same type
    ("properties.count = 3", True),
    ("properties.count = 3.0", True),
    ("properties.count = '3'", False),
    ("properties.one = true", False),
    ("properties.flag = 1", False),
    ("properties.flag = true", True),
    ("properties.off = false", True),
    ("properties.count != '3'", True),
    ("properties.count != 3", False),
    ("anonymousId = null", True),
    ("properties.missing = null", True),
    ("properties.missing != null", False),
    ("userId != null", True),
    ("properties.empty = null", False),
    ("properties.nums = [1, 2]", True),
    ("properties.nums = [1, 3]", False),
    ("properties.nums = [true, 2]", False),
    ("properties.nested = properties.nested", True),
    ("properties.count = properties.count", True),
    ("properties.one = properties.flag", False),
    ("'x' = 'x'", True),
    ("null = null", True),
    ("[] = []", True),
    # numeric comparisons are false unless both sides are numbers
    ("properties.revenue > 42", True),
    ("properties.revenue >= 42.5", True),
    ("properties.revenue < 42.5", False),
    ("properties.revenue <= 42.5", True),
    ("properties.count > properties.one", True),
    ("properties.count < properties.one", False),
    ("properties.numstr > 1", False),
    ("properties.flag > 0", False),
    ("properties.missing < 1", False),
    ("properties.missing >= properties.missing", False),
    ("'b' > 'a'", False),
    ("-1 < 0", True),
    ("1e2 = 100", True),
    # and / or / ! treat anything but true as false
    ("properties.flag and properties.count = 3", True),
    ("properties.flag and properties.off", False),
    ("properties.off or properties.flag", True),
    ("properties.missing or properties.off", False),
    ("!properties.missing", True),
    ("!properties.flag", False),
    ("!!properties.flag", True),
    ("properties.count", False),
    ("true", True),
    ("false or true and false", False),
    ("true or true and false", True),
    ("( true or true ) and false", False),
    # in
    ("'a' in properties.tags", True),
    ("1 in properties.tags", True),
    ("true in properties.tags", True),
    ("null in properties.tags", True),
    ("'c' in properties.tags", False),
    ("2 in properties.nums", True),
    ("false in properties.tags", False),
    ("type in ['track', 'page']", True),
    ("type in ['page']", False),
    ("properties.count in [1, 2, 3]", True),
    ("properties.one in [true]", False),
    ("properties.missing in [null]", True),
    ("'x' in properties.missing", False),
    ("'K' in properties.name", False),
    ("type in [event, 'track']", True),
    ("type in []", False),
    # paths: escapes, list indexes, missing
    ("properties.product\\ 1.price = '19.99'", True),
    ("properties.a\\.b = 'dotted'", True),
    ("properties.items.1.sku = 'y'", True),
    ("properties.items.5.sku = null", True),
    ("properties.items.0.sku.x.y = null", True),  # long paths are walked by a loop, same rules
    ("properties.items.1.sku.x = null", True),
    ("properties.nested.a.b.c.d = null", True),
    ("properties.product\\ 1.price.x.y = null", True),
    ("properties.name.first = null", True),
    ("traits.email = 'kim@company.com'", True),
    ("\\type = 'track'", True),
    # functions
    ("contains(event, 'Comp')", True),
    ("contains(event, 'comp')", False),
    ("contains(properties.missing, 'x')", False),
    ("contains(properties.count, '3')", False),
    ("contains(event, properties.word)", False),
    ("contains(properties.word, 'b')", True),
    ("length(userId) > 0", True),
    ("length(properties.missing) = 0", True),
    ("length(properties.name) = 8", True),  # 'ア' is 3 UTF-8 bytes
    ("length(properties.tags) = 5", True),
    ("length('') = 0", True),
    ("lowercase(event) = 'order completed'", True),
    ("uppercase(event) = 'ORDER COMPLETED'", True),
    ("snakecase('test string') = 'test_string'", True),
    ("kebabcase('test string') = 'test-string'", True),
    ("titlecase('test string') = 'Test String'", True),
    ("lowercase(properties.missing) = null", True),
    ("lowercase(properties.count) = null", True),
    ("typeof(properties.missing) = 'null'", True),
    ("bool(properties.count)", True),
    ("bool(0)", False),
    ("bool(properties.missing)", False),
    ("bool('false')", False),
    ("bool('yes')", True),
    ("bool([])", False),
    ("string(properties.count) = '3'", True),
    ("string(properties.nums) = '[1,2]'", True),
    ("number(properties.numstr) > 12", True),
    ("number(properties.intstr) = 7", True),
    ("number(properties.count) = 3", True),
    ("number(properties.missing) = null", True),
    # match: whole-string, case-sensitive glob
    ("match(event, 'Order*')", True),
    ("match(event, 'order*')", False),
    ("match(event, 'Order')", False),
    ("match(event, '*Completed')", True),
    ("match(event, 'Order?Completed')", True),
    ("match(event, '[A-Z]rder *')", True),
    ("match(event, '[^O]rder *')", False),
    ("match(event, '*e*e*')", True),
    ("match(properties.missing, '*')", False),
    ("match(properties.count, '*')", False),
    ("match(event, properties.pattern)", True),
    ("match(event, properties.bad_pattern)", False),
    ("match(event, properties.missing)", False),
]


@pytest.mark.parametrize(("fql", "expected"), CONDITIONS)
def test_condition(fql: str, expected: bool) -> None:
    assert compile_condition(fql)(EVENT) is expected


# Segment's glob table (https://segment.com/docs/api/public-api/fql/#match-string-pattern-)
GLOBS = [
    ("abcd", "a*d", True),
    ("", "*", True),
    ("abc", "ab", False),
    ("abcd", "a??d", True),
    ("abcd", "*d", True),
    ("ab*d", "ab\\*d", True),
    ("abCd", "ab[cC]d", True),
    ("abcd", "ab[a-z]d", True),
    ("abcd", "ab[A-Z]d", False),
    ("a/b/c", "a*", True),  # unlike a filesystem glob, * crosses "/"
    ("a\nb", "a?b", True),
    ("a]", "a]", True),
    ("ab", "a[\\]]", False),
    ("a]", "a[\\]]", True),
    ("aXbXc", "*X*X*", True),
    ("abab", "*ab", True),
    ("abcabd", "a*b*d", True),
    ("zz", "[^a-y][^a-y]", True),
    ("b", "[z-a]", False),
    ("a.b", "a.b", True),
    ("axb", "a.b", False),
]


@pytest.mark.parametrize(("text", "pattern", "expected"), GLOBS)
def test_match_glob(text: str, pattern: str, expected: bool) -> None:
    source = "match(properties.s, properties.p)"
    event = {"properties": {"s": text, "p": pattern}}
    assert compile_condition(source)(event) is expected  # dynamic pattern
    assert (glob_regex(pattern).fullmatch(text) is not None) is expected  # literal pattern path


SEGMENT_GLOB_TABLE = [
    ("match( 'abcd', 'a*d' )", True),
    ("match( '', '*' )", True),
    ("match( 'abc', 'ab' )", False),
    ("match( 'abcd', 'a??d' )", True),
    ("match( 'abcd', '*d' )", True),
    ("match( 'ab*d', 'ab\\*d' )", True),
    ("match( 'abcd', 'ab\\*d' )", False),
    ("match( 'abCd', 'ab[cC]d' )", True),
    ("match( 'abcd', 'ab[a-z]d' )", True),
    ("match( 'abcd', 'ab[A-Z]d' )", False),
    ("match( 'a\\b', 'a\\\\\\\\b' )", True),  # \\ in FQL is one \ in the glob, which escapes the next
]


@pytest.mark.parametrize(("fql", "expected"), SEGMENT_GLOB_TABLE)
def test_segment_glob_table_as_fql(fql: str, expected: bool) -> None:
    assert compile_condition(fql)({}) is expected


def test_match_does_not_backtrack_catastrophically() -> None:
    pred = compile_condition("match(properties.s, '*a*a*a*a*a*a*a*b')")
    assert pred({"properties": {"s": "a" * 20_000}}) is False


VALUES = [
    ("typeof(event)", "string"),
    ("typeof(properties.count)", "number"),
    ("typeof(properties.revenue)", "number"),
    ("typeof(properties.tags)", "list"),
    ("typeof(properties.flag)", "bool"),
    ("typeof(anonymousId)", "null"),
    ("typeof(properties.nested)", "object"),
    ("lowercase(event)", "order completed"),
    ("uppercase(properties.name)", "KANA ア"),
    ("titlecase('hello big  world')", "Hello Big  World"),
    ("snakecase('a b\tc')", "a_b_c"),
    ("length(properties.name)", 8),
    ("string(null)", "null"),
    ("string(true)", "true"),
    ("string(2.0)", "2"),
    ("string(properties.nested)", '{"a":1}'),
    ("number(properties.numstr)", 12.5),
    ("number('1e3')", 1000.0),
    ("bool('  FALSE ')", False),
    ("bool(properties.nested)", True),
    ("properties.tags", ["a", "b", 1, True, None]),
    ("[1, 'a', null]", (1, "a", None)),
    ("[type, 1]", ("track", 1)),
    ("properties.count = 3", True),
    ("'a'", "a"),
]


@pytest.mark.parametrize(("fql", "expected"), VALUES)
def test_value(fql: str, expected: Any) -> None:
    assert compile_value(fql)(EVENT) == expected


@pytest.mark.parametrize(
    "fql",
    [
        "length(properties.nested) > 0",
        "length(properties.count) > 0",
        "number(properties.word) > 0",
        "number('1_000') > 0",
        "number('nan') > 0",
        "number(properties.flag) = 1",
        "'x' in [properties.count, object.thing] or typeof(properties.weird) = 'x'",
    ],
)
def test_evaluation_errors_raise(fql: str) -> None:
    event = {**EVENT, "object": {"thing": object()}, "properties": {**EVENT["properties"], "weird": {1, 2}}}
    with pytest.raises(FQLEvalError):
        compile_condition(fql)(event)


SYNTAX_ERRORS = [
    ("", 1, "empty expression"),
    ("event = ", 9, "expected a value, got end of input"),
    ('userId = oops"', 14, "unterminated string"),
    ("event = 'a' 'b'", 13, "expected 'and', 'or' or the end"),
    ("event == 'a'", 8, "expected a value, got '='"),
    ("(event = 'a'", 13, "expected ')'"),
    ("event = 'a')", 12, "unexpected ')'"),
    ("foo(event)", 1, "unknown function 'foo'"),
    ("contains(event)", 1, "contains() takes 2 argument(s), got 1"),
    ("length(a, b) > 1", 1, "length() takes 1 argument(s), got 2"),
    ("event = 'A' or 'B'", 16, "'or' needs a condition, got the string 'B'"),
    ("lowercase(event)", 1, "a filter needs a condition, got lowercase()"),
    ("!'x'", 2, "'!' needs a condition"),
    ("type in 'track'", 9, "'in' needs a list on its right"),
    ("properties..x = 1", 12, "empty field name in path"),
    ("properties. = 1", 12, "empty field name in path"),
    ("a\\", 2, "lone backslash"),
    ("a = 5x", 6, "unexpected 'x' after the number 5"),
    ("a = #", 5, "unexpected character '#'"),
    ("match(event, 'a[')", 14, "invalid match() pattern"),
    ("match(event, 'a\\')", 14, "unterminated string"),
    ("match(event, 'a\\\\')", 14, "invalid match() pattern: it ends with a lone backslash"),
    ("[1, 2", 6, "expected ','"),
    ("and", 1, "expected a value, got 'and'"),
    ("x = 1 and", 10, "expected a value, got end of input"),
    ("(" * 100 + "true" + ")" * 100, 65, "nested more than 64 levels"),
]


@pytest.mark.parametrize(("fql", "column", "fragment"), SYNTAX_ERRORS)
def test_syntax_errors_carry_the_column(fql: str, column: int, fragment: str) -> None:
    with pytest.raises(FQLSyntaxError) as info:
        compile_condition(fql)
    assert info.value.column == column
    assert fragment in info.value.message


def test_keywords_are_case_sensitive_paths_when_not_keywords() -> None:
    """`and`/`true` are keywords; `True` is a field name, and an escaped keyword is a path."""
    event = {"True": 1, "and": 2}
    assert compile_condition("True = 1")(event) is True
    assert compile_condition("\\and = 2")(event) is True


def test_function_names_are_fields_without_parentheses() -> None:
    assert compile_condition("length = 3")({"length": 3}) is True


def test_string_escapes_and_double_quotes() -> None:
    event = {"s": 'it\'s "q"\n'}
    assert compile_condition("s = 'it\\'s \"q\"\\n'")(event) is True
    assert compile_condition('s = "it\'s \\"q\\"\\n"')(event) is True


def test_literals_cannot_inject_code() -> None:
    pred = compile_condition("event = '\\'); import os; (\\''")
    assert pred({"event": "'); import os; ('"}) is True


def test_parse_path_handles_escapes() -> None:
    assert parse_path("properties.a\\.b") == ("properties", "a.b")
    assert parse_path("context.library.version") == ("context", "library", "version")
    with pytest.raises(FQLSyntaxError):
        parse_path("a b")


def test_parse_returns_an_ast_with_columns() -> None:
    node = parse("type = 'track'")
    assert type(node).__name__ == "Compare" and node.col == 6  # type: ignore[union-attr]


def test_compiled_condition_does_not_mutate_event() -> None:
    event = {"properties": {"x": [1, 2]}}
    compile_condition("1 in properties.x and length(properties.x) = 2")(event)
    assert event == {"properties": {"x": [1, 2]}}


@pytest.mark.parametrize(
    "fql",
    [
        ".".join(f"f{i}" for i in range(150)) + " = 1",
        " or ".join(f"a{i} = {i}" for i in range(2_000)),
        "!" * 60 + "(" * 3 + ".".join(f"f{i}" for i in range(90)) + ")" * 3,
    ],
)
def test_huge_expressions_compile_or_fail_cleanly(fql: str) -> None:
    """Python's own parser limits must surface as FQLSyntaxError, never as a crash."""
    try:
        pred = compile_condition(fql)
    except FQLSyntaxError as exc:
        assert exc.column >= 1
    else:
        assert pred({"a1999": 1999}) in (True, False)


def test_long_paths_index_lists_like_short_ones() -> None:
    event = {"a": {"b": [{"c": {"d": {"e": 5}}}]}}
    assert compile_condition("a.b.0.c.d.e = 5")(event) is True
    assert compile_condition("a.b.1.c.d.e = null")(event) is True
    assert compile_value(".".join(f"f{i}" for i in range(150)))({"f0": {"f1": 1}}) is None
