"""A destination function by name: the rules about names that match nothing. Pure.

Rules:
  * A `[functions.NAME]` table with no plugin file NAME.js is a warning (in the log at start
    and on each reload, and in `status`), not an error: the file may be on its way. When a
    plugin with a close name exists the warning says "did you mean", because a typo would
    otherwise run the real function with empty settings.
  * A function name given to `logs`, `deliveries`, `replay` or `test` that the daemon has
    never heard of (no plugin, no config table, nothing in the store) is the caller's
    mistake: UnknownFunction, which segfuncctl reports with exit status 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import SegfuncdError


class UnknownFunction(SegfuncdError):
    """A function name that matches no plugin, config table or stored delivery (caller's mistake)."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        names = sorted(set(known))
        hint = did_you_mean(name, names)
        message = f"no function named {name!r}"
        if hint:
            message += f" (did you mean {hint!r}?)"
        message += f"; functions: {', '.join(names) or 'none'}"
        super().__init__(message)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to `name`, when one is close enough to be a likely typo."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigWarning:
    """A `[functions.NAME]` table that matches no plugin file."""

    function: str
    did_you_mean: str | None
    message: str


def tables_without_plugin(
    tables: Iterable[str], plugins: Iterable[str], *, source: str, plugins_dir: str
) -> list[ConfigWarning]:
    """A warning per config table in `tables` that has no plugin among `plugins`."""
    present = sorted(set(plugins))
    out = []
    for name in sorted(set(tables) - set(present)):
        hint = did_you_mean(name, present)
        message = f"{source}: [functions.{name}] matches no plugin file {name}.js in {plugins_dir}"
        if hint:
            message += f"; did you mean [functions.{hint}]?"
        out.append(ConfigWarning(function=name, did_you_mean=hint, message=message))
    return out
