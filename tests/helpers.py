"""Helpers shared by the tests: builders, waiters and small real servers.

Each section is owned by the area it serves; keep helpers here, not in test_*.py files.
"""

from __future__ import annotations

import socket
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# --- egress (issue 11) ------------------------------------------------------------------

# Loopback is denied to fetch() by default; tests whose functions call the loopback sink
# (tests/sink.py) open it explicitly, as an operator would for a local service.
SINK_ALLOW = ("127.0.0.1",)


@dataclass(frozen=True)
class EgressRecord:
    """One request a RecordingServer saw: the request target is absolute-form for a proxy."""

    method: str
    target: str
    headers: dict[str, str]


class RecordingServer:
    """A threaded HTTP server on `host` (any local address, v4 or v6) that records requests.

    `GET /redirect?to=URL&status=302` answers that redirect; anything else answers 200 with
    the text `NAME saw TARGET`. Used as the internal service, the metadata impostor and the
    loopback proxy of the egress tests (tests/e2e/netns_egress.py).
    """

    def __init__(self, host: str, name: str) -> None:
        self.name = name
        self.records: list[EgressRecord] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                server.records.append(
                    EgressRecord(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                if "/redirect" in self.path and "to" in query:
                    self.send_response(int(query.get("status", ["302"])[0]))
                    self.send_header("Location", query["to"][0])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = f"{server.name} saw {self.path}".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        self._server = Server((host, 0), Handler)
        self.port = int(self._server.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
