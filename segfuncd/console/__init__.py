"""The web console: Event Delivery charts, Send Test Event and a live log, in a browser.

Served by the daemon on `[admin] console_listen` (default 127.0.0.1:8089, "" off) with
the same HTTP loop as intake and admin (`segfuncd.server`); every page is built from the
Admin's in-process calls, so it shows what `segfuncctl` shows.

    token.py     the access token file in the state directory; the URL segfuncctl prints
    auth.py      token / cookie / CSRF / Origin checks (pure)
    app.py       Console: routes, the in-process admin calls, page rendering (Jinja2)
    views.py     time ranges, chart inputs, formatters (pure)
    charts.py    SVG bar and line charts (pure)
    templates/   Jinja2 pages;  static/  the console's own small CSS and JS

`serve_console` is the service the daemon starts in its root nursery.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import trio

from ..server import HttpServer, ServerLimits, open_tcp_listeners_for, serve_http
from .app import Console, pause_mode
from .token import console_url, load_or_create_token, read_token, token_path

if TYPE_CHECKING:
    from ..admin import Admin

__all__ = [
    "Console",
    "console_url",
    "load_or_create_token",
    "pause_mode",
    "read_token",
    "serve_console",
    "token_path",
]

CONSOLE_LIMITS = ServerLimits(max_connections=64, max_body_bytes=1024 * 1024, handler_timeout_s=120.0)


async def serve_console(
    admin: Admin,
    *,
    listen: str,
    state_dir: Path,
    task_status: trio.TaskStatus[HttpServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the console on `listen` until cancelled; started once listening.

    Raises SegfuncdError when the address cannot be bound or the token file cannot be
    written (both name the culprit).
    """
    token = load_or_create_token(state_dir)
    listeners = await open_tcp_listeners_for(listen)
    console = Console(admin, token=token)
    await serve_http(console.handle, listeners, limits=CONSOLE_LIMITS, task_status=task_status)
