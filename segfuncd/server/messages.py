"""The values that cross the server's boundary: limits, requests, responses, statistics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_HEADER_BYTES = 16 * 1024
DEFAULT_MAX_BODY_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLimits:
    """Bounds on what one connection may cost; see the package docstring, rules 1 to 4."""

    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES  # request line + headers
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # as sent on the wire (before any gzip)
    read_timeout_s: float = 30.0  # first byte of a request -> whole body received
    idle_timeout_s: float = 60.0  # keep-alive wait for the next request
    write_timeout_s: float = 30.0  # one send_all of the response (or of one chunk)
    handler_timeout_s: float = 60.0  # the handler's own work (e.g. waiting for a commit)
    max_connections: int = 1024
    stop_grace_s: float = 10.0  # after a stop, how long running requests may take to finish

    def __post_init__(self) -> None:
        for name in (
            "max_header_bytes",
            "max_body_bytes",
            "max_connections",
            "read_timeout_s",
            "idle_timeout_s",
            "write_timeout_s",
            "handler_timeout_s",
            "stop_grace_s",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"ServerLimits.{name}: must be positive, got {getattr(self, name)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """One complete request; header names are lower case, repeated headers joined by ", "."""

    method: str
    target: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    peer: str | None  # client IP; None on a Unix socket
    local: bool  # loopback or Unix socket


@dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """A response; an async-iterator body is streamed with chunked encoding."""

    status: int
    body: bytes | AsyncIterator[bytes] = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"


Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStatistics:
    """Connection counters of one `HttpServer`."""

    connections_open: int  # connections being served now
    connections_total: int  # accepted since start
    connections_refused: int  # answered 503 because of max_connections
    requests_total: int  # responses sent (any status)


def json_response(status: int, obj: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """A JSON response with compact separators."""
    return Response(status=status, body=json.dumps(obj, separators=(",", ":")).encode(), headers=headers)
