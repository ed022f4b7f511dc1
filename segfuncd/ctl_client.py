"""segfuncctl's side of the admin socket: an httpx client and finding the socket; no click commands.

Here: AdminClient (every transport failure becomes DaemonUnreachable, every refusal
AdminRefused), CtlError, and `admin_socket_from_config`, which still finds the socket when
the config does not validate. Not here: the commands (`ctl.py`) or formatting (`ctl_format.py`).
"""

from __future__ import annotations

import errno
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import httpx

from .config import Config, find_config, parse_config_file
from .errors import ConfigError, DaemonUnreachable, SegfuncdError

DEFAULT_TIMEOUT_S = 30.0


class CtlError(SegfuncdError):
    """A request segfuncctl refuses or the daemon refused; exit status 1."""


class AdminRefused(CtlError):
    """The daemon answered, and said no (bad event, function not loaded, ...)."""


class UnknownFunctionName(CtlError):
    """The function named on the command line does not exist (a usage mistake: exit status 2)."""


def _reason(exc: BaseException) -> str:
    """A short reason for a failed connection, from the OSError underneath httpx."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            if seen.errno == errno.ENOENT:
                return "no such socket (is segfuncd running?)"
            if seen.errno == errno.ECONNREFUSED:
                return "connection refused"
            if seen.errno in (errno.EACCES, errno.EPERM):
                return "permission denied (run as the daemon's user, or with sudo)"
            return seen.strerror or str(seen)
        seen = seen.__cause__ or seen.__context__
    text = str(exc).lower()
    for key, reason in (
        ("no such file", "no such socket (is segfuncd running?)"),
        ("refused", "connection refused"),
        ("permission", "permission denied (run as the daemon's user, or with sudo)"),
    ):
        if key in text:
            return reason
    return str(exc) or type(exc).__name__


class AdminClient:
    """Sync httpx over the admin Unix socket; every failure becomes a SegfuncdError."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self._client = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(socket_path)),
            base_url="http://segfuncd",
            timeout=DEFAULT_TIMEOUT_S,
        )

    def close(self) -> None:
        self._client.close()

    def _unreachable(self, exc: BaseException) -> DaemonUnreachable:
        if isinstance(exc, httpx.TimeoutException):
            return DaemonUnreachable(str(self.socket_path), "the daemon did not answer in time")
        return DaemonUnreachable(str(self.socket_path), _reason(exc))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> httpx.Response:
        params = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._client.request(method, path, params=params, json=json_body, timeout=timeout)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        _raise_for_refusal(response)
        return response

    def get_json(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    def post_json(self, path: str, body: Any, *, timeout: float = DEFAULT_TIMEOUT_S) -> Any:
        return self.request("POST", path, json_body=body, timeout=timeout).json()

    def stream_lines(self, path: str, **params: Any) -> Iterator[str]:
        """The lines of a streamed (chunked) answer, as they arrive."""
        params = {k: v for k, v in params.items() if v is not None}
        try:
            with self._client.stream(
                "GET", path, params=params, timeout=httpx.Timeout(DEFAULT_TIMEOUT_S, read=None)
            ) as r:
                if r.status_code >= 400:
                    r.read()
                    _raise_for_refusal(r)
                yield from r.iter_lines()
        except httpx.RemoteProtocolError as exc:
            raise DaemonUnreachable(str(self.socket_path), "it closed the connection (is it stopping?)") from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        # A follower's stream only ends when the daemon stops.
        raise DaemonUnreachable(str(self.socket_path), "it closed the log stream (is it stopping?)")


def _raise_for_refusal(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        data = response.json()
        message = data.get("error") or data.get("message") or response.text
    except (ValueError, AttributeError):
        message = response.text.strip() or f"HTTP {response.status_code}"
        data = {}
    if isinstance(data, dict) and data.get("unknown_function"):
        raise UnknownFunctionName(str(message))
    raise AdminRefused(f"the daemon refused: {message}")


def admin_socket_from_config(explicit: str | None) -> Path:
    """The admin socket the config names, even when the rest of the config is invalid.

    An operator who broke the config and runs `segfuncctl reload` wants the daemon's
    answer (it keeps the old config and says why), not a refusal to talk: so a config that
    does not validate only costs a warning, as long as the socket can still be read.
    """
    path = find_config(explicit)  # a missing --config / $SEGFUNCD_CONFIG file is fatal
    if path is None:
        return Config().admin_socket
    try:
        return parse_config_file(path, read_secrets=False).admin_socket
    except ConfigError as exc:
        socket = _admin_socket_leniently(path)
        click.echo(f"segfuncctl: warning: {exc}; trying the admin socket {socket}", err=True)
        return socket


def _admin_socket_leniently(path: Path) -> Path:
    """admin.socket from a config that does not validate (or does not even parse)."""
    base = path.resolve().parent
    default = Config(base_dir=base)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return default.admin_socket
    value: Any = None
    try:
        value = tomllib.loads(text).get("admin", {}).get("socket")
    except (tomllib.TOMLDecodeError, AttributeError):
        section = ""
        for line in text.splitlines():  # the TOML is broken: read `socket = "..."` under [admin]
            stripped = line.strip()
            if stripped.startswith("["):
                section = stripped.strip("[] \t")
            elif section == "admin" and (m := re.match(r'socket\s*=\s*"([^"]*)"', stripped)):
                value = m.group(1)
                break
    return default.resolve(value) if isinstance(value, str) and value else default.admin_socket


def console_target(explicit: str | None) -> str:
    """The web console URL with its token, from the config `segfuncd` runs with."""
    from .console.token import console_url, read_token

    path = find_config(explicit)
    config = Config() if path is None else parse_config_file(path)
    if not config.admin.console_listen:
        raise CtlError(f'the web console is off: [admin] console_listen is "" in {config.source}')
    return console_url(config.admin.console_listen, read_token(config.db_path.parent))
