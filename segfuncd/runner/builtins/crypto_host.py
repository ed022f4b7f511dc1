"""Node's `crypto`, host side: hashes, HMACs, ciphers, keys, signatures and KDFs on `cryptography`.

Every function here is pure: arguments in (latin-1 byte strings, numbers, small dicts), a
JSON-able answer out, `JSError` for anything the caller got wrong. There is no state between
calls: a streaming cipher or hash is the JS side re-sending its whole input (capped by
`common.MAX_INPUT_BYTES`), and a KeyObject is its DER (PKCS#8 / SPKI) or raw secret bytes.
The JS half is prelude/lazy/crypto.js; names, defaults and error codes follow Node 20.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .common import JSError, data, integer, obj, opt_data, range_error, text, type_error

MAX_RANDOM_BYTES = 2**31 - 1  # Node's own limit for randomBytes; the JS side asks in chunks
MAX_RANDOM_CHUNK = 1024 * 1024
MAX_PBKDF2_ITERATIONS = 10_000_000  # host calls are not interruptible: bound the CPU one can take
MAX_KDF_KEYLEN = 1024 * 1024
SCRYPT_MAXMEM_DEFAULT = 32 * 1024 * 1024  # Node's default `maxmem`
SCRYPT_MAXMEM_CAP = 256 * 1024 * 1024


def _digest_table() -> dict[str, str]:
    """Node's digest names (crypto.getHashes(), lower-cased) -> hashlib's."""
    table: dict[str, str] = {}
    for n in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sm3", "ripemd160"):
        for alias in (n, f"rsa-{n}", f"{n}withrsaencryption"):
            table[alias] = n
    for bits in ("224", "256"):
        for alias in (f"sha512-{bits}", f"rsa-sha512/{bits}", f"sha512-{bits}withrsaencryption"):
            table[alias] = f"sha512_{bits}"
    for bits in ("224", "256", "384", "512"):
        for alias in (f"sha3-{bits}", f"rsa-sha3-{bits}", f"id-rsassa-pkcs1-v1_5-with-sha3-{bits}"):
            table[alias] = f"sha3_{bits}"
    table.update(
        {
            "ssl3-md5": "md5",
            "md5withrsaencryption": "md5",
            "ssl3-sha1": "sha1",
            "rsa-sha1-2": "sha1",
            "md5-sha1": "md5-sha1",
            "ripemd": "ripemd160",
            "rmd160": "ripemd160",
            "ripemd160withrsa": "ripemd160",
            "blake2b512": "blake2b",
            "blake2s256": "blake2s",
            "shake128": "shake_128",
            "shake256": "shake_256",
        }
    )
    return {k: v for k, v in table.items() if v in hashlib.algorithms_available}


DIGESTS = _digest_table()
_SHAKE_DEFAULT = {"shake_128": 16, "shake_256": 32}
_CRYPTOGRAPHY_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "md5": hashes.MD5,
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha512_224": hashes.SHA512_224,
    "sha512_256": hashes.SHA512_256,
    "sha3_224": hashes.SHA3_224,
    "sha3_256": hashes.SHA3_256,
    "sha3_384": hashes.SHA3_384,
    "sha3_512": hashes.SHA3_512,
    "sm3": hashes.SM3,
}


def digest_name(alg: Any) -> str:
    """hashlib's name for a Node digest name, or Node's error."""
    name = DIGESTS.get(alg.lower()) if isinstance(alg, str) else None
    if name is None:
        raise JSError("Error", "Digest method not supported")
    return name


def keyed_digest_name(alg: Any) -> str:
    """As digest_name, with the error Node gives for HMAC, sign and the KDFs."""
    name = DIGESTS.get(alg.lower()) if isinstance(alg, str) else None
    if name is None or name.startswith("shake_"):
        raise JSError("TypeError", f"Invalid digest: {alg}", "ERR_CRYPTO_INVALID_DIGEST")
    return name


def _hash_algorithm(alg: Any) -> hashes.HashAlgorithm:
    cls = _CRYPTOGRAPHY_HASHES.get(keyed_digest_name(alg))
    if cls is None:
        raise JSError("TypeError", f"Invalid digest: {alg}", "ERR_CRYPTO_INVALID_DIGEST")
    return cls()


def hash_(alg: Any, message: Any, out_len: Any = None) -> str:
    name = digest_name(alg)
    h = hashlib.new(name, data(message))
    if name.startswith("shake_"):
        n = _SHAKE_DEFAULT[name] if out_len is None else integer(out_len, "options.outputLength", 0, MAX_KDF_KEYLEN)
        return text(h.digest(n))  # type: ignore[call-arg]  # shake digests take a length
    if out_len is not None and out_len != h.digest_size:
        raise JSError("Error", "Unsupported output length for this hash", "ERR_OSSL_EVP_NOT_XOF_OR_INVALID_LENGTH")
    return text(h.digest())


def hmac_(alg: Any, key: Any, message: Any) -> str:
    name = keyed_digest_name(alg)
    return text(_hmac.new(data(key, "key"), data(message), name).digest())


def random_(n: Any) -> str:
    return text(os.urandom(integer(n, "size", 0, MAX_RANDOM_CHUNK)))


# ---- KDFs -----------------------------------------------------------------------------------
def pbkdf2(password: Any, salt: Any, iterations: Any, keylen: Any, digest: Any) -> str:
    it = integer(iterations, "iterations", 1, MAX_PBKDF2_ITERATIONS)
    n = integer(keylen, "keylen", 0, MAX_KDF_KEYLEN)
    name = keyed_digest_name(digest)
    if n == 0:
        return ""
    return text(hashlib.pbkdf2_hmac(name, data(password, "password"), data(salt, "salt"), it, n))


def scrypt(password: Any, salt: Any, keylen: Any, options: Any) -> str:
    o = obj(options or {}, "options")
    n = integer(keylen, "keylen", 0, MAX_KDF_KEYLEN)
    cost = integer(o.get("N", o.get("cost", 16384)), "N", 2, 2**40)
    r = integer(o.get("r", o.get("blockSize", 8)), "r", 1, 2**30)
    p = integer(o.get("p", o.get("parallelization", 1)), "p", 1, 2**30)
    maxmem = integer(o.get("maxmem", SCRYPT_MAXMEM_DEFAULT), "maxmem", 0, 2**53)
    if cost & (cost - 1) or 128 * cost * r > min(maxmem, SCRYPT_MAXMEM_CAP) or p * r > 2**30 // 4:
        raise range_error("Invalid scrypt params: memory limit exceeded", "ERR_CRYPTO_INVALID_SCRYPT_PARAMS")
    if 128 * r * p * 4 > SCRYPT_MAXMEM_CAP * 4:
        raise range_error("Invalid scrypt params", "ERR_CRYPTO_INVALID_SCRYPT_PARAMS")
    if n == 0:
        return ""
    pw, sa = data(password, "password"), data(salt, "salt")
    out = hashlib.scrypt(pw, salt=sa, n=cost, r=r, p=p, maxmem=SCRYPT_MAXMEM_CAP + 2**20, dklen=n)
    return text(out)


def hkdf(digest: Any, ikm: Any, salt: Any, info: Any, keylen: Any) -> str:
    algo = _hash_algorithm(digest)
    n = integer(keylen, "keylen", 0, 255 * algo.digest_size)
    inf = data(info, "info")
    if len(inf) > 1024:
        raise range_error('The value of "info" is out of range. It must be <= 1024 bytes', "ERR_OUT_OF_RANGE")
    if n == 0:
        return ""
    return text(HKDF(algorithm=algo, length=n, salt=data(salt, "salt"), info=inf).derive(data(ikm, "ikm")))


# ---- ciphers --------------------------------------------------------------------------------
_AES_MODES = {"cbc", "ctr", "gcm", "ecb"}


def _cipher_spec(alg: Any) -> tuple[str, int]:
    """(mode, key length) of a Node cipher name."""
    name = alg.lower() if isinstance(alg, str) else ""
    if name == "chacha20-poly1305":
        return "chacha20-poly1305", 32
    if name.startswith("id-aes") and name.endswith("-gcm"):
        name = "aes-" + name[6:9] + "-gcm"
    parts = name.split("-")
    if len(parts) == 3 and parts[0] == "aes" and parts[1] in ("128", "192", "256") and parts[2] in _AES_MODES:
        return parts[2], int(parts[1]) // 8
    if len(parts) == 2 and parts[0] in ("aes128", "aes192", "aes256") and parts[1] in _AES_MODES:
        return parts[1], int(parts[0][3:]) // 8
    if name in ("aes128", "aes192", "aes256"):
        return "cbc", int(name[3:]) // 8
    raise JSError("Error", "Unknown cipher", "ERR_CRYPTO_UNKNOWN_CIPHER")


def cipher_check(alg: Any, key: Any, iv: Any, tag_len: Any) -> None:
    """createCipheriv's up-front checks: key and IV lengths, authTagLength."""
    mode, klen = _cipher_spec(alg)
    k, v = data(key, "key"), opt_data(iv, "iv")
    if len(k) != klen:
        raise range_error("Invalid key length", "ERR_CRYPTO_INVALID_KEYLEN")
    if mode == "ecb":
        return
    want = {"cbc": 16, "ctr": 16, "chacha20-poly1305": 12}.get(mode)
    if v is None or (want is not None and len(v) != want) or (mode == "gcm" and not 1 <= len(v) <= 128):
        raise type_error("Invalid initialization vector", "ERR_CRYPTO_INVALID_IV")
    if tag_len is not None and mode in ("gcm", "chacha20-poly1305"):
        ok = tag_len in (4, 8, 12, 13, 14, 15, 16) if mode == "gcm" else tag_len == 16
        if not ok:
            raise type_error(f"Invalid authentication tag length: {tag_len}", "ERR_CRYPTO_INVALID_AUTH_TAG")


def cipher(alg: Any, key: Any, iv: Any, message: Any, options: Any) -> dict[str, str]:
    """The output for all input so far: `released` bytes before final, all of it at final.

    options: dec (decrypt), fin (final), pad (auto padding), aad, tag (decrypt), tlen.
    """
    o = obj(options, "options")
    tlen = o.get("tlen")
    cipher_check(alg, key, iv, tlen)
    mode, _ = _cipher_spec(alg)
    k, v, m = data(key, "key"), opt_data(iv, "iv") or b"", data(message)
    dec, fin, pad = bool(o.get("dec")), bool(o.get("fin")), o.get("pad", True) is not False
    aad = opt_data(o.get("aad"), "aad") or b""
    tag = opt_data(o.get("tag"), "tag")
    tag_len = 16 if tlen is None else int(tlen)
    if mode == "chacha20-poly1305":
        return _chacha(k, v, m, dec, fin, aad, tag, tag_len)
    if mode in ("ctr", "gcm"):
        if mode == "ctr":
            return {"o": text(_run(Cipher(algorithms.AES(k), modes.CTR(v)), dec, m))}
        return _gcm(k, v, m, dec, fin, aad, tag, tag_len)
    block_mode = modes.CBC(v) if mode == "cbc" else modes.ECB()
    c = Cipher(algorithms.AES(k), block_mode)
    if not fin:
        n = len(m) // 16 * 16
        if dec and pad and n == len(m) and n:
            n -= 16  # OpenSSL holds back the last block: it may be padding
        return {"o": text(_run(c, dec, m[:n]))}
    if not dec:
        if pad:
            p = padding.PKCS7(128).padder()
            m = p.update(m) + p.finalize()
        elif len(m) % 16:
            raise JSError(
                "Error",
                "error:1C80006B:Provider routines::wrong final block length",
                "ERR_OSSL_WRONG_FINAL_BLOCK_LENGTH",
            )
        return {"o": text(_run(c, False, m))}
    if len(m) % 16:
        raise JSError(
            "Error", "error:1C80006B:Provider routines::wrong final block length", "ERR_OSSL_WRONG_FINAL_BLOCK_LENGTH"
        )
    out = _run(c, True, m)
    if pad:
        try:
            u = padding.PKCS7(128).unpadder()
            out = u.update(out) + u.finalize()
        except ValueError:
            raise JSError("Error", "error:1C800064:Provider routines::bad decrypt", "ERR_OSSL_BAD_DECRYPT") from None
    return {"o": text(out)}


def _run(c: Cipher[Any], dec: bool, m: bytes) -> bytes:
    ctx = c.decryptor() if dec else c.encryptor()
    return ctx.update(m) + ctx.finalize()


_AUTH_FAIL = "Unsupported state or unable to authenticate data"


def _gcm(
    k: bytes, iv: bytes, m: bytes, dec: bool, fin: bool, aad: bytes, tag: bytes | None, tlen: int
) -> dict[str, str]:
    if not dec:
        e = Cipher(algorithms.AES(k), modes.GCM(iv)).encryptor()
        e.authenticate_additional_data(aad)
        out = e.update(m) + e.finalize()
        return {"o": text(out), "t": text(e.tag[:tlen])} if fin else {"o": text(out)}
    if not fin:
        # plaintext before the tag is checked, as OpenSSL gives it: CTR from counter 2
        j0 = iv + b"\x00\x00\x00\x01" if len(iv) == 12 else None
        if j0 is None:
            return {"o": ""}  # a non-96-bit IV: released at final only
        ctr = (int.from_bytes(j0, "big") + 1).to_bytes(16, "big")
        return {"o": text(_run(Cipher(algorithms.AES(k), modes.CTR(ctr)), True, m))}
    if tag is None or len(tag) < 4:
        raise JSError("Error", _AUTH_FAIL)
    d = Cipher(algorithms.AES(k), modes.GCM(iv, tag, min_tag_length=4)).decryptor()
    d.authenticate_additional_data(aad)
    try:
        return {"o": text(d.update(m) + d.finalize())}
    except InvalidTag:
        raise JSError("Error", _AUTH_FAIL) from None


def _chacha(
    k: bytes, iv: bytes, m: bytes, dec: bool, fin: bool, aad: bytes, tag: bytes | None, tlen: int
) -> dict[str, str]:
    if not dec:
        sealed = ChaCha20Poly1305(k).encrypt(iv, m, aad)
        out, t = sealed[: len(m)], sealed[len(m) :]
        return {"o": text(out), "t": text(t[:tlen])} if fin else {"o": text(out)}
    if not fin:
        stream = Cipher(algorithms.ChaCha20(k, b"\x01\x00\x00\x00" + iv), mode=None)
        return {"o": text(_run(stream, True, m))}
    if tag is None or len(tag) != 16:
        raise JSError("Error", _AUTH_FAIL)
    try:
        return {"o": text(ChaCha20Poly1305(k).decrypt(iv, m + tag, aad))}
    except InvalidTag:
        raise JSError("Error", _AUTH_FAIL) from None


def hash_names() -> list[str]:
    """crypto.getHashes(): Node's names this host can compute."""
    return sorted(DIGESTS)
