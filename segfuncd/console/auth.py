"""Who may use the console: the token, its cookie, the CSRF token and the Origin check.

Rules (pure functions over a Request; `app.py` applies them before routing):

1. Every request needs the token, either as `?token=` (the URL `segfuncctl console`
   prints) or as the `segfuncd_console` cookie that such a request sets (HttpOnly,
   SameSite=Strict, Path=/). Anything else is refused with 401 and a page that says how to
   get a URL. Comparisons are constant-time.
2. A state-changing request (anything but GET / HEAD) must also carry the CSRF token (a
   form field `csrf` or the `X-CSRF-Token` header) and an `Origin` (or, lacking one, a
   `Referer`) whose scheme://host:port is the one the browser addressed (`Host`). A
   foreign or missing origin is refused with 403 even with a valid cookie: SameSite
   already keeps the cookie off cross-site requests, this is the second lock.
3. The CSRF token is derived from the token (HMAC), so it survives restarts with it and
   needs no server-side session table.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlsplit

from ..server import Request

COOKIE = "segfuncd_console"
SAFE_METHODS = ("GET", "HEAD")


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What the gate decided: `status` 0 lets the request through."""

    status: int = 0  # 0: allowed; 401: no or wrong token; 403: CSRF / Origin refused
    reason: str = ""
    via_query: bool = False  # the token came in the URL: set the cookie and redirect


class Gate:
    """Checks requests against one token."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the console token must not be empty")
        self._token = token.encode()
        self.csrf = hmac.new(self._token, b"segfuncd-console-csrf", hashlib.sha256).hexdigest()

    def _matches(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), self._token)

    def check(self, request: Request, *, form: dict[str, str] | None = None) -> Verdict:
        """Rules 1 and 2 of the module docstring."""
        query_token = request.query.get("token")
        via_query = self._matches(query_token)
        if not via_query and not self._matches(cookie_value(request)):
            why = "the token in the URL is wrong" if query_token is not None else "no valid console token"
            return Verdict(status=401, reason=why)
        if request.method not in SAFE_METHODS:
            if not same_origin(request):
                return Verdict(status=403, reason="the request's Origin is not this console")
            given = request.headers.get("x-csrf-token") or (form or {}).get("csrf") or ""
            if not hmac.compare_digest(given.encode(), self.csrf.encode()):
                return Verdict(status=403, reason="missing or wrong CSRF token; reload the page and try again")
        return Verdict(via_query=via_query)

    def cookie_header(self) -> tuple[str, str]:
        """Set-Cookie for a successful `?token=` login."""
        return ("set-cookie", f"{COOKIE}={self._token.decode()}; Path=/; HttpOnly; SameSite=Strict")


def cookie_value(request: Request) -> str | None:
    raw = request.headers.get("cookie")
    if not raw:
        return None
    try:
        jar: SimpleCookie = SimpleCookie(raw)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def same_origin(request: Request) -> bool:
    """Whether Origin (or Referer) names the host the browser sent this request to."""
    host = request.headers.get("host")
    if not host:
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        referer = request.headers.get("referer")
        if not referer or origin == "null":
            return False
        origin = referer
    parts = urlsplit(origin)
    return parts.scheme == "http" and parts.netloc.lower() == host.lower()


def parse_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body as a dict (last value wins)."""
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return {}
    try:
        return dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return {}
