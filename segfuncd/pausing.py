"""Paused functions: `segfuncctl pause NAME` holds a function's events, `resume NAME` lets them go.

A paused function keeps accepting events; it is in FunctionState.PAUSED (functions.py), so
it has no runnable version and the dispatcher holds its deliveries with the reason, with no
attempt used, as for a function that cannot load; `status` shows it as `paused`. The set
lives in SQLite (`paused_functions`), so a pause survives restarts; this object keeps a copy
in memory for the per-lease lookup. Resume wakes the held deliveries, so they are due at once.
"""

from __future__ import annotations

from typing import Protocol

PAUSED_REASON = "function is paused (segfuncctl resume {name} delivers its events)"


class _Store(Protocol):
    async def set_paused(self, function: str, paused: bool) -> bool: ...

    async def paused(self) -> frozenset[str]: ...

    async def wake(self, function: str) -> int: ...


class Pauses:
    """The paused functions, in SQLite and mirrored in memory."""

    def __init__(self, store: _Store) -> None:
        self._store = store
        self._names: frozenset[str] = frozenset()

    async def load(self) -> None:
        """Read the paused set (at start)."""
        self._names = await self._store.paused()

    def __contains__(self, function: object) -> bool:
        return function in self._names

    @property
    def names(self) -> frozenset[str]:
        return self._names

    async def pause(self, function: str) -> bool:
        """Hold `function`'s events; False when it already was paused."""
        changed = await self._store.set_paused(function, True)
        self._names = self._names | {function}
        return changed

    async def resume(self, function: str) -> int | None:
        """Let `function`'s events go; how many held deliveries became due (None: it was not paused)."""
        changed = await self._store.set_paused(function, False)
        self._names = self._names - {function}
        if not changed:
            return None
        return await self._store.wake(function)
