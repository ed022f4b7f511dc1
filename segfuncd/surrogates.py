"""Lone UTF-16 surrogates: a JS string may hold one ("\ud800"), UTF-8 text cannot. Pure.

QuickJS hands such strings over as JSON escapes, which Python decodes into a `str` that no
UTF-8 encoder accepts (msgspec, SQLite). Where a value leaves for a pipe or the store and
the encoder refuses it, `scrub` replaces each lone surrogate with U+FFFD, as a browser's
TextEncoder does, instead of failing the message.
"""

from __future__ import annotations

from typing import Any


def scrub(value: Any) -> Any:
    """`value` (JSON-like) with every lone surrogate in its strings, keys too, made U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    return value
