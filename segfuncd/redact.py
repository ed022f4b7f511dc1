"""Secret redaction for anything a function prints: the seed's golden rule, enforced.

Segment's docs: "never leave log statements that print entire events or settings
payloads" and "do not log ... authentication tokens". segfuncd does not trust that rule to
be followed: the values of settings named in `[functions.NAME] secret_settings`, and of
`apiKey` always ("All subscriptions have an apiKey setting by default"), are replaced by
`[redacted]` in log lines, error messages and request URLs before they are stored or shown.

Pure: plain strings in, plain strings out. Used by the delivery path (logs kept in the
store) and by admin's `/test` (logs returned to `segfuncctl test`).

Besides the raw value, the forms a function is likely to print are covered: the value as
it appears inside a JSON string (`console.log(JSON.stringify(settings))`), percent-encoded
(a key in a query string), and base64 of `value` and of `value:` (the seed's own example
builds `'Basic ' + btoa(`${settings.apiKey}:`)`).
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


def _forms(secret: str) -> set[str]:
    """The spellings of `secret` a log line may contain."""
    forms = {secret, json.dumps(secret)[1:-1], quote(secret, safe="")}
    for raw in (secret, secret + ":"):
        b64 = base64.b64encode(raw.encode("utf-8")).decode("ascii")
        forms.add(b64)
        forms.add(b64.rstrip("="))
    return {f for f in forms if len(f) >= MIN_SECRET_LEN}


class Redactor:
    """A compiled redactor for one set of secrets; `Redactor(())` changes nothing."""

    __slots__ = ("_pattern",)

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for s in secrets:
            if len(s) >= MIN_SECRET_LEN:
                forms |= _forms(s)
        # Longest first, so a secret that contains another is replaced whole.
        ordered = sorted(forms, key=lambda f: (-len(f), f))
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(REDACTED, text)

    def __bool__(self) -> bool:
        return self._pattern is not None


@functools.lru_cache(maxsize=256)
def redactor_for(secrets: tuple[str, ...]) -> Redactor:
    """A compiled Redactor, cached: log paths redact every line with the same few secrets."""
    return Redactor(secrets)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of a secret (in any of its printed forms) replaced."""
    return redactor_for(tuple(secrets))(text)
