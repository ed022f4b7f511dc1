"""Secret values never reach a log line, in any of the forms a function prints them."""

from __future__ import annotations

import base64
import json

from segfuncd.config import FunctionConfig
from segfuncd.redact import REDACTED, Redactor, redact, secret_values


def test_api_key_is_always_secret() -> None:
    cfg = FunctionConfig(settings={"apiKey": "sk-live-1234", "channel": "ops"})
    assert secret_values(cfg) == ("sk-live-1234",)


def test_secret_settings_add_to_api_key_and_nested_values_count() -> None:
    cfg = FunctionConfig(
        settings={
            "apiKey": "k-000001",
            "token": "tok-abcdef",
            "creds": {"user": "bob-user", "ports": [8443]},
            "channel": "ops",
        },
        secret_settings=("token", "creds"),
    )
    assert set(secret_values(cfg)) == {"k-000001", "tok-abcdef", "bob-user", "8443"}


def test_override_settings_are_used_when_given() -> None:
    cfg = FunctionConfig(settings={"apiKey": "configured"})
    assert secret_values(cfg, {"apiKey": "overridden"}) == ("overridden",)


def test_missing_and_empty_settings_contribute_nothing() -> None:
    cfg = FunctionConfig(settings={"apiKey": ""}, secret_settings=("nope",))
    assert redact("anything at all", secret_values(cfg)) == "anything at all"


def test_raw_value_is_replaced_everywhere() -> None:
    assert redact("key=s3cr3t! and again s3cr3t!", ["s3cr3t!"]) == f"key={REDACTED} and again {REDACTED}"


def test_json_escaped_and_percent_encoded_forms_are_replaced() -> None:
    secret = 'pa"ss/wo rd'
    line = json.dumps({"settings": {"apiKey": secret}})
    assert secret not in redact(line, [secret]) and REDACTED in redact(line, [secret])
    assert redact("https://x/?key=pa%22ss%2Fwo%20rd", [secret]) == f"https://x/?key={REDACTED}"


def test_basic_auth_header_built_as_in_the_seed_is_replaced() -> None:
    """The seed builds 'Basic ' + btoa(`${settings.apiKey}:`); logging it must not leak the key."""
    header = "Basic " + base64.b64encode(b"sk-live-1234:").decode()
    assert redact(header, ["sk-live-1234"]) == f"Basic {REDACTED}"


def test_short_values_are_left_alone() -> None:
    assert redact("on 1 2 3", ["on", "1"]) == "on 1 2 3"


def test_longest_secret_wins_when_one_contains_another() -> None:
    assert redact("abcdefgh", ["abcd", "abcdefgh"]) == REDACTED


def test_empty_redactor_is_falsy_and_identity() -> None:
    r = Redactor([])
    assert not r and r("text") == "text"


def test_hex_upper_case_reversed_and_split_forms_are_replaced() -> None:
    key = "sk_live_0123456789abcdef"
    for line in (
        key.upper(),
        key.encode().hex(),
        key.encode().hex().upper(),
        key[::-1],
        f"first half {key[:12]} second half {key[12:]}",
    ):
        out = redact(line, [key])
        assert REDACTED in out and "0123456789" not in out.lower() and "33343536" not in out.lower(), (line, out)


def test_base64_of_user_colon_secret_is_replaced_at_every_alignment() -> None:
    key = "sk_live_0123456789abcdef"
    for prefix in ("", "u:", "us:", "user:"):
        encoded = base64.b64encode((prefix + key).encode()).decode()
        out = redact("Basic " + encoded, [key])
        assert REDACTED in out and len(out) < len("Basic " + encoded) - 16, (prefix, out)


def test_a_key_with_a_space_or_bar_is_replaced_in_every_url_encoding() -> None:
    key = "sk live|Abc123xyz"
    for url in (
        "https://x/?key=sk%20live|Abc123xyz",  # new URL(): the query set leaves | alone
        "https://x/sk%20live%7CAbc123xyz",
        "https://x/?key=sk+live%7CAbc123xyz",  # URLSearchParams
        "https://x/?key=sk%20live%7cabc123xyz".upper(),
    ):
        assert REDACTED in redact(url, [key]) and "ABC123XYZ" not in redact(url, [key]).upper(), url


def test_a_callback_return_is_redacted_keys_and_values() -> None:
    r = Redactor(["sk_live_0123456789"])
    value = {"a": ["sk_live_0123456789", 1], "sk_live_0123456789": {"b": True}}
    assert r.value(value) == {"a": [REDACTED, 1], REDACTED: {"b": True}}


def test_ordinary_text_is_left_alone() -> None:
    line = "POST https://api.example.com/v1/events -> 200 (12 ms) user u1 signed up"
    assert redact(line, ["sk_live_0123456789abcdef", "tok-abcdef"]) == line


def test_pieces_of_a_secret_are_found_whatever_its_characters_and_the_text_around() -> None:
    """The piece search's cheap pre-check (runs of the secret's characters) misses nothing:
    non-ASCII characters in the secret, pieces at the ends of the text, upper case, reversed,
    and pieces inside a long run of other secret characters."""
    for key in ("sk_live_0123456789abcdef", "päss-wörd-Ünïcode-ß12", "ABCDEFGHIJKLMNOP"):
        low = key.lower()
        for line in (
            key[:7],
            f"x{key[-7:]}",
            f"a {key[3:10].upper()} b",
            f"rev {key[::-1][:8]} end",
            f"{low[:5]}{low[:9]}{low[4:6]}",
            f"é {key[5:12]} ü",
        ):
            out = redact(line, [key])
            assert REDACTED in out, (key, line, out)


def test_text_of_the_secret_characters_but_no_piece_is_left_alone() -> None:
    key = "abcdefghijklmnop"
    line = "acegikmo bdfhjlnp gfedXcba"  # its characters, never 7 of the secret (or reversed) in a row
    assert redact(line, [key]) == line


def test_pieces_are_found_in_each_run_of_secret_characters_wherever_it_is() -> None:
    """The piece search looks only inside runs of the secret's characters: several runs, a
    false run (a long ID of one repeated secret character) before the piece, a piece at the
    very end, and two pieces in one run."""
    key = "k3Yq9vTz8WbN2mLr5XcP7dHs"
    line = (
        '{"messageId":"m-1-xxxxxxxxxxxxxxxxxxxx","a":"' + key[2:10] + '","b":"zzzzzzz",'
        f'"c":"{key[12:20]}{key[:8]}","end":"{key[-8:]}'
    )
    out = redact(line, [key])
    assert "xxxxxxxxxxxxxxxxxxxx" in out and "zzzzzzz" in out
    for piece in (key[2:10], key[12:20], key[:8], key[-8:]):
        assert piece not in out, (piece, out)
    assert out.count(REDACTED) == 3, out  # the two pieces side by side are one span
