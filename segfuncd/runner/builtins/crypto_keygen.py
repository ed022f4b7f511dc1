"""Node's generateKeyPair(Sync) and publicEncrypt / privateDecrypt, host side, on `cryptography`.

Key pairs come back as the private KeyObject's fields (crypto_keys.describe); the JS side
derives the public half. RSA encryption takes crypto_keys specs; PKCS#1 v1.5 decryption is
refused as Node 20 does since CVE-2023-46809.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric import padding as apad

from .common import JSError, data, obj, text, type_error
from .crypto_host import _hash_algorithm
from .crypto_keys import RSA_PKCS1_PADDING, PrivateKey, describe, load

_GEN_CURVES: dict[str, Any] = {"prime256v1": ec.SECP256R1, "p-256": ec.SECP256R1, "secp256r1": ec.SECP256R1,
               "secp384r1": ec.SECP384R1, "p-384": ec.SECP384R1, "secp521r1": ec.SECP521R1,
               "p-521": ec.SECP521R1, "secp256k1": ec.SECP256K1}  # fmt: skip
RSA_PKCS1_OAEP_PADDING = 4


def generate(kind: Any, options: Any) -> dict[str, Any]:
    """generateKeyPair(Sync): the private key's KeyObject fields (the public half is derived)."""
    o = obj(options or {}, "options")
    key: PrivateKey
    if kind == "rsa":
        bits = o.get("modulusLength")
        if not isinstance(bits, int) or isinstance(bits, bool) or not 512 <= bits <= 8192:
            raise JSError(
                "RangeError", 'The "options.modulusLength" property must be >= 512 && <= 8192', "ERR_OUT_OF_RANGE"
            )
        exponent = o.get("publicExponent", 65537)
        if exponent not in (3, 65537):
            raise JSError("RangeError", 'The "options.publicExponent" property must be 3 or 65537', "ERR_OUT_OF_RANGE")
        key = rsa.generate_private_key(public_exponent=exponent, key_size=bits)
    elif kind == "ec":
        curve = _GEN_CURVES.get(str(o.get("namedCurve", "")).lower())
        if curve is None:
            raise type_error(f"Invalid EC curve name: {o.get('namedCurve')}", "ERR_CRYPTO_INVALID_CURVE")
        key = ec.generate_private_key(curve())
    elif kind == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    elif kind == "ed448":
        key = ed448.Ed448PrivateKey.generate()
    else:
        raise type_error(
            f"The argument 'type' must be a supported key type. Received {kind!r}", "ERR_INVALID_ARG_VALUE"
        )
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return describe({"f": "der", "t": "pkcs8", "d": text(der)}, "private")


def _oaep_or_pkcs1(o: dict[str, Any]) -> apad.AsymmetricPadding:
    pad = o.get("padding", RSA_PKCS1_OAEP_PADDING)
    if pad == RSA_PKCS1_PADDING:
        return apad.PKCS1v15()
    if pad != RSA_PKCS1_OAEP_PADDING:
        raise JSError(
            "Error",
            "error:1C8000A5:Provider routines::illegal or unsupported padding mode",
            "ERR_OSSL_ILLEGAL_OR_UNSUPPORTED_PADDING_MODE",
        )
    algo = _hash_algorithm(o.get("oaepHash", "sha1"))
    label = o.get("oaepLabel")
    return apad.OAEP(mgf=apad.MGF1(algo), algorithm=algo, label=None if label is None else data(label, "oaepLabel"))


def public_encrypt(spec: Any, message: Any, options: Any) -> str:
    o = obj(options or {}, "options")
    key = load(spec, "public")
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    if not isinstance(pub, rsa.RSAPublicKey):
        raise JSError(
            "Error",
            "error:1C8000A5:Provider routines::operation not supported for this keytype",
            "ERR_OSSL_EVP_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE",
        )
    try:
        return text(pub.encrypt(data(message, "buffer"), _oaep_or_pkcs1(o)))
    except ValueError:
        raise JSError(
            "Error",
            "error:1C80006E:Provider routines::data too large for key size",
            "ERR_OSSL_DATA_TOO_LARGE_FOR_KEY_SIZE",
        ) from None


def private_decrypt(spec: Any, message: Any, options: Any) -> str:
    o = obj(options or {}, "options")
    if o.get("padding") == RSA_PKCS1_PADDING:  # as Node 20 since CVE-2023-46809 (Marvin)
        raise type_error(
            "RSA_PKCS1_PADDING is no longer supported for private decryption, this can be reverted with "
            "--security-revert=CVE-2023-46809",
            "ERR_INVALID_ARG_VALUE",
        )
    key = load(spec, "private")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise JSError(
            "Error",
            "error:1C8000A5:Provider routines::operation not supported for this keytype",
            "ERR_OSSL_EVP_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE",
        )
    try:
        return text(key.decrypt(data(message, "buffer"), _oaep_or_pkcs1(o)))
    except ValueError:
        raise JSError(
            "Error", "error:02000079:rsa routines::oaep decoding error", "ERR_OSSL_RSA_OAEP_DECODING_ERROR"
        ) from None
