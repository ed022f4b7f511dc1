"""What every host-backed built-in shares: the JS-visible error and argument checking.

A host function raises `JSError(name, message, code)` for anything the caller got wrong; the
dispatcher (`builtins.call`) turns it into `{"e": ...}`, which the prelude rethrows as a JS
error of that name (TypeError, RangeError, Error with a Node `code`). Bytes cross the bridge
as latin-1 strings (one char per byte), which JSON carries safely.
"""

from __future__ import annotations

from typing import Any

MAX_INPUT_BYTES = 8 * 1024 * 1024  # one byte argument; QuickJS's own heap cap is far above any real use


class JSError(Exception):
    """A user mistake, reported inside the function as a JS error of this name and Node code."""

    def __init__(self, name: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.code = code

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "message": self.message, "code": self.code}


def type_error(message: str, code: str = "ERR_INVALID_ARG_TYPE") -> JSError:
    return JSError("TypeError", message, code)


def range_error(message: str, code: str = "ERR_OUT_OF_RANGE") -> JSError:
    return JSError("RangeError", message, code)


def data(v: Any, what: str = "data") -> bytes:
    """A latin-1 bridge string as bytes (TypeError otherwise, RangeError above the cap)."""
    if not isinstance(v, str):
        raise type_error(f'The "{what}" argument must be of type string or an instance of Buffer')
    if len(v) > MAX_INPUT_BYTES:
        raise range_error(f'The "{what}" argument is larger than {MAX_INPUT_BYTES} bytes')
    try:
        return v.encode("latin-1")
    except UnicodeEncodeError:
        raise type_error(f'The "{what}" argument is not a byte string') from None


def opt_data(v: Any, what: str) -> bytes | None:
    return None if v is None else data(v, what)


def text(b: bytes) -> str:
    return b.decode("latin-1")


def integer(v: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | float) or v != v or int(v) != v:
        raise type_error(f'The "{what}" argument must be of type number. Received {type(v).__name__}')
    if not lo <= v <= hi:
        raise range_error(f'The value of "{what}" is out of range. It must be >= {lo} && <= {hi}. Received {v}')
    return int(v)


def string(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise type_error(f'The "{what}" argument must be of type string')
    return v


def obj(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise type_error(f'The "{what}" argument must be of type object')
    return v
