"""The console's routes: pages rendered on the server from the Admin's own calls.

Everything a page shows comes from the same in-process calls the admin socket answers:
`Admin.status()`, and `Admin.handle()` with a request built here for /deliveries, /test,
/replay and /logs (`_admin_json`), so the console and `segfuncctl` cannot disagree. The
only extra reads are the store's per-minute timeline and error groups, which the admin API
has no route for.

Routes (all need the token, see auth.py; POSTs also the CSRF token and the Origin):

    GET  /                          overview: status, queue, intake, a chart per function
    GET  /functions/NAME            Event Delivery: charts, errors, failed and dead deliveries
    GET  /functions/NAME/replay     confirm replaying NAME's dead letters
    POST /functions/NAME/replay     replay them (or one: form field `id`)
    POST /functions/NAME/pause      } only when the Admin can pause (see `pause_mode`)
    POST /functions/NAME/resume     }
    GET  /deliveries/ID             one delivery, its event and attempts
    GET  /test, POST /test          Send Test Event
    GET  /logs                      live log; GET /logs/stream is its Server-Sent Events feed
    GET  /static/FILE               the console's CSS and JS (package data)

Pause / resume (`pause_mode`): the buttons render, and the POST routes act, when the Admin
has the paused set (`Admin.pauses`); they call its `POST /pause` and `POST /resume` in-process.
A function's row in /status is paused when its `state` is "paused".
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode

import jinja2
from markupsafe import Markup

from ..admin import LEVELS, plain
from ..server import Request, Response
from ..spec import sample_event, sample_type
from . import views
from .auth import Gate, parse_form

if TYPE_CHECKING:
    from ..admin import Admin

EVENT_TYPES = ("track", "identify", "page", "screen", "group", "alias", "delete")
RECENT_DELIVERIES = 20
LOG_PAGE_LINES = 100
LOG_SCAN_LINES = 1000  # newest lines searched for a messageId (admin /logs has no such filter yet)
MAX_FUNCTION_NAME = 200
_STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
_SECURITY_HEADERS = (
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),  # not no-referrer: that makes a form POST's Origin "null"
    ("cache-control", "no-store"),
)


class AdminCallError(Exception):
    """The admin API refused an in-process call; the message is its `error`."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


async def pause_mode(admin: Any) -> str | None:
    """ "routes" when the Admin can pause functions (it has the paused set), else None."""
    return "routes" if getattr(admin, "pauses", None) is not None else None


class Console:
    """The console's request handler; `handle` is served by `serve_http`."""

    def __init__(self, admin: Admin, *, token: str, clock: Callable[[], float] = time.time) -> None:
        self.admin = admin
        self.gate = Gate(token)
        self.clock = clock
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("segfuncd.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            ago=views.ago,
            clock=views.clock,
            ms=views.ms,
            pretty=views.pretty_json,
            first_line=views.first_line,
            urlpart=lambda s: quote(str(s), safe=""),
        )
        self._static = {
            name: resources.files("segfuncd.console").joinpath("static", name).read_bytes() for name in _STATIC
        }

    # --- entry --------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        form = parse_form(request) if request.method == "POST" else {}
        verdict = self.gate.check(request, form=form)
        if verdict.status:
            return self._page(
                "denied.html",
                code=verdict.status,
                reason=verdict.reason,
                refused=verdict.status == 403,
                csp_inline=True,
            )
        if verdict.via_query:  # log in: the cookie, then the same page without the token in the URL
            rest = {k: v for k, v in request.query.items() if k != "token"}
            # Never "//host...": a path that starts with two slashes would redirect off-site.
            location = "/" + request.path.lstrip("/") + (f"?{urlencode(rest)}" if rest else "")
            return _redirect(location, extra=(self.gate.cookie_header(),))
        try:
            return await self._route(request, form)
        except AdminCallError as exc:
            return self._page("error.html", code=exc.status, message=str(exc))

    async def _route(self, request: Request, form: dict[str, str]) -> Response:
        path, method = request.path, request.method
        q = request.query
        if path.startswith("/static/") and method in ("GET", "HEAD"):
            return self._static_file(path.removeprefix("/static/"))
        get = method in ("GET", "HEAD")
        if path == "/" and get:
            return await self._overview(q)
        if path == "/test":
            if get:
                return await self._test_page(q.get("function"), q.get("type"), None, None, None)
            if method == "POST":
                return await self._run_test(form)
        if path == "/logs" and get:
            return await self._logs_page(q)
        if path == "/logs/stream" and get:
            return await self._log_stream(q)
        if path.startswith("/deliveries/") and get:
            return await self._delivery(path.removeprefix("/deliveries/"))
        if path.startswith("/functions/"):
            name, _, action = path.removeprefix("/functions/").partition("/")
            name = unquote(name)
            if not name or len(name) > MAX_FUNCTION_NAME:
                return self._page("error.html", code=404, message="no such function")
            if action == "" and get:
                return await self._function(name, q)
            if action == "replay" and get:
                return await self._replay_confirm(name)
            if action == "replay" and method == "POST":
                return await self._replay(name, form)
            if action in ("pause", "resume") and method == "POST":
                mode = await pause_mode(self.admin)
                if mode is not None:
                    await self._admin_json("POST", f"/{action}", body={"function": name})
                    return _redirect(f"/functions/{quote(name, safe='')}?done={action}d")
        return self._page("error.html", code=404, message=f"nothing here: {method} {path}")

    # --- overview -----------------------------------------------------------------------

    async def _overview(self, q: Any) -> Response:
        rng = views.pick_range(q.get("range"))
        now = self.clock()
        status = await self.admin.status()
        axis = rng.axis(now)
        buckets = views.by_function(
            await self.admin.store.timeline(
                since=axis.start, until=axis.start + axis.count * axis.step_s, step_minutes=rng.step_minutes
            )
        )
        charts = [
            {
                "name": f["name"],
                "state": f["state"],
                "svg": Markup(views.delivery_chart(f["name"], axis, buckets.get(f["name"], []))),
                "totals": views.totals(buckets.get(f["name"], [])),
            }
            for f in status["functions"]
        ]
        return self._page("overview.html", status=status, charts=charts, range=rng, ranges=views.RANGES, now=now)

    # --- a function ---------------------------------------------------------------------

    async def _function(self, name: str, q: Any) -> Response:
        rng = views.pick_range(q.get("range"))
        now = self.clock()
        status = await self.admin.status()
        row = next((f for f in status["functions"] if f["name"] == name), None)
        if row is None:
            raise AdminCallError(404, f"no function named {name!r}")
        axis = rng.axis(now)
        buckets = await self.admin.store.timeline(
            function=name,
            since=axis.start,
            until=axis.start + axis.count * axis.step_s,
            step_minutes=rng.step_minutes,
        )
        errors = await self.admin.store.error_groups(name, limit=20)
        dead = await self._admin_json(
            "GET", "/deliveries", query={"function": name, "state": "dead", "n": str(RECENT_DELIVERIES)}
        )
        # Not /deliveries?state=retrying: that scans pending and leased rows by id; this walks
        # the active rows' index newest first and stops at 20 (bench/console.py).
        retrying = [plain(r) for r in await self.admin.store.retrying(name, limit=RECENT_DELIVERIES)]
        return self._page(
            "function.html",
            f=row,
            now=now,
            range=rng,
            ranges=views.RANGES,
            deliveries_svg=Markup(views.delivery_chart(name, axis, buckets, width=400)),
            success_svg=Markup(views.success_chart(name, axis, buckets)),
            latency_svg=Markup(views.latency_chart(name, axis, buckets)),
            totals=views.totals(buckets),
            errors=errors,
            dead=dead["deliveries"],
            retrying=retrying,
            can_pause=await pause_mode(self.admin) is not None,
            paused=row.get("state") == "paused",
            done=q.get("done") if q.get("done") in ("paused", "resumed") else None,
            replayed=q.get("replayed") if (q.get("replayed") or "").isdigit() else None,
        )

    async def _replay_confirm(self, name: str) -> Response:
        status = await self.admin.status()
        row = next((f for f in status["functions"] if f["name"] == name), None)
        if row is None:
            raise AdminCallError(404, f"no function named {name!r}")
        return self._page("replay.html", f=row)

    async def _replay(self, name: str, form: dict[str, str]) -> Response:
        body: dict[str, Any] = {"function": name}
        if form.get("id"):
            if not form["id"].isdigit():
                raise AdminCallError(400, f"not a delivery id: {form['id']!r}")
            body["id"] = int(form["id"])
        result = await self._admin_json("POST", "/replay", body=body)
        return _redirect(f"/functions/{quote(name, safe='')}?replayed={int(result.get('replayed', 0))}")

    async def _delivery(self, raw_id: str) -> Response:
        d = await self._admin_json("GET", f"/deliveries/{raw_id}")
        return self._page("delivery.html", d=d, now=self.clock())

    # --- Send Test Event ----------------------------------------------------------------

    async def _test_page(
        self,
        function: str | None,
        event_type: str | None,
        event_text: str | None,
        settings_text: str | None,
        result: dict[str, Any] | None,
        *,
        error: str | None = None,
    ) -> Response:
        status = await self.admin.status()
        functions = [f for f in status["functions"] if f["state"] not in ("removed",)]
        names = [f["name"] for f in functions]
        function = function if function in names else (names[0] if names else None)
        handlers = next((tuple(f["handlers"]) for f in functions if f["name"] == function), ())
        if event_type not in EVENT_TYPES:
            event_type = sample_type(handlers)
        now = self.clock()
        samples = {t: sample_event(t, now=now) for t in EVENT_TYPES}
        return self._page(
            "test.html",
            functions=functions,
            function=function,
            event_type=event_type,
            event_types=EVENT_TYPES,
            event_text=event_text if event_text is not None else views.pretty_json(samples[event_type]),
            settings_text=settings_text if settings_text is not None else "{}",
            samples_json=json.dumps(samples, indent=2),
            result=result,
            error=error,
        )

    async def _run_test(self, form: dict[str, str]) -> Response:
        function = form.get("function") or ""
        event_text, settings_text = form.get("event", ""), form.get("settings", "") or "{}"
        event_type = form.get("type")

        async def again(error: str, status: int = 400) -> Response:
            page = await self._test_page(function, event_type, event_text, settings_text, None, error=error)
            return Response(status=status, body=page.body, headers=page.headers, content_type=page.content_type)

        try:
            event = json.loads(event_text)
        except ValueError as exc:
            return await again(f"Event: not valid JSON: {exc}")
        try:
            settings = json.loads(settings_text)
        except ValueError as exc:
            return await again(f"Settings overrides: not valid JSON: {exc}")
        if not isinstance(settings, dict):
            return await again("Settings overrides: expected a JSON object")
        key = "events" if isinstance(event, list) else "event"
        try:
            result = await self._admin_json(
                "POST", "/test", body={"function": function, key: event, "settings": settings}
            )
        except AdminCallError as exc:
            return await again(str(exc), exc.status)
        return await self._test_page(function, event_type, event_text, settings_text, result)

    # --- live log -----------------------------------------------------------------------

    def _log_filters(self, q: Any) -> dict[str, str]:
        level = (q.get("level") or "").lower()
        return {
            "function": q.get("function") or "",
            "level": level if level in LEVELS else "",
            "message_id": (q.get("message_id") or "").strip(),
        }

    async def _logs_page(self, q: Any) -> Response:
        filters = self._log_filters(q)
        query = {"n": str(LOG_SCAN_LINES if filters["message_id"] else LOG_PAGE_LINES)}
        query |= {k: v for k, v in filters.items() if v}  # message_id: for when admin /logs filters by it
        data = await self._admin_json("GET", "/logs", query=query)
        lines = [views.log_view(r) for r in data["logs"]]
        lines = [ln for ln in lines if not filters["message_id"] or ln["message_id"] == filters["message_id"]]
        status = await self.admin.status()
        return self._page(
            "logs.html",
            lines=lines[-LOG_PAGE_LINES:],
            filters=filters,
            functions=[f["name"] for f in status["functions"]],
            levels=[lv for lv in LEVELS if lv != "warning"],
            stream_query=urlencode({k: v for k, v in filters.items() if v}),
        )

    async def _log_stream(self, q: Any) -> Response:
        """Server-Sent Events: each new log line as `data: {json}`; comments keep it alive."""
        filters = self._log_filters(q)
        query = {"follow": "1", "n": "0"} | {k: v for k, v in filters.items() if v}
        response = await self.admin.handle(_admin_request("GET", "/logs", query=query))
        if response.status != 200 or isinstance(response.body, (bytes, bytearray)):
            raise AdminCallError(response.status, _error_of(response))
        return Response(
            status=200,
            body=_sse(response.body, filters["message_id"]),
            headers=(("cache-control", "no-store"), ("x-accel-buffering", "no")),
            content_type="text/event-stream; charset=utf-8",
        )

    # --- plumbing -----------------------------------------------------------------------

    async def _admin_json(
        self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None
    ) -> dict[str, Any]:
        """One admin call in-process: the same route `segfuncctl` reaches over the socket."""
        response = await self.admin.handle(_admin_request(method, path, query=query, body=body))
        if response.status >= 400:
            raise AdminCallError(response.status, _error_of(response))
        assert isinstance(response.body, (bytes, bytearray))
        data: dict[str, Any] = json.loads(response.body)
        return data

    def _static_file(self, name: str) -> Response:
        if name not in _STATIC:
            return self._page("error.html", code=404, message="no such file")
        return Response(
            status=200,
            body=self._static[name],
            content_type=_STATIC[name],
            headers=(("cache-control", "private, max-age=300"), ("x-content-type-options", "nosniff")),
        )

    def _page(self, template: str, *, code: int = 200, csp_inline: bool = False, **context: Any) -> Response:
        html = self.env.get_template(template).render(csrf=self.gate.csrf, nav=template.split(".")[0], **context)
        headers = _SECURITY_HEADERS
        if csp_inline:  # the 401 page cannot load the (token-protected) stylesheet
            headers = (
                ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
                *_SECURITY_HEADERS[1:],
            )
        return Response(status=code, body=html.encode(), headers=headers, content_type="text/html; charset=utf-8")


def _admin_request(method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None) -> Request:
    query = query or {}
    raw = b"" if body is None else json.dumps(body).encode()
    return Request(
        method=method,
        target=path + (f"?{urlencode(query)}" if query else ""),
        path=path,
        query=query,
        headers={"content-type": "application/json"} if body is not None else {},
        body=raw,
        peer=None,
        local=True,
    )


def _error_of(response: Response) -> str:
    try:
        assert isinstance(response.body, (bytes, bytearray))
        return str(json.loads(response.body).get("error") or f"admin answered {response.status}")
    except (ValueError, AssertionError, AttributeError):
        return f"admin answered {response.status}"


def _redirect(location: str, *, extra: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(
        status=303,
        body=b"",
        headers=(("location", location), ("cache-control", "no-store"), *extra),
        content_type="text/plain",
    )


async def _sse(body: AsyncIterator[bytes], message_id: str) -> AsyncIterator[bytes]:
    """The admin's NDJSON follow stream as Server-Sent Events, filtered by messageId."""
    yield b"retry: 2000\n: connected\n\n"
    buf = b""
    try:
        async for chunk in body:
            buf += chunk
            *complete, buf = buf.split(b"\n")
            out = []
            for line in complete:
                if not line.strip():
                    out.append(b": keepalive\n\n")
                    continue
                view = views.log_view(json.loads(line))
                if message_id and view["message_id"] != message_id:
                    continue
                out.append(b"data: " + json.dumps(view).encode() + b"\n\n")
            if out:
                yield b"".join(out)
    finally:
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()
