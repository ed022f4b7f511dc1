"""Intl.DateTimeFormat and Date#toLocale(Date|Time)String, as Node 20's ICU answers them, on Babel.

Options are read and checked as ECMA-402's CreateDateTimeFormat does (RangeError naming the
option, TypeError for dateStyle mixed with components), then turned into a pattern:
* dateStyle / timeStyle take CLDR's date and time formats, joined by the locale's date-time glue
  (the "at" form for full and long dates, as ICU 72+ does; Babel lacks it, see _AT_TIME);
* components become a skeleton matched against CLDR's availableFormats the way ICU's
  DateTimePatternGenerator does (same fields, closest widths, then widths adjusted), date and
  time matched apart and joined when no single pattern has both.
Each field is then formatted by Babel in the requested zone (zoneinfo), except fractional seconds
and offsets, which ICU writes differently from Babel and are written here. Unsupported options
(another calendar or numbering system, dayPeriod) are a RangeError, never silently ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from babel import Locale
from babel.dates import format_datetime, get_timezone_name

from .intl_locale import range_error, resolve_locale, resolve_time_zone, type_error, zone

_CHOICES: dict[str, tuple[str, ...]] = {
    "weekday": ("narrow", "short", "long"),
    "era": ("narrow", "short", "long"),
    "year": ("2-digit", "numeric"),
    "month": ("2-digit", "numeric", "narrow", "short", "long"),
    "day": ("2-digit", "numeric"),
    "dayPeriod": ("narrow", "short", "long"),
    "hour": ("2-digit", "numeric"),
    "minute": ("2-digit", "numeric"),
    "second": ("2-digit", "numeric"),
    "timeZoneName": ("short", "long", "shortOffset", "longOffset", "shortGeneric", "longGeneric"),
}
_COMPONENTS = (*_CHOICES, "fractionalSecondDigits")
_DATE_FIELDS = ("weekday", "year", "month", "day")
_TIME_FIELDS = ("dayPeriod", "hour", "minute", "second", "fractionalSecondDigits")
_STYLES = ("full", "long", "medium", "short")
_SKELETON = {
    "era": {"narrow": "GGGGG", "short": "G", "long": "GGGG"},
    "year": {"2-digit": "yy", "numeric": "y"},
    "month": {"2-digit": "MM", "numeric": "M", "narrow": "MMMMM", "short": "MMM", "long": "MMMM"},
    "weekday": {"narrow": "EEEEE", "short": "EEE", "long": "EEEE"},
    "day": {"2-digit": "dd", "numeric": "d"},
    "minute": {"2-digit": "mm", "numeric": "m"},
    "second": {"2-digit": "ss", "numeric": "s"},
    "timeZoneName": {
        "short": "z",
        "long": "zzzz",
        "shortOffset": "O",
        "longOffset": "OOOO",
        "shortGeneric": "v",
        "longGeneric": "vvvv",
    },
}
_HC_CHAR = {"h11": "K", "h12": "h", "h23": "H", "h24": "k"}
_CHAR_HC = {v: k for k, v in _HC_CHAR.items()}
# CLDR's dateTimeFormats-atTime (ICU 72+ joins full and long dates with them); Babel does not ship
# them, so the common languages' are here (CLDR 48). Others use the plain glue.
_AT_TIME = {"en": "{1} 'at' {0}", "de": "{1} 'um' {0}", "fr": "{1} 'à' {0}"}
_PART_TYPES = {
    "G": "era",
    "y": "year",
    "Y": "year",
    "M": "month",
    "L": "month",
    "d": "day",
    "E": "weekday",
    "c": "weekday",
    "a": "dayPeriod",
    "b": "dayPeriod",
    "B": "dayPeriod",
    "h": "hour",
    "H": "hour",
    "K": "hour",
    "k": "hour",
    "m": "minute",
    "s": "second",
    "S": "fractionalSecond",
    "z": "timeZoneName",
    "O": "timeZoneName",
    "v": "timeZoneName",
    "V": "timeZoneName",
}
_FIELD_RE = re.compile(r"'(?:[^']|'')*'|([A-Za-z])\1*|[^A-Za-z']+")
MIN_YEAR, MAX_YEAR = 1, 9999  # what Python's datetime holds
_CACHE_MAX = 512


@dataclass(frozen=True, slots=True)
class DateFormat:
    """A resolved DateTimeFormat: the pattern to apply and what resolvedOptions() reports."""

    locale: Locale
    time_zone: str
    pattern: str
    resolved: dict[str, Any]


_CACHE: dict[str, DateFormat] = {}


# ---- host entry points (builtins/__init__.py) -------------------------------------------
def resolve(locales: Any, options: Any, required: Any = "any", defaults: Any = "date") -> dict[str, Any]:
    """resolvedOptions() of `new Intl.DateTimeFormat(locales, options)` (toLocale*String: other defaults)."""
    return _make(locales, options, str(required), str(defaults)).resolved


def format_ms(locales: Any, options: Any, required: Any, defaults: Any, ms: Any, parts: Any = False) -> Any:
    """Format one instant (ms since the epoch); parts=True gives formatToParts' list."""
    fmt = _make(locales, options, str(required), str(defaults))
    if not isinstance(ms, int | float) or isinstance(ms, bool) or ms != ms or abs(ms) > 8.64e15:
        raise range_error("Invalid time value")
    out = _format(fmt, float(ms))
    if parts:
        return out
    # V8's format() writes a plain space where CLDR 42+ has U+202F (before AM/PM); formatToParts keeps it
    return "".join(p["value"] for p in out).replace("\u202f", " ")


# ---- options -> pattern -------------------------------------------------------------------
def _make(locales: Any, options: Any, required: str, defaults: str) -> DateFormat:
    key = repr((locales, options, required, defaults))
    fmt = _CACHE.get(key)
    if fmt is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        fmt = _CACHE[key] = _build(locales, options, required, defaults)
    return fmt


def _build(locales: Any, options: Any, required: str, defaults: str) -> DateFormat:
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise type_error("Options must be an object")
    loc = resolve_locale(locales)
    for name in ("calendar", "numberingSystem"):
        value = options.get(name)
        if value is not None and str(value) not in ("gregory", "latn"):
            raise range_error(f"the {name} {value!r} is not supported here (only gregory calendar, latn digits)")
    hour12 = options.get("hour12")
    hc_option = _choice(options, "hourCycle", ("h11", "h12", "h23", "h24"))
    tz = resolve_time_zone(options.get("timeZone"))
    chosen: dict[str, Any] = {}
    for name in _CHOICES:
        value = _choice(options, name, _CHOICES[name])
        if value is not None:
            chosen[name] = value
    fsd = options.get("fractionalSecondDigits")
    if fsd is not None:
        n = _number(fsd)
        if not 1 <= n <= 3:
            raise range_error("fractionalSecondDigits value is out of range.")
        chosen["fractionalSecondDigits"] = int(n)
    date_style = _choice(options, "dateStyle", _STYLES)
    time_style = _choice(options, "timeStyle", _STYLES)
    if "dayPeriod" in chosen:
        raise range_error("the dayPeriod option is not supported here")
    if date_style or time_style:
        for name in _COMPONENTS:
            if name in chosen:
                raise type_error(f"Can't set option {name} when {'dateStyle' if date_style else 'timeStyle'} is used")
        if required == "date" and time_style:
            raise type_error("Invalid option : timeStyle")
        if required == "time" and date_style:
            raise type_error("Invalid option : dateStyle")
    else:
        need = True
        if required in ("date", "any") and any(f in chosen for f in _DATE_FIELDS):
            need = False
        if required in ("time", "any") and any(f in chosen for f in _TIME_FIELDS):
            need = False
        if need and defaults in ("date", "all"):
            chosen.update(year="numeric", month="numeric", day="numeric")
        if need and defaults in ("time", "all"):
            chosen.update(hour="numeric", minute="numeric", second="numeric")

    default_char = _default_hour_char(loc.babel)
    hc: str | None = hc_option or loc.hour_cycle
    if hour12 is not None:
        hc = _CHAR_HC[_twelve_hour_char(loc.babel)] if hour12 else ("h24" if default_char == "k" else "h23")
    if date_style or time_style:
        pattern = _style_pattern(loc.babel, date_style, time_style, hc)
    else:
        pattern = _component_pattern(loc.babel, chosen, hc, default_char)
    resolved: dict[str, Any] = {
        "locale": loc.tag,
        "calendar": "gregory",
        "numberingSystem": "latn",
        "timeZone": tz,
    }
    hour_char = next((c for c in _fields(pattern) if c in "hHkK"), None)
    if hour_char is not None:
        resolved["hourCycle"] = _CHAR_HC[hour_char]
        resolved["hour12"] = hour_char in "hK"
    for name in _COMPONENTS:
        if name in chosen:
            resolved[name] = chosen[name]
    if hour_char is not None and "minute" in resolved:
        resolved["minute"] = "2-digit"
    if "second" in resolved and "minute" in resolved:
        resolved["second"] = "2-digit"
    if date_style:
        resolved["dateStyle"] = date_style
    if time_style:
        resolved["timeStyle"] = time_style
    return DateFormat(locale=loc.babel, time_zone=tz, pattern=pattern, resolved=resolved)


def _choice(options: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = options.get(name)
    if value is None:
        return None
    text = "true" if value is True else "false" if value is False else str(value)
    if text not in allowed:
        raise range_error(f"Value {text} out of range for Intl.DateTimeFormat options property {name}")
    return text


def _number(value: Any) -> float:
    try:
        n = float(value)
    except (TypeError, ValueError):
        n = float("nan")
    if n != n:
        raise range_error("fractionalSecondDigits value is out of range.")
    return n


def _default_hour_char(locale: Locale) -> str:
    """The hour letter the locale's short time uses (CLDR's preferred `j`)."""
    return next((c for c in _fields(str(locale.time_formats["short"].pattern)) if c in "hHkK"), "H")


def _twelve_hour_char(locale: Locale) -> str:
    skeleton = locale.datetime_skeletons.get("hm")
    pattern = str(skeleton.pattern) if skeleton is not None else "h:mm a"
    return next((c for c in _fields(pattern) if c in "hK"), "h")


def _fields(pattern: str) -> list[str]:
    return [m.group(1) for m in _FIELD_RE.finditer(pattern) if m.group(1)]


def _style_pattern(locale: Locale, date_style: str | None, time_style: str | None, hc: str | None) -> str:
    date = str(locale.date_formats[date_style].pattern) if date_style else None
    time = str(locale.time_formats[time_style].pattern) if time_style else None
    if time is not None and hc is not None:
        time = _with_hour_cycle(time, _HC_CHAR[hc])
    if date is None:
        assert time is not None
        return time
    if time is None:
        return date
    return _glue(locale, date_style or "short").replace("{1}", date).replace("{0}", time)


def _glue(locale: Locale, style: str) -> str:
    if style in ("full", "long") and locale.language in _AT_TIME:
        return _AT_TIME[locale.language]
    return str(locale.datetime_formats.get(style, "{1} {0}"))


def _with_hour_cycle(pattern: str, char: str) -> str:
    """Hour letters replaced by `char`; a 24-hour pattern loses its day period."""
    out = []
    for m in _FIELD_RE.finditer(pattern):
        text = m.group(0)
        if m.group(1) and m.group(1) in "hHkK":
            text = char * len(text)
        elif m.group(1) == "a" and char in "Hk":
            text = ""
        out.append(text)
    return re.sub(r"[\s\u202f\u00a0]+$", "", re.sub(r"^[\s\u202f\u00a0]+", "", "".join(out)))


def _component_pattern(locale: Locale, chosen: dict[str, Any], hc: str | None, default_char: str) -> str:
    hour_char = _HC_CHAR[hc] if hc is not None else default_char
    want: dict[str, str] = {}  # field class -> requested skeleton run ("MMM", "HH", "zzzz")
    frac = None
    for name, value in chosen.items():
        if name == "hour":
            want[_CLASS.get(hour_char, hour_char)] = hour_char * (2 if value == "2-digit" else 1)
        elif name == "fractionalSecondDigits":
            frac = int(value)
        else:
            code = _SKELETON[name][value]
            want[_CLASS.get(code[0], code[0])] = code
    date_want = {k: v for k, v in want.items() if k in "GyME" or k == "d"}
    time_want = {k: v for k, v in want.items() if k not in date_want}
    whole = _best(locale, want) if date_want and time_want else None
    if whole is None:
        date_pattern = _best(locale, date_want) if date_want else None
        time_pattern = _best(locale, time_want) if time_want else None
        if date_pattern and time_pattern:
            month = len(date_want.get("M", ""))
            style = ("full" if "E" in date_want else "long") if month >= 4 else "medium" if month == 3 else "short"
            whole = _glue(locale, style).replace("{1}", date_pattern).replace("{0}", time_pattern)
        else:
            whole = date_pattern or time_pattern or ""
    if hc is not None:
        whole = _replace_hour_letters(whole, _HC_CHAR[hc])
    if frac is not None:
        whole = _with_fraction(whole, frac)
    return whole


# skeleton letters by field class: standalone forms, hour cycles and zone styles compare alike
_CLASS = {"L": "M", "c": "E", "e": "E", "K": "h", "k": "H", "v": "z", "O": "z", "V": "z"}
_ZONE_KIND = {"z": 0, "v": 1, "O": 2}


def _runs(pattern: str) -> list[tuple[str, str]]:
    """(class, run) for each field of a pattern or skeleton (quoted text and the day period skipped)."""
    out = []
    for m in _FIELD_RE.finditer(pattern):
        if m.group(1) and m.group(1) not in "abB":
            out.append((_CLASS.get(m.group(1), m.group(1)), m.group(0)))
    return out


@lru_cache(maxsize=64)
def _candidates(locale: Locale) -> list[tuple[dict[str, str], str]]:
    """ICU's DateTimePatternGenerator inputs: CLDR's date and time formats (as their own skeletons)
    first, then availableFormats."""
    found: dict[tuple[tuple[str, str], ...], tuple[dict[str, str], str]] = {}
    for formats in (locale.date_formats, locale.time_formats):
        for style in _STYLES:
            pattern = str(formats[style].pattern)
            runs = _runs(pattern)
            found.setdefault(tuple(sorted(runs)), (dict(runs), pattern))
    for skeleton, pattern in locale.datetime_skeletons.items():
        if "B" not in skeleton and "b" not in skeleton:
            runs = _runs(skeleton)  # availableFormats replace a format of the very same skeleton
            found[tuple(sorted(runs))] = (dict(runs), str(pattern.pattern))
    return list(found.values())


def _distance(cls: str, want: str, have: str) -> int:
    if cls == "z":
        kind = abs(_ZONE_KIND.get(want[0], 0) - _ZONE_KIND.get(have[0], 0))
        return 0x10 * kind + ((len(want) >= 4) != (len(have) >= 4))
    if cls == "M" and (len(want) > 2) != (len(have) > 2):
        return 0x100
    if cls in "EG":  # 1 to 3 letters are all the abbreviated form
        return abs(max(len(want), 3) - max(len(have), 3))
    return abs(len(want) - len(have))


def _best(locale: Locale, want: dict[str, str]) -> str | None:
    """ICU's best pattern: the same fields at the nearest widths (CLDR's own formats win ties), then
    each field the matched skeleton had at another width than asked is set to the asked width."""
    best: tuple[int, dict[str, str], str] | None = None
    for have, pattern in _candidates(locale):
        if set(have) != set(want):
            continue
        distance = sum(_distance(cls, want[cls], have[cls]) for cls in want)
        if best is None or distance < best[0]:
            best = (distance, have, pattern)
    if best is None:
        return None
    distance, have, pattern = best
    if distance == 0:
        return pattern
    out = []
    for m in _FIELD_RE.finditer(pattern):
        text, letter = m.group(0), m.group(1)
        cls = _CLASS.get(letter, letter) if letter else None
        if cls is not None and cls in want and cls not in "ms":
            asked, had = want[cls], have[cls]
            if cls == "z":
                text = asked
            elif len(asked) != len(had) and not (cls == "M" and (len(asked) > 2) != (len(text) > 2)):
                text = letter * len(asked)
        out.append(text)
    return "".join(out)


def _replace_hour_letters(pattern: str, char: str) -> str:
    out = []
    for m in _FIELD_RE.finditer(pattern):
        text = m.group(0)
        if m.group(1) and m.group(1) in "hHkK" and m.group(1) != char:
            text = char * len(text)
        out.append(text)
    return "".join(out)


def _with_fraction(pattern: str, digits: int) -> str:
    """Fractional seconds right after the seconds field (ICU appends them there), else at the end."""
    out = []
    done = False
    for m in _FIELD_RE.finditer(pattern):
        out.append(m.group(0))
        if m.group(1) == "s" and not done:
            out.append("{decimal}" + "S" * digits)
            done = True
    return "".join(out) if done else "".join(out) + " " + "S" * digits


# ---- pattern -> text ------------------------------------------------------------------------
def _format(fmt: DateFormat, ms: float) -> list[dict[str, str]]:
    try:
        instant = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
    except OverflowError:
        raise range_error(f"dates before year {MIN_YEAR} or after {MAX_YEAR} cannot be formatted here") from None
    local = instant.astimezone(zone(fmt.time_zone))
    if not MIN_YEAR <= local.year <= MAX_YEAR:
        raise range_error(f"dates before year {MIN_YEAR} or after {MAX_YEAR} cannot be formatted here")
    parts: list[dict[str, str]] = []
    pattern = fmt.pattern.replace("{decimal}", "'" + fmt.locale.number_symbols["latn"]["decimal"] + "'")
    for m in _FIELD_RE.finditer(pattern):
        text, letter = m.group(0), m.group(1)
        if letter:
            value = _field(fmt, local, ms, letter, len(text))
            _add(parts, _PART_TYPES.get(letter, "literal"), value)
        elif text.startswith("'"):
            _add(parts, "literal", text[1:-1].replace("''", "'") if text != "''" else "'")
        else:
            _add(parts, "literal", text)
    return parts


def _add(parts: list[dict[str, str]], kind: str, value: str) -> None:
    if kind == "literal" and parts and parts[-1]["type"] == "literal":
        parts[-1]["value"] += value
    elif value or kind != "literal":
        parts.append({"type": kind, "value": value})


def _field(fmt: DateFormat, local: dt.datetime, ms: float, letter: str, width: int) -> str:
    if letter == "S":
        millis = int(ms % 1000)
        return f"{millis:03d}"[:width]
    if letter in "zOv":
        return _zone_text(fmt, local, letter, width)
    return str(format_datetime(local, letter * width, tzinfo=local.tzinfo, locale=fmt.locale))


def _zone_text(fmt: DateFormat, local: dt.datetime, letter: str, width: int) -> str:
    offset = local.utcoffset() or dt.timedelta(0)
    if letter == "O" or (letter == "z" and width < 4 and fmt.time_zone != "UTC"):
        short = _short_name(fmt, local) if letter == "z" else None
        if short:
            return short
        return _gmt(fmt.locale, offset, long=letter == "O" and width == 4)
    if letter == "z" and width < 4:
        return "UTC"
    variant = "generic" if letter == "v" else None
    try:
        if variant:
            return str(
                get_timezone_name(local, "long" if width == 4 else "short", locale=fmt.locale, zone_variant="generic")
            )
        return str(get_timezone_name(local, "long", locale=fmt.locale))
    except (LookupError, ValueError):
        return _gmt(fmt.locale, offset, long=False)


def _short_name(fmt: DateFormat, local: dt.datetime) -> str | None:
    """The locale's abbreviation for the zone (EDT in en-US, MESZ in de), when CLDR has one."""
    name = str(get_timezone_name(local, "short", locale=fmt.locale))
    # Babel falls back to offsets or long names where CLDR has no abbreviation; ICU writes GMT+h then
    return name if re.fullmatch(r"[^\W\d_]{2,6}", name) and not name.startswith(("GMT", "UTC")) else None


def _gmt(locale: Locale, offset: dt.timedelta, *, long: bool) -> str:
    total = int(offset.total_seconds() // 60)
    sign = "+" if total >= 0 else "-"
    hours, minutes = divmod(abs(total), 60)
    if long:
        body = f"{sign}{hours:02d}:{minutes:02d}"
    else:
        body = f"{sign}{hours}" + (f":{minutes:02d}" if minutes else "")
    gmt = str(locale.zone_formats.get("gmt", "GMT%s"))
    return gmt % body if "%s" in gmt else "GMT" + body
