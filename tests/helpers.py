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

            def do_CONNECT(self) -> None:  # an HTTPS request handed to the proxy: recorded, refused
                server.records.append(
                    EgressRecord(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                self.send_response(502)
                self.send_header("Content-Length", "0")
                self.end_headers()

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


# --- hostile intake bodies (issue 11) -----------------------------------------------------

# JSON fragments an attacker (or a buggy SDK) may put anywhere in an event.
HOSTILE_VALUES = (
    "1e400",
    "-1e400",
    "1e-400",
    "0.1e999999",
    '"\\ud800"',
    '"\\udfff"',
    '"a\\udbff"',
    '"\\ud83d\\ude00"',  # a valid pair: fine
    '"\\u0000"',
    "9" * 5000,
    "[" * 3000 + "]" * 3000,
    '{"a":' * 800 + "1" + "}" * 800,
    "null",
    "true",
    '""',
    '"' + "x" * 40_000 + '"',
    "{}",
    "[]",
    "-0",
    '"2024-13-45T99:99:99Z"',
    '{"\\ud800": 1}',
    "123456789012345678901234567890",
)
HOSTILE_FIELDS = (
    "type",
    "userId",
    "anonymousId",
    "event",
    "messageId",
    "timestamp",
    "sentAt",
    "properties",
    "traits",
    "context",
    "integrations",
    "writeKey",
    "previousId",
    "groupId",
    "\\ud800",
)


def hostile_batch(rng: Any, valid: int) -> tuple[bytes, int]:
    """A /v1/batch body: `valid` good track events with hostile items mixed in, as raw JSON.

    Returns (body, how many hostile items); the envelope is sometimes hostile too."""
    items = [
        f'{{"type":"track","userId":"u{i}","event":"E","messageId":"fz-{rng.random()}","properties":{{"i":{i}}}}}'
        for i in range(valid)
    ]
    hostile = rng.randint(1, 4)
    for _ in range(hostile):
        field = rng.choice(HOSTILE_FIELDS)
        value = rng.choice(HOSTILE_VALUES)
        items.insert(rng.randint(0, len(items)), f'{{"type":"track","userId":"h","event":"E","{field}":{value}}}')
    envelope = ""
    if rng.random() < 0.2:
        envelope = f',"{rng.choice(("context", "sentAt", "integrations", "writeKey"))}":{rng.choice(HOSTILE_VALUES)}'
    return ('{"batch":[' + ",".join(items) + "]" + envelope + "}").encode("utf-8"), hostile


def corrupt(rng: Any, body: bytes) -> bytes:
    """Flip, drop or insert a few bytes (invalid UTF-8 and broken JSON included)."""
    data = bytearray(body)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(3)
        at = rng.randrange(max(1, len(data)))
        if op == 0 and data:
            data[at] = rng.randrange(256)
        elif op == 1 and data:
            del data[at]
        else:
            data.insert(at, rng.randrange(256))
    return bytes(data)
