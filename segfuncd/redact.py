"""Secret redaction for anything a function prints: the seed's golden rule, enforced.

Segment's docs: "never leave log statements that print entire events or settings
payloads" and "do not log ... authentication tokens". segfuncd does not trust that rule to
be followed: the values of settings named in `[functions.NAME] secret_settings`, and of
`apiKey` always ("All subscriptions have an apiKey setting by default"), are replaced by
`[redacted]` in log lines, error messages and request URLs before they are stored or shown.

Pure: plain strings in, plain strings out. Used by the delivery path (logs kept in the
store) and by admin's `/test` (logs returned to `segfuncctl test`).

Besides the raw value, the forms a function is likely to print are covered, in upper,
lower or mixed case where case can vary: the value as it appears inside a JSON string
(`console.log(JSON.stringify(settings))`); percent-encoded as a URL, encodeURIComponent,
Python or a form encodes it (a key in a query string; a key holding a space or `|` comes
out of `new URL()` half-encoded); hex; reversed; base64 of the value wherever it sits in
the encoded text (the seed builds `'Basic ' + btoa(`${settings.apiKey}:`)`; `btoa("user:" +
key)` too); and, for values of 12+ characters, any run of 8 or more of its characters (a
key printed in pieces).

What it cannot catch: a function that deliberately transforms a secret some other way
(encrypts it, interleaves it, shifts its characters, prints it 7 characters at a time)
gets it out. Redaction protects against accidents, not against a hostile function; the
README says so too.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from .config import FunctionConfig

REDACTED = "[redacted]"
# Shorter values are not redacted: replacing every "1" or "on" in a log line would destroy
# the line and protect nothing (a 3-character secret is not a secret).
MIN_SECRET_LEN = 4
# Always secret, whatever secret_settings says (Segment's default secret setting).
ALWAYS_SECRET = ("apiKey",)


def secret_values(config: FunctionConfig, settings: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The secret values of one function: `apiKey` and every setting in `secret_settings`.

    `settings` defaults to the configured ones; `segfuncctl test --settings` passes the
    effective (overridden) settings so an override's secret is redacted too. Nested tables
    and arrays contribute every string or number inside them.
    """
    settings = config.settings if settings is None else settings
    out: list[str] = []
    for name in (*ALWAYS_SECRET, *config.secret_settings):
        if name in settings:
            _leaves(settings[name], out)
    return tuple(dict.fromkeys(out))


def _leaves(value: Any, out: list[str]) -> None:
    if isinstance(value, Mapping):
        for v in value.values():
            _leaves(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _leaves(v, out)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (str, int, float)):
        out.append(str(value))


# Percent-encoding as the places a secret ends up in a URL do it: the WHATWG URL parser's
# query, path, fragment and userinfo sets (what `new URL(...).href` and so fetch's URL
# show), encodeURIComponent, Python's quote, and application/x-www-form-urlencoded
# (URLSearchParams; space becomes "+"). Matching ignores case, so %7c and %7C both count.
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_PRINTABLE = frozenset(chr(c) for c in range(0x21, 0x7F))
_KEEP_SETS = (
    _PRINTABLE - set("\"#<>'"),  # query (special schemes)
    _PRINTABLE - set('"#<>?`{}^'),  # path
    _PRINTABLE - set('"<>`'),  # fragment
    _PRINTABLE - set('"#<>?`{}/:;=@[\\]^|'),  # userinfo
    _ALNUM | set("-_.!~*'()"),  # encodeURIComponent
    _ALNUM | set("-_.~"),  # Python's quote(safe="")
)
_FORM_KEEP = _ALNUM | set("*-._")
# A secret this long or longer is also found in pieces (a function printing it in two
# halves, or reversed): any run of SPLIT_PIECE or more of its characters is redacted.
SPLIT_MIN_SECRET = 12
SPLIT_PIECE = 8


def _percent(secret: str, keep: frozenset[str] | set[str], space: str | None = None) -> str:
    out = []
    for ch in secret:
        if ch in keep:
            out.append(ch)
        elif ch == " " and space is not None:
            out.append(space)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def _folded_forms(secret: str) -> set[str]:
    """Spellings matched without regard to case: raw, JSON-escaped, percent-encoded, hex, reversed."""
    forms = {secret, secret[::-1], json.dumps(secret)[1:-1], quote(secret, safe="")}
    forms.update(_percent(secret, keep) for keep in _KEEP_SETS)
    forms.add(_percent(secret, _FORM_KEEP, space="+"))
    forms.add(secret.encode("utf-8", "surrogatepass").hex())
    return {f for f in forms if len(f) >= MIN_SECRET_LEN}


def _base64_forms(secret: str) -> set[str]:
    """Base64 of the secret wherever it sits in the encoded text (`btoa("user:" + key)`,
    `btoa(key + ":")`): for each of the three alignments, the characters that depend on the
    secret's bytes alone. Matched case-sensitively."""
    raw = secret.encode("utf-8", "surrogatepass")
    forms: set[str] = set()
    for whole in (raw, raw + b":"):
        b64 = base64.b64encode(whole).decode("ascii")
        forms.update((b64, b64.rstrip("=")))
    for skip in range(3):
        middle = raw[skip:]
        middle = middle[: len(middle) // 3 * 3]
        if len(middle) >= 6:  # 8 base64 characters or more: not a chance match
            forms.add(base64.b64encode(middle).decode("ascii"))
    return {f for f in forms if len(f) >= MIN_SECRET_LEN}


def _alternation(forms: set[str], flags: int = 0) -> re.Pattern[str] | None:
    # Longest first, so a form that contains another is replaced whole.
    ordered = sorted(forms, key=lambda f: (-len(f), f))
    return re.compile("|".join(map(re.escape, ordered)), flags) if ordered else None


class Redactor:
    """A compiled redactor for one set of secrets; `Redactor(())` changes nothing."""

    __slots__ = ("_folded", "_exact", "_pieces", "_whole")

    def __init__(self, secrets: Iterable[str]) -> None:
        folded: set[str] = set()
        exact: set[str] = set()
        grams: set[str] = set()
        whole: list[str] = []
        for s in secrets:
            if len(s) < MIN_SECRET_LEN:
                continue
            folded |= _folded_forms(s)
            exact |= _base64_forms(s)
            if len(s) >= SPLIT_MIN_SECRET:
                for text in (s.lower(), s[::-1].lower()):
                    whole.append(text)
                    grams.update(text[i : i + SPLIT_PIECE] for i in range(len(text) - SPLIT_PIECE + 1))
        self._folded = _alternation(folded, re.IGNORECASE)
        self._exact = _alternation(exact)
        self._pieces = _alternation(grams, re.IGNORECASE)
        self._whole = tuple(whole)

    def __call__(self, text: str) -> str:
        if self._folded is None or not text:
            return text
        text = self._folded.sub(REDACTED, text)
        if self._exact is not None:
            text = self._exact.sub(REDACTED, text)
        if self._pieces is not None:
            text = self._redact_pieces(text, self._pieces)
        return text

    def _redact_pieces(self, text: str, pieces: re.Pattern[str]) -> str:
        """Replace every run of SPLIT_PIECE+ characters of a secret (or its reverse), grown to its longest."""
        out: list[str] = []
        pos = 0
        lowered = text.lower()
        while (m := pieces.search(text, pos)) is not None:
            start, end = m.start(), m.end()
            while end < len(text) and any(lowered[start : end + 1] in w for w in self._whole):
                end += 1
            out.append(text[pos:start])
            out.append(REDACTED)
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def __bool__(self) -> bool:
        return self._folded is not None

    def value(self, value: Any) -> Any:
        """A JSON-like value with every string in it (keys too) redacted (the Callback Return of `test`)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {self(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, (int, float)) and not isinstance(value, bool) and self:
            shown = self(str(value))
            return value if shown == str(value) else shown
        return value


@functools.lru_cache(maxsize=256)
def redactor_for(secrets: tuple[str, ...]) -> Redactor:
    """A compiled Redactor, cached: log paths redact every line with the same few secrets."""
    return Redactor(secrets)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of a secret (in any of its printed forms) replaced."""
    return redactor_for(tuple(secrets))(text)
