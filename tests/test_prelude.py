"""The prelude's globals behave like their Node / WHATWG counterparts."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest
from test_sandbox_helpers import js, run, sandbox


def test_lodash_is_real_lodash() -> None:
    assert js("[_.VERSION, _.get({a: {b: [1, {c: 3}]}}, 'a.b[1].c'), _.pick({x: 1, y: 2, z: 3}, ['x', 'z'])]") == [
        "4.17.4",
        3,
        {"x": 1, "z": 3},
    ]


@pytest.mark.parametrize("alg", ["md5", "sha1", "sha256", "sha512"])
def test_create_hash_matches_hashlib(alg: str) -> None:
    text = "héllo wörld ✓"
    got = js(
        f"[crypto.createHash('{alg}').update({text!r}).digest('hex'), "
        f"crypto.createHash('{alg}').update({text!r}, 'utf8').digest('base64')]"
    )
    digest = hashlib.new(alg, text.encode()).digest()
    assert got == [digest.hex(), base64.b64encode(digest).decode()]


def test_create_hmac_matches_python() -> None:
    got = js("crypto.createHmac('sha256', 'key').update('a').update(Buffer.from('b')).digest('hex')")
    assert got == hmac.new(b"key", b"ab", "sha256").hexdigest()


def test_random_uuid_and_bytes() -> None:
    uuid, n, hexlen = js(
        "[crypto.randomUUID(), crypto.randomBytes(16).length, crypto.randomBytes(8).toString('hex').length]"
    )
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", uuid)
    assert (n, hexlen) == (16, 16)


def test_buffer_encodings_round_trip() -> None:
    got = js("""[Buffer.from('héllo ✓').toString('base64'), Buffer.from('aGk=', 'base64').toString(),
                 Buffer.from('héllo').toString('hex'), Buffer.from('68c3a9', 'hex').toString('utf8'),
                 Buffer.byteLength('✓'), Buffer.concat([Buffer.from('a'), Buffer.from('b')]).toString(),
                 Buffer.isBuffer(Buffer.alloc(2))]""")
    assert got == [base64.b64encode("héllo ✓".encode()).decode(), "hi", "héllo".encode().hex(), "hé", 3, "ab", True]


def test_atob_btoa() -> None:
    assert js("[btoa('user:'), atob('dXNlcjo='), btoa('\\xff\\x00')]") == ["dXNlcjo=", "user:", "/wA="]
    # as the btoa / atob npm packages Segment ships (Buffer-based): no InvalidCharacterError
    assert js("[btoa('✓'), atob('not base64!')]") == ["Ew==", bytes.fromhex("9e8b5b6ac7ba").decode("latin-1")]


def test_url_and_search_params() -> None:
    got = js("""(() => {
        const u = new URL('https://Example.com/a/./b/../c?x=1#frag');
        u.searchParams.set('ts', '2020-01-01T00:00:00Z');
        u.searchParams.append('q', 'a b&c');
        const rel = new URL('../d?y=2', 'https://h.com/a/b/c');
        return [u.toString(), u.hostname, u.pathname, u.searchParams.get('x'), rel.href, new URL('https://foo').href,
                new URLSearchParams({a: '1', b: 'x y'}).toString(), [...new URLSearchParams('a=1&a=2').getAll('a')]]
    })()""")
    assert got == [
        "https://example.com/a/c?x=1&ts=2020-01-01T00%3A00%3A00Z&q=a+b%26c#frag",
        "example.com",
        "/a/c",
        "1",
        "https://h.com/a/d?y=2",
        "https://foo/",
        "a=1&b=x+y",
        ["1", "2"],
    ]


def test_invalid_url_throws_type_error() -> None:
    r = run(sandbox("async function onTrack() { return new URL('not a url') }"))
    assert not r.ok and r.value["name"] == "TypeError"


def test_headers_are_case_insensitive() -> None:
    got = js("""(() => { const h = new Headers({'Content-Type': 'a'}); h.append('X-A', '1'); h.append('x-a', '2');
                return [h.get('content-type'), h.get('X-A'), h.has('x-a'), [...h.keys()]] })()""")
    assert got == ["a", "1, 2", True, ["content-type", "x-a"]]


def test_request_and_response_objects() -> None:
    got = js("""(async () => {
        const q = new Request('https://x.com/p', {method: 'post', body: 'hi'});
        const r = new Response('{"a":1}', {status: 404});
        return [q.method, q.url, await q.text(), r.status, r.ok, (await r.json()).a]
    })()""")
    assert got == ["POST", "https://x.com/p", "hi", 404, False, 1]


@pytest.mark.parametrize("cls", ["EventNotSupported", "InvalidEventPayload", "ValidationError", "RetryError"])
def test_error_classes_are_named_after_themselves(cls: str) -> None:
    assert js(
        f"(() => {{ const e = new {cls}('m'); return [e.name, e.message, e instanceof Error, {cls}.name] }})()"
    ) == [cls, "m", True, cls]


def test_console_output_is_captured_and_capped() -> None:
    sb = sandbox("""async function onTrack(e) {
        console.log('hello', {a: 1}, [2]); console.warn('careful'); console.error(new Error('bad'));
        if (e.flood) for (let i = 0; i < 1000; i++) console.info('line', i, 'x'.repeat(30))
        return 1 }""")
    logs = run(sb).logs
    assert [(level, msg.split("\n")[0]) for _, level, msg, _ in logs] == [
        ("log", "hello { a: 1 } [ 2 ]"),
        ("warn", "careful"),
        ("error", "Error: bad"),
    ]
    flood = run(sb, {"flood": True}).logs
    assert sum(len(m) for _, _, m, _ in flood) < 4096 + 100
    assert flood[-1][2].endswith("[log output truncated at 4 KB]")


def test_cache_load_memoizes_per_version() -> None:
    sb = sandbox("""var calls = 0;
        async function onTrack() { return [await cache.load('k', 60000, async () => ++calls), calls] }""")
    assert run(sb).value == [1, 1]
    assert run(sb).value == [1, 1]


def test_return_value_is_truncated_and_json_safe() -> None:
    assert len(js("'x'.repeat(100000)")) < 4200
    assert js("({f: () => 1, n: undefined, d: new Date(0)})") == {"d": "1970-01-01T00:00:00.000Z"}


def test_request_urls_parse_the_same_from_the_per_context_cache() -> None:
    """fetch()'s Request keeps each URL text's parse; past its 64 entries it starts again,
    and what it answers is what a fresh parse answers, bad URLs included."""
    got = js(
        """(() => {
        const urls = [];
        for (let i = 0; i < 300; i++) urls.push("HTTP://Example.COM:80/a/../b c/" + i + "?q=1 2#f");
        const first = urls.map((u) => new Request(u).url);
        const again = urls.map((u) => new Request(new URL(u)).url);
        let bad = "";
        try { new Request("/relative"); } catch (e) { bad = e.message; }
        try { new Request("/relative"); } catch (e) { bad += "|" + e.message; }
        return [first[0], first[299], first.every((u, i) => u === again[i]), bad];
        })()"""
    )
    assert got == [
        "http://example.com/b%20c/0?q=1%202#f",
        "http://example.com/b%20c/299?q=1%202#f",
        True,
        "Only absolute URLs are supported|Only absolute URLs are supported",
    ]


def test_btoa_and_request_urls_are_not_bent_by_patched_array_machinery() -> None:
    """btoa and fetch's URL cache go through no accessor
    or iterator user code can put on Array.prototype."""
    got = js(
        """(() => {
        Object.defineProperty(Array.prototype, "5", { get() { return "!!"; }, set(v) {}, configurable: true });
        const realIter = Array.prototype[Symbol.iterator];
        Array.prototype[Symbol.iterator] = function* () { yield "javascript:"; yield "ftp:"; };
        const five = "\\x00\\x50\\x05"; // both 12-bit halves are 5: the table's index 5
        const out = [btoa(five), new Request("http://example.com/a").url];
        delete Array.prototype["5"];
        Array.prototype[Symbol.iterator] = realIter;
        out.push(btoa(five), new Request("http://example.com/a").url);
        return out;
        })()"""
    )
    assert got == ["AFAF", "http://example.com/a", "AFAF", "http://example.com/a"]
