"""What Intl.DateTimeFormat and Intl.NumberFormat share: locale negotiation and time zones.

Locales are BCP 47 tags matched against Babel's CLDR data (the first requested tag Babel knows,
else its language, else the default `en-US`, which is what Segment's Lambda runtime reports).
Unicode extensions other than the Gregorian calendar and Latin digits are refused with a
RangeError rather than ignored. Time zones are IANA names read with the standard library's
zoneinfo, matched case-insensitively as ECMA-402 does; the UTC aliases become "UTC".
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError

from .common import JSError

DEFAULT_LOCALE = "en-US"
DEFAULT_TIME_ZONE = "UTC"  # Segment's runtime (AWS Lambda) runs in UTC
_UTC_ALIASES = frozenset(
    ("utc", "etc/utc", "etc/gmt", "gmt", "etc/universal", "etc/zulu", "zulu", "universal", "etc/uct", "uct", "etc/gmt0")
    + ("etc/gmt+0", "etc/gmt-0", "etc/greenwich", "greenwich", "gmt0", "gmt+0", "gmt-0")
)
_TAG = re.compile(
    r"^[a-z]{2,3}(-[a-z]{4})?(-(?:[a-z]{2}|[0-9]{3}))?(-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*"
    r"((?:-[0-9a-wyz](?:-[a-z0-9]{2,8})+)*)(-x(?:-[a-z0-9]{1,8})+)?$",
    re.IGNORECASE,
)


def range_error(message: str) -> JSError:
    return JSError("RangeError", message, None)


def type_error(message: str) -> JSError:
    return JSError("TypeError", message, None)


@dataclass(frozen=True, slots=True)
class ResolvedLocale:
    tag: str  # what resolvedOptions().locale says
    babel: Locale
    hour_cycle: str | None  # from a -u-hc- extension


def canonical_tags(locales: Any) -> list[str]:
    """Intl.getCanonicalLocales: validated, case-normalised, duplicates dropped."""
    if locales is None:
        return []
    items = [locales] if isinstance(locales, str) else locales
    if not isinstance(items, list):
        raise type_error("Incorrect locale information provided")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise type_error("Language ID should be string or object.")
        tag = _canonical(item)
        if tag not in out:
            out.append(tag)
    return out


def _canonical(tag: str) -> str:
    if not _TAG.match(tag):
        raise range_error("Incorrect locale information provided")
    parts = tag.split("-")
    out = [parts[0].lower()]
    for i, p in enumerate(parts[1:], 1):
        if len(parts[i - 1]) == 1:  # an extension's content
            out.append(p.lower())
        elif len(p) == 4 and p.isalpha() and i == 1:
            out.append(p.title())
        elif len(p) == 2 and p.isalpha():
            out.append(p.upper())
        else:
            out.append(p.lower())
    return "-".join(out)


def resolve_locale(locales: Any) -> ResolvedLocale:
    return _resolve(tuple(canonical_tags(locales)))


@lru_cache(maxsize=256)
def _resolve(tags: tuple[str, ...]) -> ResolvedLocale:
    for tag in tags:
        base, ext = _split_extension(tag)
        found = _babel_locale(base)
        if found is None:
            continue
        keys = _unicode_keys(ext)
        if keys.get("ca", "gregory") not in ("gregory", "gregorian"):
            raise range_error(f"the calendar {keys['ca']!r} ({tag}) is not supported here: only gregory")
        if keys.get("nu", "latn") != "latn":
            raise range_error(f"the numbering system {keys['nu']!r} ({tag}) is not supported here: only latn")
        hc = keys.get("hc")
        return ResolvedLocale(
            tag=found[0], babel=found[1], hour_cycle=hc if hc in ("h11", "h12", "h23", "h24") else None
        )
    babel_default = _babel_locale(DEFAULT_LOCALE)
    assert babel_default is not None
    return ResolvedLocale(tag=DEFAULT_LOCALE, babel=babel_default[1], hour_cycle=None)


def _split_extension(tag: str) -> tuple[str, str]:
    m = re.search(r"-[0-9a-wyz]-|-x-", tag)
    return (tag[: m.start()], tag[m.start() :]) if m else (tag, "")


def _unicode_keys(ext: str) -> dict[str, str]:
    m = re.search(r"(?:^|-)u((?:-[a-z0-9]{2,8})+)", ext)
    if not m:
        return {}
    keys: dict[str, str] = {}
    key = None
    for sub in m.group(1).split("-")[1:]:
        if len(sub) == 2:
            key = sub
            keys[key] = ""
        elif key is not None:
            keys[key] = (keys[key] + "-" + sub).strip("-")
    return keys


def _babel_locale(base: str) -> tuple[str, Locale] | None:
    """The tag as available in CLDR (the full tag, else its language) and Babel's Locale for it."""
    parts = base.split("-")
    for cut in range(len(parts), 0, -1):
        tag = "-".join(parts[:cut])
        try:
            return tag, _locale(tag)
        except (UnknownLocaleError, ValueError):
            continue
    return None


@cache
def _locale(tag: str) -> Locale:
    loc = Locale.parse(tag, sep="-")
    if loc.territory and loc.territory not in loc.territories:
        raise ValueError(tag)
    return loc


def supported(locales: Any) -> list[str]:
    """Intl.X.supportedLocalesOf: the requested tags CLDR has data for."""
    return [t for t in canonical_tags(locales) if _babel_locale(_split_extension(t)[0]) is not None]


# ---- time zones ----------------------------------------------------------------------------
@cache
def _zones() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def resolve_time_zone(value: Any) -> str:
    if value is None:
        return DEFAULT_TIME_ZONE
    name = str(value)
    if name.lower() in _UTC_ALIASES:
        return "UTC"
    found = _zones().get(name.lower())
    if found is None:
        raise range_error(f"Invalid time zone specified: {name}")
    return found


@cache
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo("UTC" if name == "UTC" else name)
