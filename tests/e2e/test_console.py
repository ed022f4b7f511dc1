"""The web console over plain HTTP: the token, its cookie, CSRF and Origin, escaping, `segfuncctl console`.

Browser-driven tests are in test_console_browser.py; these need no browser.
"""

from __future__ import annotations

import os
import re
import socket
import stat
from contextlib import closing
from typing import Any

import httpx
from helpers import console_base, console_url_from_ctl

LOGGER = """
async function onTrack(event, settings) {
  console.log("<script>alert('x')</script> " + event.event)
  return event.properties.nope.nope   // TypeError: dead-lettered at once
}
"""


def _login(url: str) -> tuple[httpx.Client, str]:
    """A client holding the console cookie (from the ?token= URL) and the page's CSRF token."""
    client = httpx.Client(base_url=console_base(url), timeout=10)
    r = client.get(url.removeprefix(console_base(url)))
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    page = client.get("/functions/fn")
    assert page.status_code == 200, page.text
    m = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text)
    assert m, "no CSRF token in the function page"
    return client, m.group(1)


def test_console_refuses_requests_without_the_token_and_says_how_to_get_one(daemon: Any) -> None:
    d = daemon(plugins={"fn": LOGGER})
    url = console_url_from_ctl(d)
    base = console_base(url)
    token_file = d.dir / "var" / "console.token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert token_file.read_text().strip() in url

    for path in ("/", "/functions/fn", "/logs/stream", "/static/console.css", "/test", "/deliveries/1"):
        r = httpx.get(base + path, timeout=10)
        assert r.status_code == 401, (path, r.status_code)
        assert "segfuncctl console" in r.text
    wrong = httpx.get(base + "/?token=not-the-token", timeout=10)
    assert wrong.status_code == 401 and "wrong" in wrong.text
    forged = httpx.get(base + "/", cookies={"segfuncd_console": "forged"}, timeout=10)
    assert forged.status_code == 401


def test_state_changing_requests_need_csrf_and_this_origin(daemon: Any) -> None:
    d = daemon(plugins={"fn": LOGGER})
    d.wait_until(lambda: d.function_status("fn").get("state") == "live", what="fn live")
    assert d.post("/v1/track", {"userId": "u1", "event": "E"}).status_code == 200
    d.wait_until(lambda: d.function_status("fn").get("dead") == 1, what="a dead letter")
    url = console_url_from_ctl(d)
    client, csrf = _login(url)
    base = console_base(url)
    own = {"origin": base, "content-type": "application/x-www-form-urlencoded"}
    with closing(client):
        refused = [
            client.post("/functions/fn/replay", content=f"csrf={csrf}", headers={**own, "origin": "http://evil.test"}),
            client.post(
                "/functions/fn/replay", content=f"csrf={csrf}", headers={**own, "origin": "http://127.0.0.1:1"}
            ),
            client.post("/functions/fn/replay", content=f"csrf={csrf}", headers={**own, "origin": "null"}),
            client.post("/functions/fn/replay", content=f"csrf={csrf}", headers={"content-type": own["content-type"]}),
            client.post("/functions/fn/replay", content="csrf=0000", headers=own),
            client.post("/functions/fn/replay", content="", headers=own),
        ]
        for r in refused:
            assert r.status_code == 403, r.text
        # A valid CSRF token and Origin but no cookie: still the token first.
        anon = httpx.post(base + "/functions/fn/replay", content=f"csrf={csrf}", headers=own, timeout=10)
        assert anon.status_code == 401
        assert d.function_status("fn")["dead"] == 1, "a refused request must not replay"

        ok = client.post("/functions/fn/replay", content=f"csrf={csrf}", headers=own)
        assert ok.status_code == 303 and ok.headers["location"] == "/functions/fn?replayed=1", ok.text
        # A Referer from this console is accepted when a client sends no Origin.
        again = client.post(
            "/functions/fn/replay",
            content=f"csrf={csrf}",
            headers={"content-type": own["content-type"], "referer": base + "/functions/fn"},
        )
        assert again.status_code == 303


def test_pages_escape_what_functions_log_and_throw(daemon: Any) -> None:
    d = daemon(plugins={"fn": LOGGER})
    d.wait_until(lambda: d.function_status("fn").get("state") == "live", what="fn live")
    assert d.post("/v1/track", {"userId": "u1", "event": "<img src=x onerror=alert(1)>"}).status_code == 200
    d.wait_until(lambda: d.function_status("fn").get("dead") == 1, what="a dead letter")
    d.wait_until(lambda: "alert" in d.ctl("logs", "fn").stdout, what="the log line")
    client, _ = _login(console_url_from_ctl(d))
    with closing(client):
        for path in ("/logs", "/functions/fn", "/deliveries/1", "/"):
            r = client.get(path)
            assert r.status_code == 200, (path, r.text)
            assert "<script>alert" not in r.text and "<img src=x" not in r.text, path
            assert "content-security-policy" in r.headers
        assert "&lt;script&gt;alert" in client.get("/logs").text
        assert "&lt;img src=x onerror=alert(1)&gt;" in client.get("/deliveries/1").text
        assert client.get("/deliveries/999999").status_code == 404
        assert client.get("/deliveries/abc").status_code == 400
        assert client.get("/functions/nope").status_code == 404
        for hostile in ("/static/../../segfuncd.toml", "/static/%2e%2e/token", "/static/console.css/../x"):
            assert client.get(hostile).status_code == 404, hostile
        assert client.get("/static/console.css").headers["content-type"].startswith("text/css")


def test_console_off_and_ctl_says_so(daemon: Any) -> None:
    d = daemon('[admin]\nconsole_listen = ""\n')
    out = d.ctl("console", "--no-browser")
    assert out.returncode == 1 and "console_listen" in out.stderr, out.stdout + out.stderr
    assert not (d.dir / "var" / "console.token").exists()


def test_console_token_survives_a_restart(daemon: Any) -> None:
    d = daemon()
    first = console_url_from_ctl(d)
    assert d.stop() == 0
    d.start()
    assert console_url_from_ctl(d) == first
    r = httpx.get(first, timeout=10)
    assert r.status_code == 303


def test_pause_and_resume_from_the_function_page(daemon: Any) -> None:
    """The buttons pause and resume through the admin API: `status` and segfuncctl agree."""
    d = daemon(plugins={"fn": LOGGER})
    url = console_url_from_ctl(d)
    client, csrf = _login(url)
    form = {"origin": console_base(url), "content-type": "application/x-www-form-urlencoded"}
    with closing(client):
        page = client.get("/functions/fn").text
        assert "/functions/fn/pause" in page
        r = client.post("/functions/fn/pause", content=f"csrf={csrf}", headers=form)
        assert r.status_code in (302, 303), r.text
        d.wait_until(lambda: d.function_status("fn")["state"] == "paused", what="fn paused")
        assert "/functions/fn/resume" in client.get("/functions/fn").text
        r = client.post("/functions/fn/resume", content=f"csrf={csrf}", headers=form)
        assert r.status_code in (302, 303), r.text
        d.wait_until(lambda: d.function_status("fn")["state"] == "live", what="fn live again")


def test_an_explicit_console_address_in_use_stops_the_daemon_with_the_key(daemon: Any) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        try:
            daemon(f'[admin]\nconsole_listen = "127.0.0.1:{port}"\n', timeout=20)
        except AssertionError as exc:
            text = str(exc)
        else:
            raise AssertionError("segfuncd started although the console address was taken")
    assert "admin.console_listen" in text and "Traceback" not in text, text


def test_the_daemon_stops_promptly_with_a_live_log_open(daemon: Any) -> None:
    d = daemon(plugins={"fn": LOGGER})
    client, _ = _login(console_url_from_ctl(d))
    with closing(client), client.stream("GET", "/logs/stream") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines).startswith("retry:")
        # Bounded below the server's 10 s stop grace: a stream that held the stop would hit it.
        assert d.stop(timeout=8) == 0
        for _ in lines:  # the stream ends (the daemon closed it) instead of hanging
            pass


def test_the_login_redirect_stays_on_the_console(daemon: Any) -> None:
    d = daemon()
    url = console_url_from_ctl(d)
    token = url.split("?token=", 1)[1]
    r = httpx.get(f"{console_base(url)}//evil.test/x?token={token}&range=24h", timeout=10)
    assert r.status_code == 303 and r.headers["location"] == "/evil.test/x?range=24h"
