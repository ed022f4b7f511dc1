"""`jsonwebtoken` as the npm package: every case of tests/fixtures/jsonwebtoken.json (made by
Node 20 with tests/fixtures/node/make_jwt.mjs) gives the same token, payload or error in a real
sandbox; tokens signed inside a function verify with PyJWT and the other way round."""

from __future__ import annotations

import jwt as pyjwt
import pytest
from helpers import builtin_fixture, fixture_case_plugin, fixture_keys
from test_sandbox_helpers import run, sandbox

from segfuncd.runner.sandbox import Sandbox

FIXTURE = builtin_fixture("jsonwebtoken")
CASES = FIXTURE["cases"]


@pytest.fixture(scope="module")
def jwt_sandbox() -> Sandbox:
    return sandbox(fixture_case_plugin(FIXTURE), cpu_s=5.0, wall_s=10.0)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c["id"] for c in CASES])
def test_matches_jsonwebtoken(jwt_sandbox: Sandbox, index: int) -> None:
    r = run(jwt_sandbox, {"i": index}, {"K": fixture_keys()})
    assert r.ok, r.value
    assert r.value == CASES[index]["expect"], CASES[index]["code"]


SIGNER = """
async function onTrack(event, settings) {
  return jsonwebtoken.sign({sub: event.sub, iat: 1700000000}, settings.key,
                           {algorithm: event.alg, expiresIn: '1h', audience: 'pyjwt', keyid: 'k1'});
}
"""


@pytest.mark.parametrize(("alg", "priv", "pub"), [("RS256", "rsa", "rsaPub"), ("ES256", "ec", "ecPub")])
def test_a_token_signed_in_a_function_verifies_with_pyjwt(alg: str, priv: str, pub: str) -> None:
    keys = fixture_keys()
    r = run(sandbox(SIGNER), {"sub": "user-7", "alg": alg}, {"key": keys[priv]})
    assert r.ok, r.value
    claims = pyjwt.decode(r.value, keys[pub], algorithms=[alg], audience="pyjwt", options={"verify_exp": False})
    assert claims == {"sub": "user-7", "iat": 1700000000, "exp": 1700003600, "aud": "pyjwt"}
    assert pyjwt.get_unverified_header(r.value) == {"alg": alg, "typ": "JWT", "kid": "k1"}
    with pytest.raises(pyjwt.InvalidSignatureError):
        pyjwt.decode(
            r.value[:-4] + ("AAAA" if not r.value.endswith("AAAA") else "BBBB"),
            keys[pub],
            algorithms=[alg],
            options={"verify_exp": False, "verify_aud": False},
        )


VERIFIER = """
async function onTrack(event, settings) {
  try { return jsonwebtoken.verify(event.token, settings.key, {audience: 'fn', clockTimestamp: 1700000100}) }
  catch (e) { return {name: e.name, message: e.message} }
}
"""


@pytest.mark.parametrize(
    ("alg", "priv", "pub"), [("RS256", "rsa", "rsaPub"), ("ES256", "ec", "ecPub"), ("PS384", "rsa", "rsaPub")]
)
def test_a_token_signed_by_pyjwt_verifies_in_a_function(alg: str, priv: str, pub: str) -> None:
    keys = fixture_keys()
    token = pyjwt.encode({"sub": "u", "aud": "fn", "iat": 1700000000, "exp": 1700000200}, keys[priv], algorithm=alg)
    sb = sandbox(VERIFIER)
    r = run(sb, {"token": token}, {"key": keys[pub]})
    assert r.ok and r.value == {"sub": "u", "aud": "fn", "iat": 1700000000, "exp": 1700000200}, r.value
    other = pyjwt.encode(
        {"sub": "u", "aud": "fn"},
        keys["ec384" if alg != "ES256" else "rsa"],
        algorithm="ES384" if alg != "ES256" else "RS256",
    )
    r = run(sb, {"token": other}, {"key": keys[pub]})
    assert r.value["name"] == "JsonWebTokenError"
    forged = token.rsplit(".", 1)[0] + "." + pyjwt.encode({"x": 1}, keys[priv], algorithm=alg).rsplit(".", 1)[1]
    assert run(sb, {"token": forged}, {"key": keys[pub]}).value == {
        "name": "JsonWebTokenError",
        "message": "invalid signature",
    }


def test_hostile_tokens_and_keys_stay_inside_the_function() -> None:
    sb = sandbox("""async function onTrack(event) { const out = [];
      for (const [t, k] of [['x'.repeat(100000) + '.a.b', 's'], ['eyJhbGciOiJIUzI1NiJ9.e30.' + 'A'.repeat(5000), 's'],
                            ['eyJhbGciOiJFUzI1NiJ9.e30.AAAA', {kty: 'EC'}], [{}, 's'], ['a.b.c', 42]])
        try { out.push(JSON.stringify(jsonwebtoken.verify(t, k))) } catch (e) { out.push(e.name) }
      return out }""")
    r = run(sb)
    assert r.ok, r.value
    assert r.value == ["JsonWebTokenError"] * 5
