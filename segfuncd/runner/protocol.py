"""Framed messages between the pool and a runner process; pure, sans-I/O (h11 style).

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON (one
object). Requests carry an `id`; the runner answers each with an object of the same `id`.

    pool -> runner   {"op": "load",   "id", "version": {name, path, hash, source}}
                     {"op": "invoke", "id", "hash", "version"?: {...}, "events": [json str],
                      "types": [str], "settings": json str, "batch": bool}
    runner -> pool   {"id", "report": {ok, error, line, handlers}}
                     {"id", "missing": true}          (hash unknown: resend with version)
                     {"id", "results": [{error_name, error_message, value (json str),
                                         logs, requests, duration_ms}, ...],
                      "heavy"?: [function names that hit their CPU limit here lately]}

Events travel as JSON strings so they are encoded once and each invocation parses its own
copy inside the sandbox.
"""

from __future__ import annotations

import json
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid frame (a bug, or a dying process)."""


def encode(message: dict[str, Any]) -> bytes:
    """One message -> one frame."""
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    return HEADER.pack(len(body)) + body


class FrameDecoder:
    """Accumulates bytes; `feed()` returns every complete message received so far."""

    def __init__(self, *, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes | bytearray) -> list[dict[str, Any]]:
        self._buf += data
        out: list[dict[str, Any]] = []
        pos = 0
        while len(self._buf) - pos >= HEADER.size:
            (n,) = HEADER.unpack_from(self._buf, pos)
            if n > self._max:
                raise ProtocolError(f"frame of {n} bytes exceeds the {self._max} byte limit")
            if len(self._buf) - pos - HEADER.size < n:
                break
            start = pos + HEADER.size
            msg = json.loads(self._buf[start : start + n])
            if not isinstance(msg, dict):
                raise ProtocolError("a frame must hold a JSON object")
            out.append(msg)
            pos = start + n
        del self._buf[:pos]
        return out

    @property
    def buffered(self) -> int:
        return len(self._buf)
