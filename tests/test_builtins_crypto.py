"""`crypto` as Node's: every case of tests/fixtures/crypto.json (made by Node 20 with
tests/fixtures/node/make_crypto.mjs) gives the same value, or the same error name and code,
in a real sandbox; plus the host side's answer to hostile arguments."""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import builtin_fixture, fixture_case_plugin, fixture_keys
from test_sandbox_helpers import js, run, sandbox

from segfuncd.runner import builtins
from segfuncd.runner.sandbox import Sandbox

FIXTURE = builtin_fixture("crypto")
CASES = FIXTURE["cases"]


@pytest.fixture(scope="module")
def crypto_sandbox() -> Sandbox:
    return sandbox(fixture_case_plugin(FIXTURE), cpu_s=5.0, wall_s=10.0)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c["id"] for c in CASES])
def test_matches_node(crypto_sandbox: Sandbox, index: int) -> None:
    r = run(crypto_sandbox, {"i": index}, {"K": fixture_keys()})
    assert r.ok, r.value
    assert r.value == CASES[index]["expect"], CASES[index]["code"]


def test_crypto_loads_lazily_and_can_be_shadowed() -> None:
    assert js("[typeof crypto.createHash, (() => { globalThis.crypto = 5; return crypto })()]") == ["function", 5]


def test_the_bridge_helpers_do_not_leak_into_user_code() -> None:
    got = js(
        "[Object.getOwnPropertyNames(crypto).filter(n => /host|token/i.test(n)), "
        "typeof hostx, typeof loadBuiltin, Object.isFrozen(crypto)]"
    )
    assert got == [[], "undefined", "undefined", True]


HOSTILE: list[tuple[Any, list[Any]]] = [
    ("hash", []),
    ("hash", ["sha1", 5]),
    ("hash", ["sha1", "\u0100"]),
    ("hash", [None, "x"]),
    ("hash", ["shake256", "x", -1]),
    ("hash", ["shake256", "x", 1e12]),
    ("hmac", ["sha256", None, None]),
    ("random", [1e9]),
    ("random", ["8"]),
    ("pbkdf2", ["p", "s", 10**9, 32, "sha256"]),
    ("pbkdf2", ["p", "s", 1, 2**40, "sha256"]),
    ("scrypt", ["p", "s", 16, {"N": 2**30, "r": 8, "p": 1, "maxmem": 2**50}]),
    ("scrypt", ["p", "s", 16, {"N": 3}]),
    ("scrypt", ["p", "s", 16, "nope"]),
    ("hkdf", ["sha256", "k", "s", "i", 10**6]),
    ("cipher", ["aes-128-cbc", "k", "iv", "x", {}]),
    ("cipher", ["aes-128-gcm", "0" * 16, "", "x", {"fin": True}]),
    ("cipher", ["aes-128-gcm", "0" * 16, "0" * 12, "x", {"fin": True, "dec": True, "tag": "1"}]),
    ("cipher", ["chacha20-poly1305", "0" * 32, "0" * 12, "x", {"tlen": 3}]),
    ("cipher", [{}, [], None, 1, None]),
    ("key", [{"f": "pem", "d": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "private"]),
    ("key", [{"f": "der", "t": "pkcs8", "d": "\x30\x82\xff\xff"}, "private"]),
    ("key", [{"f": "der", "t": "nope", "d": "x"}, "public"]),
    ("key", [{"f": "jwk", "d": {"kty": "RSA", "n": 5}}, "public"]),
    ("key", [{"f": "jwk", "d": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}}, "public"]),
    ("key", [{"f": "jwk", "d": {"kty": "nope"}}, "private"]),
    ("key", [{"f": "xml", "d": "x"}, "private"]),
    ("key", ["not a dict", "private"]),
    ("key_export", [{"kind": "private", "f": "der", "t": "pkcs8", "d": "x"}, {"format": "pem", "type": "pkcs8"}]),
    ("key_export", [{"kind": "secret", "d": "x"}, "nope"]),
    ("sign", ["sha256", "m", {"f": "pem", "d": "junk"}, {}]),
    ("sign", ["nope", "m", {"f": "pem", "d": "junk"}, None]),
    ("verify", ["sha256", "m", {"f": "pem", "d": "junk"}, "sig", {}]),
    ("nope", []),
    (None, [1, 2]),
]


@pytest.mark.parametrize(("name", "args"), HOSTILE, ids=[f"{n}-{i}" for i, (n, _) in enumerate(HOSTILE)])
def test_host_functions_answer_hostile_arguments_with_a_js_error(name: str, args: list[Any]) -> None:
    got = builtins.call(name, args)
    assert set(got) == {"e"}, got
    assert got["e"]["name"] in {"TypeError", "RangeError", "Error"}
    json.dumps(got)


def test_huge_input_is_a_range_error_not_a_crash() -> None:
    got = builtins.call("hash", ["sha256", "x" * (9 * 1024 * 1024)])
    assert got["e"]["name"] == "RangeError"


def test_hostile_calls_from_js_throw_inside_the_function() -> None:
    sb = sandbox(
        "async function onTrack(e) { const out = [];"
        " for (const f of [() => crypto.createCipheriv('aes-128-gcm', Buffer.alloc(16), Buffer.alloc(0)),"
        "   () => crypto.createPrivateKey({key: {kty: 'RSA', n: 5}, format: 'jwk'}),"
        "   () => crypto.pbkdf2Sync('p', 's', 1e12, 32, 'sha256'),"
        "   () => crypto.createHash('sha256').update({}),"
        "   () => crypto.sign('sha256', Buffer.from('x'), {key: 42})])"
        "   try { f(); out.push('no error') } catch (err) { out.push(err.name + ':' + err.code) }"
        " return out }"
    )
    r = run(sb)
    assert r.ok, r.value
    assert r.value == [
        "TypeError:ERR_CRYPTO_INVALID_IV",
        "TypeError:ERR_INVALID_ARG_TYPE",
        "RangeError:ERR_OUT_OF_RANGE",
        "TypeError:ERR_INVALID_ARG_TYPE",
        "TypeError:ERR_INVALID_ARG_TYPE",
    ]


def test_built_ins_load_only_when_touched(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Any] = []
    real = builtins.call

    def counting(name: Any, args: list[Any]) -> dict[str, Any]:
        if name == "source":
            asked.append(args[0])
        return real(name, args)

    monkeypatch.setattr(builtins, "call", counting)
    sb = sandbox(
        "async function onTrack(e) { if (e.use) return crypto.createHash('md5').update('x').digest('hex'); return 1 }"
    )
    assert run(sb).value == 1 and asked == []
    assert run(sb, {"use": True}).value == "9dd4e461268c8034f5c8564e155c67a6"
    assert run(sb, {"use": True}).ok and asked == ["crypto"]
