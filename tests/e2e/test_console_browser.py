"""The web console in a real Chromium (Selenium) against a real daemon, plugin and sink.

Skipped, with the reason, only when Chromium or chromedriver is not installed (.ci/run
installs Debian's `chromium` and `chromium-driver`). Set SEGFUNCD_UPDATE_SCREENSHOTS=1 to
write the README's screenshots (docs/console-*.png) from these tests; otherwise they go to
the test's tmp_path.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    console_base,
    console_chromium_paths,
    console_open_chromium,
    console_url_from_ctl,
)

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 15.0  # generous bound for page work on a loaded machine
LIVE_LOG_BOUND_S = 2.0  # the bound: a new line shows within 2 s

DELIVERING = """
async function onTrack(event, settings) {
  console.log("hello from " + event.event + " " + event.messageId)
  const res = await fetch(settings.url + "/hook", { method: "post", body: JSON.stringify({ e: event.event }) })
  return { status: res.status }
}
"""
THROWING = """
async function onTrack(event, settings) {
  console.log("about to throw for " + event.userId)
  console.warn("settings.mode is " + settings.mode)
  throw new TypeError("cannot read properties of undefined (reading 'nope')")
}
"""
FLAKY = """
async function onTrack(event, settings) {
  throw new RetryError("upstream answered 503")
}
"""
BUGGY = """
async function onTrack(event, settings) {
  return event.properties.nope.nope   // TypeError: dead-lettered at once
}
"""
FIXED = """
async function onTrack(event, settings) {
  const res = await fetch(settings.url + "/fixed", { method: "post", body: JSON.stringify({ e: event.event }) })
  return res.status
}
"""


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    found = console_chromium_paths()
    if isinstance(found, str):
        pytest.skip(found)
    driver = console_open_chromium(*found)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium: Any) -> Any:
    chromium.delete_all_cookies()
    return chromium


def _wait(driver: Any, predicate: Any, timeout: float = WAIT_S, what: str = "the page") -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(predicate, message=f"waiting for {what}")


def _screenshot(driver: Any, tmp_path: Path, name: str) -> None:
    """Saved in tmp_path; copied to docs/ when SEGFUNCD_UPDATE_SCREENSHOTS=1."""
    out = tmp_path / name
    assert driver.save_screenshot(str(out)), name
    if os.environ.get("SEGFUNCD_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(out, ROOT / "docs" / name)


def _login(driver: Any, d: Any) -> str:
    url = console_url_from_ctl(d)
    driver.get(url)
    _wait(driver, lambda drv: drv.title.startswith("Overview"), what="the overview after login")
    assert "token=" not in driver.current_url, "the token must leave the address bar"
    return console_base(url)


def test_login_then_the_overview_shows_the_function_and_its_chart(
    daemon: Any, sink: Any, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    d = daemon(
        f'[functions.orders]\nsettings = {{ url = "{sink.url}" }}\n[functions.signups]\nsettings = {{ url = "{sink.url}" }}\n',
        plugins={"orders": DELIVERING, "signups": THROWING, "webhooks": FLAKY},
    )
    d.wait_until(lambda: d.function_status("orders").get("state") == "live", what="orders live")
    for i in range(6):
        assert d.post("/v1/track", {"userId": f"u{i}", "event": f"Order {i}"}).status_code == 200
    d.wait_until(lambda: d.function_status("orders").get("delivered") == 6, what="6 deliveries")
    d.wait_until(lambda: d.function_status("signups").get("dead") == 6, what="6 dead letters")
    d.wait_until(lambda: d.function_status("webhooks").get("dead") == 6, what="6 retried, then dead")
    base = _login(browser, d)

    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-function="orders"]')
    assert "live" in row.text and "6" in row.text
    chart = browser.find_element(By.CSS_SELECTOR, '[data-chart="orders"] svg.chart')
    bars = chart.find_elements(By.CSS_SELECTOR, "rect.bar")
    assert bars, "the orders chart has no bars after 6 deliveries"
    titles = " ".join(t.get_attribute("textContent") for t in chart.find_elements(By.TAG_NAME, "title"))
    assert sum(int(n) for n in re.findall(r"(\d+) delivered", titles)) == 6, titles
    dead_chart = browser.find_element(By.CSS_SELECTOR, '[data-chart="signups"] svg.chart')
    assert dead_chart.find_elements(By.CSS_SELECTOR, "rect.bar")
    retried = browser.find_element(By.CSS_SELECTOR, '[data-chart="webhooks"] svg.chart')
    tips = " ".join(t.get_attribute("textContent") for t in retried.find_elements(By.TAG_NAME, "title"))
    assert sum(int(n) for n in re.findall(r"(\d+) retried", tips)) == 12, tips  # max_attempts = 3
    _screenshot(browser, tmp_path, "console-overview.png")

    browser.get(base + "/?range=24h")
    _wait(browser, lambda drv: "last 24 hours" in drv.page_source, what="the 24 h view")
    assert browser.find_element(By.CSS_SELECTOR, '[data-chart="orders"] svg.chart rect.bar')


def test_send_test_event_shows_callback_return_and_log_output_of_a_throwing_function(
    daemon: Any, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    d = daemon('[functions.signups]\nsettings = { mode = "configured" }\n', plugins={"signups": THROWING})
    d.wait_until(lambda: d.function_status("signups").get("state") == "live", what="signups live")
    base = _login(browser, d)
    browser.get(base + "/test")
    Select(browser.find_element(By.ID, "test-function")).select_by_value("signups")
    Select(browser.find_element(By.ID, "test-type")).select_by_value("identify")
    event = browser.find_element(By.ID, "test-event")
    assert '"type": "identify"' in event.get_attribute("value"), "the JS sample switch"
    Select(browser.find_element(By.ID, "test-type")).select_by_value("track")
    event.clear()
    event.send_keys('{"type": "track", "event": "Signed Up", "userId": "ada", "properties": {}}')
    settings = browser.find_element(By.ID, "test-settings")
    settings.clear()
    settings.send_keys('{"mode": "override"}')
    browser.find_element(By.ID, "run-test").click()

    ret = _wait(browser, lambda drv: drv.find_elements(By.ID, "callback-return"), what="Callback Return")[0]
    assert ret.text.startswith("TypeError: cannot read properties of undefined"), ret.text
    logs = browser.find_element(By.ID, "log-output").text
    assert "about to throw for ada" in logs and "[warn] settings.mode is override" in logs, logs
    assert "(no requests)" in browser.find_element(By.ID, "requests").text
    _screenshot(browser, tmp_path, "console-test.png")
    status = d.function_status("signups")
    assert (status["delivered"], status["dead"], status["pending"]) == (0, 0, 0), "a test must queue nothing"

    # A broken event is the operator's mistake: said on the page, nothing runs.
    event = browser.find_element(By.ID, "test-event")
    event.clear()
    event.send_keys("{not json")
    browser.find_element(By.ID, "run-test").click()
    err = _wait(browser, lambda drv: drv.find_elements(By.ID, "test-error"), what="the JSON error")[0]
    assert "Event: not valid JSON" in err.text


def test_a_dead_letter_is_replayed_from_its_page_and_reaches_the_sink(
    daemon: Any, sink: Any, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    d = daemon(f'[functions.fn]\nsettings = {{ url = "{sink.url}" }}\n', plugins={"fn": BUGGY})
    d.wait_until(lambda: d.function_status("fn").get("state") == "live", what="fn live")
    for event in ("Order Placed", "Order Shipped", "Order Refunded"):
        assert d.post("/v1/track", {"userId": "u1", "event": event}).status_code == 200
    d.wait_until(lambda: d.function_status("fn").get("dead") == 3, what="3 dead letters")
    old = d.function_status("fn")["version"]
    d.write_plugin("fn", FIXED)
    d.wait_until(lambda: d.function_status("fn").get("version") not in (None, old), what="the fix to go live")
    base = _login(browser, d)

    browser.get(base + "/functions/fn")
    errors = browser.find_element(By.CSS_SELECTOR, "table.errors").text
    assert "TypeError" in errors
    dead_rows = browser.find_elements(By.CSS_SELECTOR, "#dead tbody tr")
    assert len(dead_rows) == 3 and all("TypeError" in r.text for r in dead_rows)
    _screenshot(browser, tmp_path, "console-function.png")
    dead_rows[-1].find_element(By.CSS_SELECTOR, "td a").click()  # newest first: the oldest is last
    _wait(browser, lambda drv: drv.title.startswith("Delivery"), what="the delivery page")
    assert "Order Placed" in browser.find_element(By.CSS_SELECTOR, "pre.code").text
    assert "Attempt 1" in browser.page_source
    browser.back()

    browser.find_element(By.ID, "replay-all").click()
    _wait(browser, lambda drv: drv.find_elements(By.ID, "confirm-replay"), what="the confirmation")
    assert sink.requests == [], "nothing may replay before the confirmation"
    browser.find_element(By.ID, "confirm-replay").click()
    flash = _wait(browser, lambda drv: drv.find_elements(By.ID, "flash"), what="the replay result")[0]
    assert flash.text.startswith("Replayed 3 dead letters"), flash.text
    got = sink.wait_for(3)
    assert sorted(r.json()["e"] for r in got) == ["Order Placed", "Order Refunded", "Order Shipped"]
    assert {r.path for r in got} == {"/fixed"}
    d.wait_until(lambda: d.function_status("fn").get("delivered") == 3, what="the replayed deliveries")


def test_the_live_log_shows_a_new_line_and_filters_by_message_id(daemon: Any, sink: Any, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    d = daemon(f'[functions.orders]\nsettings = {{ url = "{sink.url}" }}\n', plugins={"orders": DELIVERING})
    d.wait_until(lambda: d.function_status("orders").get("state") == "live", what="orders live")
    base = _login(browser, d)

    def stored(message_id: str) -> bool:
        return message_id in d.ctl("logs", "-n", "50", "orders").stdout

    def shown(message_id: str) -> Any:
        return lambda drv: message_id in drv.find_element(By.ID, "log").text

    browser.get(base + "/logs")
    _wait(browser, lambda drv: drv.find_element(By.ID, "live-state").get_attribute("data-state") == "live", what="SSE")
    first = f"m-{uuid.uuid4()}"
    assert d.post("/v1/track", {"userId": "u", "event": "Live", "messageId": first}).status_code == 200
    d.wait_until(lambda: stored(first), what="the line in the store")
    _wait(browser, shown(first), timeout=LIVE_LOG_BOUND_S, what="the new line in the live log")

    # Filtered by messageId: a line for another event stays out, the matching one comes in.
    wanted, other = f"m-{uuid.uuid4()}", f"m-{uuid.uuid4()}"
    browser.get(base + f"/logs?function=orders&message_id={wanted}")
    _wait(browser, lambda drv: drv.find_element(By.ID, "live-state").get_attribute("data-state") == "live", what="SSE")
    assert d.post("/v1/track", {"userId": "u", "event": "Other", "messageId": other}).status_code == 200
    d.wait_until(lambda: stored(other), what="the other line in the store")
    assert d.post("/v1/track", {"userId": "u", "event": "Wanted", "messageId": wanted}).status_code == 200
    d.wait_until(lambda: stored(wanted), what="the wanted line in the store")
    _wait(browser, shown(wanted), timeout=LIVE_LOG_BOUND_S, what="the filtered line")
    assert other not in browser.find_element(By.ID, "log").text


def test_no_token_and_a_foreign_origin_are_refused_in_the_browser(
    daemon: Any, sink: Any, browser: Any, tmp_path: Path
) -> None:
    """A page on another origin that posts a replay form to the console gets 403, and nothing replays."""
    from selenium.webdriver.common.by import By

    d = daemon(plugins={"fn": BUGGY})
    d.wait_until(lambda: d.function_status("fn").get("state") == "live", what="fn live")
    assert d.post("/v1/track", {"userId": "u1", "event": "E"}).status_code == 200
    d.wait_until(lambda: d.function_status("fn").get("dead") == 1, what="a dead letter")
    base = console_base(console_url_from_ctl(d))

    browser.get(base + "/")
    denied = browser.find_element(By.ID, "denied").text
    assert "segfuncctl console" in denied

    _login(browser, d)
    # The attacker's page: same host, other port (so SameSite lets the cookie through;
    # the Origin check is what must refuse it). It even guesses a CSRF value.
    sink.behaviour.content_type = "text/html"
    sink.behaviour.body = (
        f'<form id="f" method="post" action="{base}/functions/fn/replay">'
        '<input name="csrf" value="0123456789abcdef"></form>'
        '<script>document.getElementById("f").submit()</script>'
    ).encode()
    browser.get(sink.url + "/attack")
    _wait(browser, lambda drv: drv.current_url.startswith(base), what="the cross-origin form post")
    _wait(browser, lambda drv: drv.find_elements(By.ID, "denied"), what="the refusal")
    assert "Origin" in browser.find_element(By.ID, "denied").text
    assert d.function_status("fn")["dead"] == 1, "the cross-origin post must not replay"
