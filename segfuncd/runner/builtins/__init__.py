"""Host-backed built-ins (Node's `crypto`, `jsonwebtoken`, `AWS`, `Intl`): the dispatcher.

sandbox.py's `_host_call` hands every `"x"` call here as `call(name, args)`. The answer is
`{"v": value}` or `{"e": {"name", "message", "code"}}`, which the prelude's `hostx()` returns or
throws. Each entry is a pure function of its JSON arguments (no I/O: AWS requests are built and
parsed here but sent by the JS `fetch`); anything malformed is a `JSError`, never a crash. The
modules behind it are imported on first use so a runner that never calls them pays nothing.
"""

from __future__ import annotations

import importlib
import importlib.resources
from functools import cache
from typing import Any

from .common import JSError

# name -> (module, function); the JS side names them in prelude/lazy/*.js
_TABLE: dict[str, tuple[str, str]] = {
    "hash": ("crypto_host", "hash_"),
    "hmac": ("crypto_host", "hmac_"),
    "random": ("crypto_host", "random_"),
    "pbkdf2": ("crypto_host", "pbkdf2"),
    "scrypt": ("crypto_host", "scrypt"),
    "hkdf": ("crypto_host", "hkdf"),
    "cipher": ("crypto_host", "cipher"),
    "cipher_check": ("crypto_host", "cipher_check"),
    "hashes": ("crypto_host", "hash_names"),
    "key": ("crypto_keys", "describe"),
    "key_export": ("crypto_keys", "export"),
    "sign": ("crypto_keys", "sign"),
    "verify": ("crypto_keys", "verify"),
    "generate_key": ("crypto_keygen", "generate"),
    "public_encrypt": ("crypto_keygen", "public_encrypt"),
    "private_decrypt": ("crypto_keygen", "private_decrypt"),
    "jwt_sign": ("jwt_host", "sign"),
    "jwt_verify": ("jwt_host", "verify"),
    "aws_request": ("aws_host", "build_request"),
    "aws_response": ("aws_host", "parse_response"),
    "aws_services": ("aws_host", "service_names"),
    "aws_operations": ("aws_host", "operations"),
    "aws_presign": ("aws_host", "presign"),
    "intl_locales": ("intl_locale", "canonical_tags"),
    "intl_supported": ("intl_locale", "supported"),
    "intl_dtf": ("intl_dates", "resolve"),
    "intl_dtf_format": ("intl_dates", "format_ms"),
    "intl_nf": ("intl_numbers", "resolve"),
    "intl_nf_format": ("intl_numbers", "format_value"),
}


LAZY_MODULES = ("crypto", "jsonwebtoken", "aws", "formdata", "intl")


@cache
def _lazy_source(name: str) -> str:
    return (importlib.resources.files("segfuncd.runner") / "prelude" / "lazy" / f"{name}.js").read_text("utf-8")


# the runtime's own lazily loaded parts: console's formatter (util.inspect) and Buffer's number methods
PRELUDE_LAZY_MODULES = ("inspect", "buffer_io")


def call(name: Any, args: list[Any]) -> dict[str, Any]:
    if name == "source":  # the JS of a lazily loaded built-in (prelude/lazy/<name>.js)
        if len(args) == 1 and (args[0] in LAZY_MODULES or args[0] in PRELUDE_LAZY_MODULES):
            try:
                return {"v": _lazy_source(args[0])}
            except OSError:
                return {"e": {"name": "Error", "message": f"the built-in {args[0]} is not installed", "code": None}}
        return {"e": {"name": "TypeError", "message": "unknown built-in", "code": None}}
    entry = _TABLE.get(name) if isinstance(name, str) else None
    if entry is None:
        return {"e": {"name": "TypeError", "message": f"unknown host function {name!r}", "code": None}}
    fn = getattr(importlib.import_module(f"{__name__}.{entry[0]}"), entry[1])
    try:
        return {"v": fn(*args)}
    except JSError as exc:
        return {"e": exc.as_json()}
    except TypeError as exc:  # wrong number of arguments from a hostile caller
        return {"e": {"name": "TypeError", "message": str(exc), "code": "ERR_INVALID_ARG_TYPE"}}
    except (ValueError, OverflowError, KeyError, IndexError, UnicodeError, AttributeError) as exc:
        return {"e": {"name": "Error", "message": str(exc) or type(exc).__name__, "code": None}}
