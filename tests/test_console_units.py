"""The console's pure parts: the gate (token, cookie, CSRF, Origin), the token file, the SVG charts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from segfuncd.console.auth import COOKIE, Gate, parse_form, same_origin
from segfuncd.console.charts import Axis, Series, lines, nice_max, stacked_bars
from segfuncd.console.token import console_url, load_or_create_token, read_token
from segfuncd.errors import SegfuncdError
from segfuncd.server import Request

TOKEN = "s3cret-token"
HOST = "127.0.0.1:8089"


def req(method: str = "GET", *, query: dict[str, str] | None = None, **headers: str) -> Request:
    return Request(
        method=method,
        target="/",
        path="/",
        query=query or {},
        headers={"host": HOST, **{k.replace("_", "-"): v for k, v in headers.items()}},
        body=b"",
        peer="127.0.0.1",
        local=True,
    )


class TestGate:
    gate = Gate(TOKEN)

    def test_no_token_wrong_token_and_forged_cookie_are_401(self) -> None:
        assert self.gate.check(req()).status == 401
        assert self.gate.check(req(query={"token": "nope"})).status == 401
        assert self.gate.check(req(cookie=f"{COOKIE}=nope")).status == 401
        assert self.gate.check(req(cookie="garbage;;;=\x00")).status == 401

    def test_the_url_token_logs_in_and_the_cookie_keeps_you_in(self) -> None:
        v = self.gate.check(req(query={"token": TOKEN}))
        assert v.status == 0 and v.via_query
        name, value = self.gate.cookie_header()
        assert name == "set-cookie" and "HttpOnly" in value and "SameSite=Strict" in value
        assert self.gate.check(req(cookie=f"other=1; {COOKIE}={TOKEN}")).status == 0

    def test_a_post_needs_csrf_and_this_origin(self) -> None:
        cookie = f"{COOKIE}={TOKEN}"
        good = {"csrf": self.gate.csrf}
        assert self.gate.check(req("POST", cookie=cookie, origin=f"http://{HOST}"), form=good).status == 0
        assert self.gate.check(req("POST", cookie=cookie, origin="http://evil.test"), form=good).status == 403
        assert self.gate.check(req("POST", cookie=cookie, origin="https://" + HOST), form=good).status == 403
        assert self.gate.check(req("POST", cookie=cookie), form=good).status == 403  # no Origin, no Referer
        assert self.gate.check(req("POST", cookie=cookie, origin=f"http://{HOST}"), form={}).status == 403
        assert self.gate.check(req("POST", cookie=cookie, origin=f"http://{HOST}"), form={"csrf": "x"}).status == 403
        header = req("POST", cookie=cookie, origin=f"http://{HOST}", x_csrf_token=self.gate.csrf)
        assert self.gate.check(header).status == 0

    def test_the_csrf_token_depends_on_the_token(self) -> None:
        assert Gate(TOKEN).csrf == self.gate.csrf != Gate("another").csrf
        with pytest.raises(ValueError):
            Gate("")

    def test_same_origin_falls_back_to_referer_but_not_for_null(self) -> None:
        assert same_origin(req(referer=f"http://{HOST}/functions/x"))
        assert not same_origin(req(origin="null", referer=f"http://{HOST}/"))
        assert not same_origin(req(referer="http://evil.test/"))

    def test_parse_form_reads_urlencoded_bodies_only(self) -> None:
        r = Request(
            method="POST",
            target="/",
            path="/",
            query={},
            headers={"content-type": "application/x-www-form-urlencoded"},
            body=b"a=1&b=%7B%7D&c=",
            peer=None,
            local=True,
        )
        assert parse_form(r) == {"a": "1", "b": "{}", "c": ""}


def test_token_file_is_created_0600_and_kept(tmp_path: Path) -> None:
    token = load_or_create_token(tmp_path)
    path = tmp_path / "console.token"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and len(token) >= 40
    assert load_or_create_token(tmp_path) == token == read_token(tmp_path)
    os.chmod(path, 0o644)
    assert load_or_create_token(tmp_path) == token
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_reading_a_missing_token_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SegfuncdError, match="console.token"):
        read_token(tmp_path)


def test_console_url_forms() -> None:
    assert console_url("127.0.0.1:8089", "a b") == "http://127.0.0.1:8089/?token=a%20b"
    assert console_url("0.0.0.0:1", "t") == "http://127.0.0.1:1/?token=t"
    assert console_url("[::1]:2", "t") == "http://[::1]:2/?token=t"


def test_stacked_bars_stack_series_and_escape_labels() -> None:
    axis = Axis(start=0.0, step_s=60.0, count=4)
    series = (Series(key="a", label="ok", colour="#0f0"), Series(key="b", label="<bad>", colour="#f00"))
    svg = stacked_bars({1: {"a": 3, "b": 1}, 3: {"a": 0, "b": 0}}, axis=axis, series=series, label="x<y")
    assert svg.count('class="bar"') == 2 and "&lt;bad&gt;" in svg and 'aria-label="x&lt;y"' in svg
    assert "<bad>" not in svg


def test_lines_break_at_missing_values_and_nice_max_rounds_up() -> None:
    axis = Axis(start=0.0, step_s=60.0, count=5)
    series = (Series(key="v", label="v", colour="#00f"),)
    svg = lines({0: {"v": 1.0}, 1: {"v": 2.0}, 2: {"v": None}, 3: {"v": 3.0}}, axis=axis, series=series, label="l")
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 3
    assert [nice_max(v) for v in (0, 0.3, 1, 7, 11, 4000)] == [1.0, 0.5, 1.0, 10.0, 20.0, 5000.0]


async def test_the_pause_hook_follows_what_the_admin_can_do() -> None:
    import time

    from segfuncd.admin import Admin
    from segfuncd.config import Config
    from segfuncd.console import pause_mode
    from segfuncd.metrics import Metrics
    from segfuncd.pausing import Pauses

    async def reload() -> str:
        return "ok"

    def make(cls: type[Admin]) -> Admin:
        return cls(Config(), None, None, None, None, Metrics(), reload, time.time())  # type: ignore[arg-type]

    assert await pause_mode(make(Admin)) is None  # no paused set handed in: no buttons
    admin = make(Admin)
    admin.pauses = Pauses(store=None)  # type: ignore[arg-type]
    assert await pause_mode(admin) == "routes"


def test_console_listen_is_checked_like_the_other_addresses(tmp_path: Path) -> None:
    from segfuncd.config import parse_config
    from segfuncd.errors import ConfigError

    with pytest.raises(ConfigError, match=r"admin\.console_listen"):
        parse_config({"admin": {"console_listen": "nope"}}, source="x.toml", base_dir=tmp_path)
    assert parse_config({}, source="x.toml", base_dir=tmp_path).admin.console_listen == "127.0.0.1:8089"
    assert (
        parse_config({"admin": {"console_listen": ""}}, source="x.toml", base_dir=tmp_path).admin.console_listen == ""
    )


def test_log_view_shows_lines_as_segfuncctl_logs_does() -> None:
    from segfuncd.console.views import log_view

    fn = log_view(
        {"time": 0, "level": "warn", "source": "function", "function": "f", "version": "abcdef123456", "message": "m"}
    )
    assert (fn["who"], fn["level"], fn["context"]) == ("f@abcdef12", "warn", "")
    daemon = log_view(
        {
            "time": 0,
            "level": "info",
            "source": "daemon",
            "message": "delivery_attempt",
            "fields": {"function": "f", "message_id": "m-1", "attempt": 2, "outcome": "retry"},
        }
    )
    assert daemon["who"] == "segfuncd · f" and daemon["message_id"] == "m-1"
    assert daemon["context"] == "attempt=2 outcome=retry"
