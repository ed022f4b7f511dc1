"""The h11 <-> trio HTTP/1.1 loop shared by intake and the admin socket.

What lives here: listeners (TCP, Unix with a mode), the per-connection request loop with
keep-alive, limits, error -> status mapping, and streaming (chunked) responses. What does
not: routing, auth, JSON bodies beyond `json_response` (intake.py, admin.py).

    messages.py   ServerLimits, Request, Response, ServerStatistics, json_response
    listeners.py  open_tcp_listeners_for, open_unix_listener (stale socket files replaced safely)
    loop.py       serve_http, HttpServer and the per-connection loop

Rules of the loop (after h11's examples/trio-server.py):

1. Every wait on the peer is bounded. Waiting for the first byte of a request is bounded by
   `idle_timeout_s` (then the connection closes silently); from that byte until the whole
   body is in, by `read_timeout_s` (then 408); the handler plus the write of its answer by
   `handler_timeout_s + write_timeout_s` (a handler over time: 503); each chunk of a
   streamed answer by `write_timeout_s`. A slow or half-open client therefore holds one
   connection slot for a bounded time and never blocks anyone else: every connection is
   its own task.
2. Sizes are bounded before memory is spent: headers by h11's `max_incomplete_event_size`
   (431), bodies by Content-Length up front or by counting chunks (413, then close, as the
   unread rest of the body cannot be skipped safely).
3. Over `max_connections`, a new connection gets a 503 and is closed at once, so the
   kernel backlog never hides an overload.
4. Graceful stop: cancelling `serve_http` closes the listeners and idle connections at
   once, but a request already being read or handled (e.g. waiting for its SQLite commit)
   finishes and gets its answer, bounded by `stop_grace_s`. A client must never see a
   dropped connection for an event that was committed. Connections therefore live in a
   shielded nursery that the stop closes deliberately, instead of being cancelled blindly.
5. The hot path is lean: one cancel scope per connection whose deadline moves only twice
   per request (a request that arrived whole never moves it for reading), one `recv` per
   request in the common case, and a single send for status line + headers + body.
"""

from __future__ import annotations

from .listeners import open_tcp_listeners_for, open_unix_listener
from .loop import HttpServer, serve_http
from .messages import Handler, Request, Response, ServerLimits, ServerStatistics, json_response

__all__ = [
    "Handler",
    "HttpServer",
    "Request",
    "Response",
    "ServerLimits",
    "ServerStatistics",
    "json_response",
    "open_tcp_listeners_for",
    "open_unix_listener",
    "serve_http",
]
