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
