"""Node's KeyObject and sign/verify, host side, on `cryptography`.

A key crosses the bridge as a *spec* dict: `{"f": "pem"|"der"|"jwk", "d": latin-1 text or a
JWK dict, "t": "pkcs1"|"pkcs8"|"spki"|"sec1"|None, "p": passphrase or None}`. A JS KeyObject
keeps `{"f": "der", "t": "pkcs8"|"spki", "d": ...}` (or the raw bytes of a secret key), so every
call re-parses a few hundred bytes and no key lives on the host between calls.
"""

from __future__ import annotations

import base64
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric import padding as apad
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509 import load_der_x509_certificate, load_pem_x509_certificate

from .common import JSError, data, obj, text, type_error
from .crypto_host import _hash_algorithm

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey

RSA_PKCS1_PADDING = 1
RSA_PKCS1_PSS_PADDING = 6
RSA_PSS_SALTLEN_DIGEST = -1
RSA_PSS_SALTLEN_MAX_SIGN = -2  # also RSA_PSS_SALTLEN_AUTO when verifying

_CURVES: dict[str, tuple[type[ec.EllipticCurve], str, int]] = {
    # JWK crv -> (curve, Node's namedCurve, coordinate bytes)
    "P-256": (ec.SECP256R1, "prime256v1", 32),
    "P-384": (ec.SECP384R1, "secp384r1", 48),
    "P-521": (ec.SECP521R1, "secp521r1", 66),
    "secp256k1": (ec.SECP256K1, "secp256k1", 32),
}
_BY_CURVE_NAME: dict[str, tuple[str, str, int]] = {
    cls().name: (crv, node, size) for crv, (cls, node, size) in _CURVES.items()
}
_DECODE_FAIL = "error:1E08010C:DECODER routines::unsupported"


def _b64u(n: int | bytes, size: int = 0) -> str:
    raw = n if isinstance(n, bytes) else n.to_bytes(max(size, (n.bit_length() + 7) // 8 or 1), "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64u(v: Any, what: str) -> bytes:
    if not isinstance(v, str):
        raise type_error(f'The "key.{what}" property must be of type string', "ERR_INVALID_ARG_TYPE")
    return base64.urlsafe_b64decode(v + "=" * (-len(v) % 4))


def _int(v: Any, what: str) -> int:
    return int.from_bytes(_unb64u(v, what), "big")


def _from_jwk(jwk: dict[str, Any], want_private: bool) -> PrivateKey | PublicKey | bytes:
    kty = jwk.get("kty")
    private = "d" in jwk
    if want_private and not private and kty != "oct":
        raise type_error('The "key.d" property must be of type string', "ERR_INVALID_ARG_TYPE")
    if kty == "RSA":
        pub = rsa.RSAPublicNumbers(_int(jwk.get("e"), "e"), _int(jwk.get("n"), "n"))
        if not want_private:
            return pub.public_key()
        p, q, d = _int(jwk.get("p"), "p"), _int(jwk.get("q"), "q"), _int(jwk.get("d"), "d")
        priv = rsa.RSAPrivateNumbers(
            p, q, d, _int(jwk.get("dp"), "dp"), _int(jwk.get("dq"), "dq"), _int(jwk.get("qi"), "qi"), pub
        )
        return priv.private_key()
    if kty == "EC":
        spec = _CURVES.get(str(jwk.get("crv")))
        if spec is None:
            raise JSError(
                "Error", "Unsupported JWK EC curve: " + str(jwk.get("crv")), "ERR_CRYPTO_JWK_UNSUPPORTED_CURVE"
            )
        epub = ec.EllipticCurvePublicNumbers(_int(jwk.get("x"), "x"), _int(jwk.get("y"), "y"), spec[0]())
        if not want_private:
            return epub.public_key()
        return ec.EllipticCurvePrivateNumbers(_int(jwk.get("d"), "d"), epub).private_key()
    if kty == "OKP":
        crv = jwk.get("crv")
        mod: Any = {"Ed25519": ed25519, "Ed448": ed448}.get(str(crv))
        if mod is None:
            raise JSError("Error", f"Unsupported JWK OKP curve: {crv}", "ERR_CRYPTO_JWK_UNSUPPORTED_CURVE")
        cls = mod.Ed25519PrivateKey if crv == "Ed25519" else mod.Ed448PrivateKey
        pcls = mod.Ed25519PublicKey if crv == "Ed25519" else mod.Ed448PublicKey
        if want_private:
            return cls.from_private_bytes(_unb64u(jwk.get("d"), "d"))  # type: ignore[no-any-return]
        return pcls.from_public_bytes(_unb64u(jwk.get("x"), "x"))  # type: ignore[no-any-return]
    if kty == "oct":
        return _unb64u(jwk.get("k"), "k")
    raise JSError("Error", "Unsupported JWK key type", "ERR_CRYPTO_JWK_UNSUPPORTED_KEY_TYPE")


def load(spec: Any, want: Any) -> PrivateKey | PublicKey | bytes:
    """The key a spec names: `want` is "private", "public" (a private key's public half is fine)
    or "secret"."""
    s = obj(spec, "key")
    fmt, typ = s.get("f", "pem"), s.get("t")
    if want == "secret":
        if fmt == "jwk":
            got = _from_jwk(obj(s.get("d"), "key"), False)
            if not isinstance(got, bytes):
                raise JSError("TypeError", "Invalid JWK secret key format", "ERR_CRYPTO_INVALID_JWK")
            return got
        return data(s.get("d"), "key")
    want_private = want == "private"
    try:
        if fmt == "jwk":
            key = _from_jwk(obj(s.get("d"), "key"), want_private and "d" in s.get("d", {}) or want_private)
            if isinstance(key, bytes):
                raise JSError("TypeError", "Invalid JWK asymmetric key", "ERR_CRYPTO_INVALID_JWK")
            return key
        raw = data(s.get("d"), "key")
        pw = data(s["p"], "passphrase") if s.get("p") is not None else None
        if fmt == "pem":
            return _load_pem(raw, want_private, pw)
        if fmt == "der":
            return _load_der(raw, typ, want_private, pw)
    except JSError:
        raise
    except TypeError as exc:
        if "password" in str(exc).lower():
            raise JSError("TypeError", "Passphrase required for encrypted key", "ERR_MISSING_PASSPHRASE") from None
        raise JSError("Error", _DECODE_FAIL, "ERR_OSSL_UNSUPPORTED") from None
    except (ValueError, UnsupportedAlgorithm, IndexError, OverflowError):
        raise JSError("Error", _DECODE_FAIL, "ERR_OSSL_UNSUPPORTED") from None
    raise type_error(
        f"The property 'options.format' must be one of: 'pem', 'der', 'jwk'. Received {fmt!r}", "ERR_INVALID_ARG_VALUE"
    )


def _load_pem(raw: bytes, want_private: bool, pw: bytes | None) -> PrivateKey | PublicKey:
    if b"PRIVATE KEY-----" in raw:
        key = serialization.load_pem_private_key(raw, pw)
        if not isinstance(key, PrivateKey):
            raise JSError("Error", _DECODE_FAIL, "ERR_OSSL_UNSUPPORTED")
        return key
    if want_private:
        raise JSError("Error", _DECODE_FAIL, "ERR_OSSL_UNSUPPORTED")
    if b"CERTIFICATE-----" in raw:
        pub: Any = load_pem_x509_certificate(raw).public_key()
    else:
        pub = serialization.load_pem_public_key(raw)
    if not isinstance(pub, PublicKey):
        raise JSError("Error", _DECODE_FAIL, "ERR_OSSL_UNSUPPORTED")
    return pub


def _load_der(raw: bytes, typ: Any, want_private: bool, pw: bytes | None) -> PrivateKey | PublicKey:
    if typ in ("pkcs8", "pkcs1", "sec1") and (want_private or typ != "pkcs1"):
        key: Any = serialization.load_der_private_key(raw, pw)
    elif typ in ("spki", "pkcs1") and not want_private:
        key = serialization.load_der_public_key(raw)
    elif typ == "x509" and not want_private:  # not a Node type; certificates come as PEM there
        key = load_der_x509_certificate(raw).public_key()
    else:
        raise type_error(f"The property 'options.type' is invalid. Received {typ!r}", "ERR_INVALID_ARG_VALUE")
    if not isinstance(key, PrivateKey | PublicKey):
        raise JSError("Error", _DECODE_FAIL, "ERR_OSSL_UNSUPPORTED")
    return key


def describe(spec: Any, want: Any) -> dict[str, Any]:
    """createPrivateKey / createPublicKey / createSecretKey: the KeyObject's fields."""
    key = load(spec, want)
    if isinstance(key, bytes):
        return {"type": "secret", "d": text(key)}
    if want == "public" and isinstance(key, PrivateKey):
        key = key.public_key()
    if isinstance(key, PrivateKey):
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        kind, dtype = "private", "pkcs8"
    else:
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        kind, dtype = "public", "spki"
    return {"type": kind, "t": dtype, "d": text(der), "asym": _asym(key), "details": _details(key)}


def _asym(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ec"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    return "ed448"


def _details(key: PrivateKey | PublicKey) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
        return {"modulusLength": pub.key_size, "publicExponent": pub.public_numbers().e}
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return {"namedCurve": _BY_CURVE_NAME.get(key.curve.name, ("", key.curve.name, 0))[1]}
    return {}


def export(spec: Any, options: Any) -> Any:
    """KeyObject.export({format, type, cipher, passphrase}): PEM text, DER bytes or a JWK."""
    s = obj(spec, "key")
    o = obj(options or {}, "options")
    kind = s.get("kind")
    fmt = o.get("format", "pem" if kind != "secret" else "buffer")
    if kind == "secret":
        raw = data(s.get("d"), "key")
        if fmt == "jwk":
            return {"j": {"kty": "oct", "k": _b64u(raw)}}
        return {"b": text(raw)}
    key = load(s, kind)
    if fmt == "jwk":
        return {"j": _to_jwk(key)}
    enc = {"pem": serialization.Encoding.PEM, "der": serialization.Encoding.DER}.get(fmt)
    if enc is None:
        raise type_error(f"The property 'options.format' is invalid. Received {fmt!r}", "ERR_INVALID_ARG_VALUE")
    typ = str(o.get("type"))
    if isinstance(key, bytes):
        raise type_error("Invalid key object type secret", "ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE")
    if isinstance(key, PrivateKey):
        pfmt = {
            "pkcs8": serialization.PrivateFormat.PKCS8,
            "pkcs1": serialization.PrivateFormat.TraditionalOpenSSL,
            "sec1": serialization.PrivateFormat.TraditionalOpenSSL,
        }.get(typ)
        if pfmt is None or (typ == "pkcs1" and _asym(key) != "rsa") or (typ == "sec1" and _asym(key) != "ec"):
            raise type_error(f"The property 'options.type' is invalid. Received {typ!r}", "ERR_INVALID_ARG_VALUE")
        pw = o.get("passphrase")
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
        if o.get("cipher") is not None and pw is not None:
            encryption = serialization.BestAvailableEncryption(data(pw, "passphrase"))
        out = key.private_bytes(enc, pfmt, encryption)
    else:
        ufmt = {"spki": serialization.PublicFormat.SubjectPublicKeyInfo, "pkcs1": serialization.PublicFormat.PKCS1}.get(
            typ
        )
        if ufmt is None or (typ == "pkcs1" and _asym(key) != "rsa"):
            raise type_error(f"The property 'options.type' is invalid. Received {typ!r}", "ERR_INVALID_ARG_VALUE")
        out = key.public_bytes(enc, ufmt)
    return {"s": out.decode("ascii")} if fmt == "pem" else {"b": text(out)}


def _to_jwk(key: PrivateKey | PublicKey | bytes) -> dict[str, str]:
    if isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        pn = n.public_numbers
        return {
            "kty": "RSA", "n": _b64u(pn.n), "e": _b64u(pn.e), "d": _b64u(n.d), "p": _b64u(n.p),
            "q": _b64u(n.q), "dp": _b64u(n.dmp1), "dq": _b64u(n.dmq1), "qi": _b64u(n.iqmp),
        }  # fmt: skip
    if isinstance(key, rsa.RSAPublicKey):
        pn = key.public_numbers()
        return {"kty": "RSA", "n": _b64u(pn.n), "e": _b64u(pn.e)}
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        crv, _, size = _BY_CURVE_NAME[key.curve.name]
        pub = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
        en = pub.public_numbers()
        jwk = {"kty": "EC", "crv": crv, "x": _b64u(en.x, size), "y": _b64u(en.y, size)}
        if isinstance(key, ec.EllipticCurvePrivateKey):
            jwk["d"] = _b64u(key.private_numbers().private_value, size)
        return jwk
    if isinstance(
        key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
    ):
        crv = "Ed25519" if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey) else "Ed448"
        raw = serialization.Encoding.Raw
        if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
            x = key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
            d = key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
            return {"crv": crv, "d": _b64u(d), "x": _b64u(x), "kty": "OKP"}
        return {"crv": crv, "x": _b64u(key.public_bytes(raw, serialization.PublicFormat.Raw)), "kty": "OKP"}
    raise JSError("TypeError", "Unsupported key type for JWK export", "ERR_CRYPTO_JWK_UNSUPPORTED_KEY_TYPE")


# ---- sign / verify --------------------------------------------------------------------------
def _rsa_padding(o: dict[str, Any], algo: hashes.HashAlgorithm, signing: bool) -> apad.AsymmetricPadding:
    pad = o.get("padding", RSA_PKCS1_PADDING)
    if pad == RSA_PKCS1_PADDING:
        return apad.PKCS1v15()
    if pad != RSA_PKCS1_PSS_PADDING:
        raise JSError(
            "Error",
            "error:1C8000A5:Provider routines::illegal or unsupported padding mode",
            "ERR_OSSL_ILLEGAL_OR_UNSUPPORTED_PADDING_MODE",
        )
    salt = o.get("saltLength", RSA_PSS_SALTLEN_MAX_SIGN)
    length: Any
    if salt == RSA_PSS_SALTLEN_DIGEST:
        length = apad.PSS.DIGEST_LENGTH
    elif salt == RSA_PSS_SALTLEN_MAX_SIGN:
        length = apad.PSS.MAX_LENGTH if signing else apad.PSS.AUTO
    elif isinstance(salt, int) and 0 <= salt <= 4096:
        length = salt
    else:
        raise type_error(f"The property 'options.saltLength' is invalid. Received {salt!r}", "ERR_INVALID_ARG_VALUE")
    return apad.PSS(mgf=apad.MGF1(algo), salt_length=length)


def _ec_size(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> int:
    return (key.curve.key_size + 7) // 8


def sign(alg: Any, message: Any, spec: Any, options: Any) -> str:
    o = obj(options or {}, "options")
    key = load(spec, "private")
    if not isinstance(key, PrivateKey):
        raise JSError(
            "TypeError", "Invalid key object type public, expected private.", "ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE"
        )
    m = data(message)
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        if alg is not None:
            raise JSError("Error", "error:1C8000AE:Provider routines::invalid digest", "ERR_OSSL_INVALID_DIGEST")
        return text(key.sign(m))
    if alg is None:  # Node signs with the key's default digest (SHA-256) when none is given
        alg = "sha256"
    algo = _hash_algorithm(alg)
    if isinstance(key, rsa.RSAPrivateKey):
        try:
            return text(key.sign(m, _rsa_padding(o, algo, True), algo))
        except ValueError as exc:
            raise JSError(
                "Error",
                f"error:02000070:rsa routines::digest too big for rsa key ({exc})",
                "ERR_OSSL_RSA_DIGEST_TOO_BIG_FOR_RSA_KEY",
            ) from None
    der = key.sign(m, ec.ECDSA(algo))
    if o.get("dsaEncoding", "der") == "ieee-p1363":
        r, s = decode_dss_signature(der)
        n = _ec_size(key)
        return text(r.to_bytes(n, "big") + s.to_bytes(n, "big"))
    return text(der)


def verify(alg: Any, message: Any, spec: Any, signature: Any, options: Any) -> bool:
    o = obj(options or {}, "options")
    key = load(spec, "public")
    if isinstance(key, bytes):
        raise JSError(
            "TypeError", "Invalid key object type secret, expected public.", "ERR_CRYPTO_INVALID_KEY_OBJECT_TYPE"
        )
    pub = key.public_key() if isinstance(key, PrivateKey) else key
    m, sig = data(message), data(signature, "signature")
    try:
        if isinstance(pub, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            if alg is not None:
                raise JSError("Error", "error:1C8000AE:Provider routines::invalid digest", "ERR_OSSL_INVALID_DIGEST")
            pub.verify(sig, m)
            return True
        algo = _hash_algorithm("sha256" if alg is None else alg)
        if isinstance(pub, rsa.RSAPublicKey):
            pub.verify(sig, m, _rsa_padding(o, algo, False), algo)
            return True
        if o.get("dsaEncoding", "der") == "ieee-p1363":
            n = _ec_size(pub)
            if len(sig) != 2 * n:
                return False
            sig = encode_dss_signature(int.from_bytes(sig[:n], "big"), int.from_bytes(sig[n:], "big"))
        pub.verify(sig, m, ec.ECDSA(algo))
        return True
    except (InvalidSignature, ValueError):
        return False
