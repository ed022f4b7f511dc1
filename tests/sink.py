"""A real HTTP sink on loopback for tests: records every request, answers as told.

Runs in its own threads (stdlib ThreadingHTTPServer) so it serves trio tests, plain tests
and subprocesses alike. Behaviour is set per test: status, delay, body.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class SunkRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    started: float
    finished: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Behaviour:
    status: int = 200
    delay_s: float = 0.0
    body: bytes = b'{"ok":true}'
    content_type: str = "application/json"
    # path prefix -> (status, delay_s, body) overriding the defaults
    routes: dict[str, tuple[int, float, bytes]] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers (e.g. Retry-After)


class _Server(ThreadingHTTPServer):
    # The stdlib's listen backlog of 5 drops connects when a runner opens dozens at once,
    # and each dropped SYN costs the client a 1 s retransmit: a real destination's does not.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up before its answer (a function that timed out, a runner that
        # was stopped) is normal here; anything else is still printed.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class Sink:
    """Start with `Sink().start()`; `url` is http://127.0.0.1:PORT."""

    def __init__(self) -> None:
        self.requests: list[SunkRequest] = []
        self.arrived = 0  # requests whose handling began (still delayed, or answered)
        self.behaviour = Behaviour()
        self._cond = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                started = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with sink._cond:
                    sink.arrived += 1
                    sink._cond.notify_all()
                b = sink.behaviour
                status, delay, out = b.status, b.delay_s, b.body
                for prefix, spec in b.routes.items():
                    if self.path.startswith(prefix):
                        status, delay, out = spec
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", b.content_type)
                self.send_header("Content-Length", str(len(out)))
                for name, value in b.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(out)
                req = SunkRequest(
                    method=self.command,
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    started=started,
                    finished=time.monotonic(),
                )
                with sink._cond:
                    sink.requests.append(req)
                    sink._cond.notify_all()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> Sink:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_arrived(self, n: int, timeout: float = 10.0) -> None:
        """Block until at least n requests reached the sink (answered or still being delayed)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.arrived < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.arrived} requests reached the sink, expected {n}")
                self._cond.wait(left)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[SunkRequest]:
        """Block until at least n requests arrived (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"sink got {len(self.requests)} requests, expected {n}")
                self._cond.wait(left)
            return list(self.requests)
