"""Helpers shared by the tests: builders, waiters and small real servers.

Each section is owned by the area it serves; keep helpers here, not in test_*.py files.
"""

from __future__ import annotations

from typing import Any

# --- web console (tests/e2e/test_console*.py) -----------------------------------------------

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
CHROMEDRIVER_CANDIDATES = ("chromedriver", "chromium-driver")


def console_chromium_paths() -> tuple[str, str] | str:
    """(browser, driver) executables, or the reason they are missing (for a skip)."""
    import shutil

    browser = next((p for name in CHROMIUM_CANDIDATES if (p := shutil.which(name))), None)
    driver = next((p for name in CHROMEDRIVER_CANDIDATES if (p := shutil.which(name))), None)
    if browser is None or driver is None:
        return (
            "Chromium and chromedriver are not installed (Debian: apt-get install -y chromium chromium-driver; "
            ".ci/run installs them)"
        )
    return browser, driver


def console_open_chromium(browser: str, driver: str, *, width: int = 1360, height: int = 1000) -> Any:
    """A headless Chromium driven by Selenium; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",  # we run as root in CI containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        f"--window-size={width},{height}",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(driver))


def console_url_from_ctl(d: Any) -> str:
    """The URL `segfuncctl console --no-browser` prints for daemon `d` (a DaemonProc)."""
    out = d.ctl("console", "--no-browser")
    assert out.returncode == 0, out.stdout + out.stderr
    url = out.stdout.strip().splitlines()[-1]
    assert url.startswith("http://127.0.0.1:") and "?token=" in url, url
    return str(url)


def console_base(url: str) -> str:
    """http://HOST:PORT of a console URL."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
