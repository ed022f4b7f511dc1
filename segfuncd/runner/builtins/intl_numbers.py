"""Intl.NumberFormat and Number#toLocaleString, as Node 20's ICU answers them, on Babel's CLDR data.

Options are read and checked as ECMA-402's InitializeNumberFormat does. Numbers arrive as the
shortest decimal string JS prints for them (a bigint or numeric string exactly), so rounding works
on that decimal as ICU does (1.005 -> "1.01"), with `roundingMode` (default halfExpand). The
pattern's affixes, grouping and the locale's symbols come from Babel; currency spacing, compact
rounding and sign display follow ICU. Supported: style decimal / percent / currency, notation
standard / compact, the digit options, useGrouping, signDisplay, currencyDisplay, currencySign,
roundingMode, trailingZeroDisplay. Anything else (style unit, scientific notation, rounding
increments) is a RangeError naming the option, never silently ignored.
"""

from __future__ import annotations

import decimal
import re
from dataclasses import dataclass
from typing import Any

from babel import Locale
from babel.numbers import get_currency_name, get_currency_precision, get_currency_symbol, parse_pattern

from .intl_locale import range_error, resolve_locale, type_error

_ROUNDING = {
    "halfExpand": decimal.ROUND_HALF_UP,
    "halfEven": decimal.ROUND_HALF_EVEN,
    "halfTrunc": decimal.ROUND_HALF_DOWN,
    "ceil": decimal.ROUND_CEILING,
    "floor": decimal.ROUND_FLOOR,
    "expand": decimal.ROUND_UP,
    "trunc": decimal.ROUND_DOWN,
}
# CLDR's narrow currency symbols for the common currencies (Babel ships only the standard ones)
_NARROW = {
    "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CNY": "¥", "INR": "₹", "KRW": "₩", "AUD": "$",
    "CAD": "$", "NZD": "$", "HKD": "$", "SGD": "$", "MXN": "$", "BRL": "R$", "RUB": "₽", "ILS": "₪",
    "TRY": "₺", "PLN": "zł", "SEK": "kr", "NOK": "kr", "DKK": "kr", "PHP": "₱", "THB": "฿", "VND": "₫",
    "NGN": "₦", "UAH": "₴", "ZAR": "R", "CHF": "CHF",
}  # fmt: skip
# locales whose CLDR minimumGroupingDigits is 2 (1234 is not grouped); Babel does not ship it
_MIN_GROUPING_2 = frozenset(("es", "it", "pl", "pt-PT", "hu", "bg", "hr", "lv", "lt", "sk", "sl", "et"))
MAX_DIGITS = 5000  # a bigint this long is formatted; longer ones are refused
_CACHE: dict[str, NumberFormat] = {}
_CACHE_MAX = 512
_SYMBOL_CHARS = re.compile(r"[\$£€¥₹₩₽₪₺₱฿₫₦₴¢﷼￥]")


@dataclass(frozen=True, slots=True)
class NumberFormat:
    locale: Locale
    tag: str
    style: str
    currency: str | None
    currency_display: str
    currency_sign: str
    notation: str
    compact_display: str
    min_int: int
    min_frac: int
    max_frac: int
    min_sig: int | None
    max_sig: int | None
    compact_rounding: bool
    grouping: str  # "auto", "always", "min2" or "false"
    sign_display: str
    rounding: str
    strip_if_integer: bool

    def resolved(self) -> dict[str, Any]:
        out: dict[str, Any] = {"locale": self.tag, "numberingSystem": "latn", "style": self.style}
        if self.currency is not None:
            out |= {"currency": self.currency, "currencyDisplay": self.currency_display}
            out["currencySign"] = self.currency_sign
        out["minimumIntegerDigits"] = self.min_int
        if self.max_sig is not None:
            out |= {"minimumSignificantDigits": self.min_sig, "maximumSignificantDigits": self.max_sig}
        elif not self.compact_rounding:
            out |= {"minimumFractionDigits": self.min_frac, "maximumFractionDigits": self.max_frac}
        out["useGrouping"] = False if self.grouping == "false" else self.grouping
        out["notation"] = self.notation
        if self.notation == "compact":
            out["compactDisplay"] = self.compact_display
        out |= {"signDisplay": self.sign_display, "roundingMode": self.rounding}
        out["trailingZeroDisplay"] = "stripIfInteger" if self.strip_if_integer else "auto"
        return out


# ---- host entry points ----------------------------------------------------------------------
def resolve(locales: Any, options: Any) -> dict[str, Any]:
    return _make(locales, options).resolved()


def format_value(locales: Any, options: Any, value: Any, parts: Any = False) -> Any:
    """Format `value`: the decimal string JS made of a number or bigint (or "NaN", "Infinity")."""
    fmt = _make(locales, options)
    out = _format(fmt, str(value))
    return out if parts else "".join(p["value"] for p in out)


# ---- options ----------------------------------------------------------------------------------
def _make(locales: Any, options: Any) -> NumberFormat:
    key = repr((locales, options))
    fmt = _CACHE.get(key)
    if fmt is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        fmt = _CACHE[key] = _build(locales, options)
    return fmt


def _build(locales: Any, options: Any) -> NumberFormat:
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise type_error("Options must be an object")
    loc = resolve_locale(locales)
    ns = options.get("numberingSystem")
    if ns is not None and str(ns) != "latn":
        raise range_error(f"the numberingSystem {ns!r} is not supported here (only latn)")
    style = _choice(options, "style", ("decimal", "percent", "currency", "unit"), "decimal")
    currency = options.get("currency")
    if currency is not None:
        currency = str(currency)
        if not re.fullmatch(r"[A-Za-z]{3}", currency):
            raise range_error(f"Invalid currency code : {currency}")
        currency = currency.upper()
    display = _choice(options, "currencyDisplay", ("code", "symbol", "narrowSymbol", "name"), "symbol")
    sign = _choice(options, "currencySign", ("standard", "accounting"), "standard")
    if options.get("unit") is not None or style == "unit":
        raise range_error("the unit style of Intl.NumberFormat is not supported here")
    if style == "currency" and currency is None:
        raise type_error("Currency code is required with currency style.")
    notation = _choice(options, "notation", ("standard", "scientific", "engineering", "compact"), "standard")
    if notation in ("scientific", "engineering"):
        raise range_error(f"the {notation} notation of Intl.NumberFormat is not supported here")
    if style == "currency":
        assert currency is not None
        fd_default = (get_currency_precision(currency),) * 2
    elif style == "percent":
        fd_default = (0, 0)
    else:
        fd_default = (0, 3)
    min_int = _digits(options, "minimumIntegerDigits", 1, 21, 1)
    mnfd = _digits(options, "minimumFractionDigits", 0, 100, None)
    mxfd = _digits(options, "maximumFractionDigits", 0, 100, None)
    mnsd = _digits(options, "minimumSignificantDigits", 1, 21, None)
    mxsd = _digits(options, "maximumSignificantDigits", 1, 21, None)
    increment = options.get("roundingIncrement")
    if increment is not None and _number(increment) != 1:
        raise range_error("the roundingIncrement option is not supported here")
    priority = _choice(options, "roundingPriority", ("auto", "morePrecision", "lessPrecision"), "auto")
    if priority != "auto":
        raise range_error("the roundingPriority option is not supported here")
    rounding = _choice(options, "roundingMode", (*_ROUNDING, "halfCeil", "halfFloor"), "halfExpand")
    if rounding in ("halfCeil", "halfFloor"):
        raise range_error(f"the roundingMode {rounding} is not supported here")
    trailing = _choice(options, "trailingZeroDisplay", ("auto", "stripIfInteger"), "auto")
    compact_display = _choice(options, "compactDisplay", ("short", "long"), "short")
    grouping_value = options.get("useGrouping")
    if grouping_value is None:
        grouping = "min2" if notation == "compact" else "auto"
    elif grouping_value is False:
        grouping = "false"
    elif grouping_value is True:
        grouping = "always"
    else:
        grouping = _choice(options, "useGrouping", ("min2", "auto", "always", "true", "false"), "auto")
        grouping = {"true": "always"}.get(grouping, grouping)
    sign_display = _choice(options, "signDisplay", ("auto", "never", "always", "exceptZero", "negative"), "auto")

    min_sig = max_sig = None
    compact_rounding = False
    if mnsd is not None or mxsd is not None:
        min_sig = mnsd if mnsd is not None else 1
        max_sig = mxsd if mxsd is not None else 21
        if min_sig > max_sig:
            raise range_error("maximumSignificantDigits value is out of range.")
        min_frac, max_frac = fd_default
    elif mnfd is not None or mxfd is not None:
        if mnfd is None:
            assert mxfd is not None
            mnfd = min(fd_default[0], mxfd)
        elif mxfd is None:
            mxfd = max(fd_default[1], mnfd)
        elif mnfd > mxfd:
            raise range_error("maximumFractionDigits value is out of range.")
        min_frac, max_frac = mnfd, mxfd
    elif notation == "compact":
        compact_rounding = True
        min_frac, max_frac = 0, 0
    else:
        min_frac, max_frac = fd_default
    return NumberFormat(
        locale=loc.babel,
        tag=loc.tag,
        style=style,
        currency=currency if style == "currency" else None,
        currency_display=display,
        currency_sign=sign,
        notation=notation,
        compact_display=compact_display,
        min_int=min_int or 1,
        min_frac=min_frac,
        max_frac=max_frac,
        min_sig=min_sig,
        max_sig=max_sig,
        compact_rounding=compact_rounding,
        grouping=grouping,
        sign_display=sign_display,
        rounding=rounding,
        strip_if_integer=trailing == "stripIfInteger",
    )


def _choice(options: dict[str, Any], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = options.get(name)
    if value is None:
        return default
    text = "true" if value is True else "false" if value is False else str(value)
    if text not in allowed:
        raise range_error(f"Value {text} out of range for Intl.NumberFormat options property {name}")
    return text


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _digits(options: dict[str, Any], name: str, lo: int, hi: int, default: int | None) -> int | None:
    value = options.get(name)
    if value is None:
        return default
    n = _number(value)
    if n != n or not lo <= n <= hi:
        raise range_error(f"{name} value is out of range.")
    return int(n)


# ---- formatting -------------------------------------------------------------------------------
def _format(fmt: NumberFormat, text: str) -> list[dict[str, str]]:
    symbols = fmt.locale.number_symbols["latn"]
    if len(text) > MAX_DIGITS:
        raise range_error(f"a number of more than {MAX_DIGITS} digits cannot be formatted here")
    try:
        value = decimal.Decimal(text.strip() or "0")
    except decimal.InvalidOperation:
        value = decimal.Decimal("NaN")
    if value.is_finite() and abs(value.adjusted()) > MAX_DIGITS:
        value = decimal.Decimal("-Infinity" if value < 0 else "Infinity") if value.adjusted() > 0 else value * 0
    negative = value.is_signed()
    parts: list[dict[str, str]] = []
    compact_suffix: tuple[str, str] | None = None
    if value.is_nan():
        number_parts = [{"type": "nan", "value": symbols["nan"]}]
        negative = False
        is_zero = False
    elif value.is_infinite():
        number_parts = [{"type": "infinity", "value": symbols["infinity"]}]
        is_zero = False
    else:
        magnitude = abs(value)
        if fmt.style == "percent":
            magnitude = magnitude.scaleb(2)
        if fmt.notation == "compact":
            magnitude, compact_suffix = _compact(fmt, magnitude)
        digits = _round(fmt, magnitude)
        is_zero = digits == 0
        number_parts = _digit_parts(fmt, digits, symbols)
        if compact_suffix is not None:
            before, after = compact_suffix
            number_parts = ([{"type": "literal", "value": before}] if before else []) + number_parts
            if after:
                number_parts.append({"type": "compact", "value": after.strip()})
                if after != after.lstrip():
                    number_parts.insert(
                        len(number_parts) - 1, {"type": "literal", "value": after[: len(after) - len(after.lstrip())]}
                    )
    show = {
        "auto": "-" if negative else "",
        "never": "",
        "always": "-" if negative else "+",
        "exceptZero": "" if is_zero or value.is_nan() else ("-" if negative else "+"),
        "negative": "-" if negative and not is_zero else "",
    }[fmt.sign_display]
    pattern_text = _pattern_text(fmt)
    pattern = parse_pattern(pattern_text)
    use_negative = show == "-" and ";" in pattern_text  # an explicit negative pattern, e.g. accounting's ( )
    prefix = pattern.prefix[1 if use_negative else 0]
    suffix = pattern.suffix[1 if use_negative else 0]
    if use_negative:
        show = ""
    currency = _currency_text(fmt, value) if fmt.style == "currency" else None
    if fmt.style == "currency" and fmt.currency_display == "name":
        unit_pattern = _unit_pattern(fmt, value)
        number_text_parts = (
            _affix_parts(prefix, symbols, None, show) + number_parts + _affix_parts(suffix, symbols, None, "")
        )
        for piece in re.split(r"(\{[01]\})", unit_pattern):
            if piece == "{0}":
                parts.extend(number_text_parts)
            elif piece == "{1}":
                parts.append({"type": "currency", "value": currency or ""})
            elif piece:
                parts.append({"type": "literal", "value": piece})
        return _merged(parts)
    parts = _affix_parts(prefix, symbols, currency, show, before_number=True) + number_parts
    parts += _affix_parts(suffix, symbols, currency, "", before_number=False)
    return _merged(parts)


def _pattern_text(fmt: NumberFormat) -> str:
    loc = fmt.locale
    if fmt.style == "percent":
        return str(loc.percent_formats[None].pattern)
    if fmt.style == "currency":
        if fmt.currency_display == "name":
            return str(loc.decimal_formats[None].pattern)
        kind = "accounting" if fmt.currency_sign == "accounting" else "standard"
        return str(loc.currency_formats[kind].pattern)
    return str(loc.decimal_formats[None].pattern)


def _currency_text(fmt: NumberFormat, value: decimal.Decimal) -> str:
    code = fmt.currency or ""
    if fmt.currency_display == "code":
        return code
    if fmt.currency_display == "name":
        count = value if value.is_finite() else 2
        return str(get_currency_name(code, count=count, locale=fmt.locale))
    if fmt.currency_display == "narrowSymbol":
        return _NARROW.get(code) or str(get_currency_symbol(code, fmt.locale))
    return str(get_currency_symbol(code, fmt.locale))


def _unit_pattern(fmt: NumberFormat, value: decimal.Decimal) -> str:
    patterns = fmt.locale._data["currency_unit_patterns"]
    form = fmt.locale.plural_form(value) if value.is_finite() else "other"
    return str(patterns.get(form) or patterns.get("other") or "{0} {1}")


def _affix_parts(
    affix: str, symbols: Any, currency: str | None, sign: str, *, before_number: bool = True
) -> list[dict[str, str]]:
    """A pattern prefix or suffix as parts; the sign goes where the pattern's minus is, else first."""
    out: list[dict[str, str]] = []
    placed = False
    for ch in affix:
        if ch == "-":
            if sign:
                out.append(_sign_part(sign, symbols))
                placed = True
        elif ch == "%":
            out.append({"type": "percentSign", "value": symbols["percentSign"]})
        elif ch == "¤":
            text = currency or ""
            out.append({"type": "currency", "value": text})
        elif ch == "‰":
            out.append({"type": "permille", "value": symbols["perMille"]})
        else:
            out.append({"type": "literal", "value": ch})
    if sign and not placed:
        out.insert(0, _sign_part(sign, symbols))
    # CLDR currency spacing: a currency ending in a letter gets a no-break space next to the digits
    if currency and out:
        edge = out[-1] if before_number else out[0]
        if edge["type"] == "currency" and edge["value"]:
            ch = edge["value"][-1] if before_number else edge["value"][0]
            if ch.isalpha() and not _SYMBOL_CHARS.match(ch):
                spacer = {"type": "literal", "value": "\u00a0"}
                if before_number:
                    out.append(spacer)
                else:
                    out.insert(0, spacer)
    return out


def _sign_part(sign: str, symbols: Any) -> dict[str, str]:
    if sign == "-":
        return {"type": "minusSign", "value": symbols["minusSign"]}
    return {"type": "plusSign", "value": symbols["plusSign"]}


def _merged(parts: list[dict[str, str]]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for p in parts:
        if p["type"] == "literal" and out and out[-1]["type"] == "literal":
            out[-1] = {"type": "literal", "value": out[-1]["value"] + p["value"]}
        elif p["value"] or p["type"] != "literal":
            out.append(p)
    return out


def _round(fmt: NumberFormat, magnitude: decimal.Decimal) -> decimal.Decimal:
    mode = _ROUNDING[fmt.rounding]
    # enough digits for the whole number and the widest fraction (a double has up to 309 + 324)
    ctx = decimal.Context(prec=2 * MAX_DIGITS + 200, rounding=mode, Emax=4 * MAX_DIGITS, Emin=-4 * MAX_DIGITS)
    if fmt.max_sig is not None:
        if magnitude == 0:
            return decimal.Decimal(0)
        exp = magnitude.adjusted() - fmt.max_sig + 1
        return magnitude.quantize(decimal.Decimal(1).scaleb(exp), rounding=mode, context=ctx)
    if fmt.compact_rounding:
        # ICU's compact rounding: two significant digits below 100, whole numbers above
        if magnitude >= 100 or magnitude == 0:
            return magnitude.quantize(decimal.Decimal(1), rounding=mode, context=ctx)
        exp = magnitude.adjusted() - 1
        return magnitude.quantize(decimal.Decimal(1).scaleb(exp), rounding=mode, context=ctx)
    return magnitude.quantize(decimal.Decimal(1).scaleb(-fmt.max_frac), rounding=mode, context=ctx)


def _digit_parts(fmt: NumberFormat, digits: decimal.Decimal, symbols: Any) -> list[dict[str, str]]:
    text = format(digits, "f")
    integer, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    if fmt.max_sig is not None:
        assert fmt.min_sig is not None
        significant = len((integer.lstrip("0") + fraction).lstrip("0")) if digits != 0 else 1
        if integer.strip("0") == "":
            significant = len(fraction.lstrip("0")) or 1
        need = fmt.min_sig - max(significant, len(integer.lstrip("0")) + len(fraction))
        if need > 0:
            fraction += "0" * need
    elif not fmt.compact_rounding:
        fraction = fraction.ljust(fmt.min_frac, "0")
    if fmt.strip_if_integer and not fraction.strip("0"):
        fraction = ""
    integer = integer.lstrip("0").rjust(fmt.min_int, "0") or "0"
    out: list[dict[str, str]] = []
    groups = _grouped(fmt, integer)
    for i, g in enumerate(groups):
        if i:
            out.append({"type": "group", "value": symbols["group"]})
        out.append({"type": "integer", "value": g})
    if fraction:
        out.append({"type": "decimal", "value": symbols["decimal"]})
        out.append({"type": "fraction", "value": fraction})
    return out


def _grouped(fmt: NumberFormat, integer: str) -> list[str]:
    if fmt.grouping == "false":
        return [integer]
    primary, secondary = parse_pattern(str(fmt.locale.decimal_formats[None].pattern)).grouping
    minimum = 1
    if fmt.grouping == "min2" or (fmt.grouping == "auto" and _min_grouping_2(fmt)):
        minimum = 2
    if len(integer) < primary + minimum:
        return [integer]
    groups = [integer[-primary:]]
    rest = integer[:-primary]
    while len(rest) > secondary:
        groups.insert(0, rest[-secondary:])
        rest = rest[:-secondary]
    if rest:
        groups.insert(0, rest)
    return groups


def _min_grouping_2(fmt: NumberFormat) -> bool:
    lang = fmt.locale.language
    full = f"{lang}-{fmt.locale.territory}" if fmt.locale.territory else lang
    return lang in _MIN_GROUPING_2 or full in _MIN_GROUPING_2


def _compact(fmt: NumberFormat, magnitude: decimal.Decimal) -> tuple[decimal.Decimal, tuple[str, str] | None]:
    """Scale by the locale's compact pattern for the magnitude: (scaled number, (text before, after))."""
    table = fmt.locale.compact_decimal_formats[fmt.compact_display]
    forms = table.get("other") or next(iter(table.values()))
    rounded = _round(fmt, magnitude) if fmt.compact_rounding else magnitude
    best: str | None = None
    for key in forms:
        if decimal.Decimal(key) <= rounded:
            if best is None or int(key) > int(best):
                best = key
    if best is None:
        return magnitude, None
    base_pattern = str(forms[best].pattern)
    zeros = base_pattern.count("0")
    if base_pattern.strip("0") == "":
        return magnitude, None  # "0": no compact form at this magnitude
    scaled = magnitude.scaleb(-(len(best) - 1) + (zeros - 1))
    plural = fmt.locale.plural_form(_round(fmt, scaled))
    chosen = table.get(plural, forms).get(best, forms[best])
    pattern = str(chosen.pattern)
    m = re.search(r"0+", pattern)
    assert m is not None
    before = pattern[: m.start()].replace("'", "")
    after = pattern[m.end() :].replace("'", "")
    return scaled, (before, after)
