"""`jsonwebtoken`'s signatures, host side: the JWS algorithms of PyJWT.

The JS half (prelude/lazy/jsonwebtoken.js) keeps jsonwebtoken's own rules: option checks,
claims, `JSON.stringify` of header and payload (so tokens are byte for byte Node's), error
names and messages. It sends the signing input (`b64url(header).b64url(payload)`) and the key;
PyJWT's algorithm objects sign or verify it (ES* signatures in JOSE r||s form, PS* with the
digest-length salt, as jwa does). Keys arrive as crypto KeyObject specs (crypto_keys.load).
"""

from __future__ import annotations

import base64
from typing import Any

from jwt.algorithms import get_default_algorithms
from jwt.exceptions import InvalidKeyError

from .common import JSError, data, obj, string
from .crypto_keys import load

_ALGORITHMS = get_default_algorithms()
SUPPORTED = ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")


def _algorithm(alg: Any) -> Any:
    if alg == "none":
        return None
    if alg not in SUPPORTED:
        raise JSError(
            "TypeError",
            f'"{alg}" is not a valid algorithm.\n  Supported algorithms are:\n  "{", ".join(SUPPORTED)}" and "none".',
        )
    return _ALGORITHMS[alg]


def _key(alg: str, key: Any, want: str) -> Any:
    k = obj(key, "key")
    if alg.startswith("HS"):
        return data(k.get("secret"), "secret")
    return load(k.get("spec"), want)


def _b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def sign(alg: Any, signing_input: Any, key: Any) -> str:
    """The base64url signature of `signing_input` (empty for "none")."""
    algorithm = _algorithm(alg)
    msg = data(string(signing_input, "input"), "input")
    if algorithm is None:
        return ""
    try:
        return _b64u(algorithm.sign(msg, _key(alg, key, "private")))
    except (InvalidKeyError, TypeError, AttributeError):
        raise JSError("Error", "secretOrPrivateKey is not valid key material") from None


def verify(alg: Any, signing_input: Any, signature: Any, key: Any) -> bool:
    algorithm = _algorithm(alg)
    msg = data(string(signing_input, "input"), "input")
    sig_text = string(signature, "signature")
    if algorithm is None:
        return sig_text == ""
    try:
        sig = base64.urlsafe_b64decode(sig_text + "=" * (-len(sig_text) % 4))
    except ValueError:
        return False
    try:
        return bool(algorithm.verify(msg, _key(alg, key, "public"), sig))
    except (InvalidKeyError, TypeError, AttributeError, ValueError):
        return False
