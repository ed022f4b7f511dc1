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
key)` too); and, for values of 12+ characters, any run of 7 or more of its characters (a
key printed in pieces).

What it cannot catch: a function that deliberately transforms a secret some other way
(encrypts it, interleaves it, shifts its characters, prints it 6 characters at a time)
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
# halves, or reversed): any run of SPLIT_PIECE or more of its characters is redacted. Runs
# are found through the secret's GRAM-character pieces at offsets 0, GRAM, 2*GRAM, ...
# (any run of 2*GRAM-1 characters holds one), grown both ways: few patterns, so it is cheap.
SPLIT_MIN_SECRET = 12
GRAM = 4
SPLIT_PIECE = 2 * GRAM - 1
_RUN = "1" * SPLIT_PIECE


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
    """A compiled redactor for one set of secrets; `Redactor(())` changes nothing.

    Case-insensitive forms are matched case-sensitively against the lower-cased text (Python's
    `re` is ~15x slower with IGNORECASE over many alternatives), then cut from the original.
    """

    __slots__ = ("_folded", "_exact", "_grams", "_whole", "_folded_ci", "_folded_forms", "_exact_forms", "_members")

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
                    grams.update(text[i : i + GRAM] for i in range(0, len(text) - GRAM + 1, GRAM))
        folded_low = {f.lower() for f in folded}
        self._folded = _alternation(folded_low)
        self._exact = _alternation(exact)
        # `in` per form first: C substring searches, ~3x cheaper than one regex alternation
        # over the text when nothing matches (the common case: an attempt record per event)
        self._folded_forms = tuple(folded_low)
        self._exact_forms = tuple(exact)
        self._grams = tuple(sorted(grams))
        self._whole = tuple(whole)
        # a character of some long secret -> "1", other ASCII -> "0" (the rest stay as they
        # are): a text without SPLIT_PIECE such characters in a row holds no piece
        chars = set("".join(whole))
        self._members = {c: "1" if chr(c) in chars else "0" for c in range(128)}
        self._members.update((ord(c), "1") for c in chars)  # a secret's non-ASCII characters too
        # for text whose lower-casing changes its length (rare non-ASCII): slower, same result
        self._folded_ci = _alternation(folded, re.IGNORECASE)

    def __call__(self, text: str) -> str:
        if self._folded is None or not text:
            return text
        low = text.lower()
        if len(low) != len(text):
            assert self._folded_ci is not None
            text = self._folded_ci.sub(REDACTED, text)
        elif any(f in low for f in self._folded_forms):
            text = _cut(text, [m.span() for m in self._folded.finditer(low)])
        if self._exact is not None and any(f in text for f in self._exact_forms):
            text = self._exact.sub(REDACTED, text)
        if self._grams:
            low = text.lower()
            if len(low) != len(text):  # keep positions aligned: pieces of the ASCII-folded text
                low = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
            # ~2 µs per KB; a piece of a secret lies within a run of the secret's characters,
            # so the grams are looked for in those runs only (a long ID like "xxxxxxxx" is a
            # run; finding 12 grams in the whole KB of an attempt record cost ~10 µs)
            marks = low.translate(self._members)
            at = marks.find(_RUN)
            if at >= 0:
                spans: list[tuple[int, int]] = []
                while at >= 0:
                    end = len(marks) - len(marks[at:].lstrip("1"))
                    spans += [(at + a, at + b) for a, b in self._piece_spans(low[at:end])]
                    at = marks.find(_RUN, end)
                text = _cut(text, spans)
        return text

    def _piece_spans(self, low: str) -> list[tuple[int, int]]:
        """Every run of SPLIT_PIECE+ characters of a secret (or its reverse) in the lower-cased
        text, grown to its longest. str.find per gram: a few C scans, no regex alternation."""
        hits: list[tuple[int, int]] = []
        for gram in self._grams:
            at = low.find(gram)
            while at >= 0:
                start, end = at, at + len(gram)
                while start > 0 and any(low[start - 1 : end] in w for w in self._whole):
                    start -= 1
                while end < len(low) and any(low[start : end + 1] in w for w in self._whole):
                    end += 1
                if end - start >= SPLIT_PIECE:
                    hits.append((start, end))
                at = low.find(gram, at + 1)
        if not hits:
            return hits
        hits.sort()
        merged = [hits[0]]
        for start, end in hits[1:]:
            if start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged

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


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with each (non-overlapping, ordered) span replaced by REDACTED."""
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for start, end in spans:
        out.append(text[pos:start])
        out.append(REDACTED)
        pos = end
    out.append(text[pos:])
    return "".join(out)


@functools.lru_cache(maxsize=256)
def redactor_for(secrets: tuple[str, ...]) -> Redactor:
    """A compiled Redactor, cached: log paths redact every line with the same few secrets."""
    return Redactor(secrets)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of a secret (in any of its printed forms) replaced."""
    return redactor_for(tuple(secrets))(text)
