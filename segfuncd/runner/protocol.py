"""The messages between the pool and a runner process, and their framing; pure, sans-I/O.

Every message is a typed record (a msgspec Struct, tagged by kind), validated when it is
decoded: a field of the wrong type or a kind nobody sends is a ProtocolError at the
boundary, never a KeyError deep inside the pool or the runner.

    pool -> runner   Load(id, version)                    compile, answer Loaded
                     Invoke(id, name, hash, events, types, settings, batch, version?, movable)
                     Ping(id)                             answer Pong (the watchdog's probe)
    runner -> pool   Loaded(id, report)
                     Missing(id)                          hash unknown: resend with version
                     Results(id, batch, results, pid, heavy)
                     Pong(id)
                     Heavy(functions)                     unasked, at once: a function just hit
                                                          its CPU limit here (affinity.py)

A `movable` invoke went to a runner that is not the function's home (affinity.py): if the
function turns out to hold the loop, the runner hands back its events that did nothing
outside JS yet as `moved` results, and the pool sends those, not movable, to the home.

Events and settings travel as JSON text: the store keeps each event as JSON, the daemon
passes it through untouched, and each invocation parses its own copy inside the sandbox.
Log lines and request records are outcomes.py's own records (LogLine, RequestRecord), so the
pool hands them on without a conversion.

A frame is a 4-byte big-endian length followed by that many bytes of MessagePack (msgspec:
about 8x cheaper to encode and 3x to decode than JSON for a runner's answer, and strings
such as event JSON go in without escaping).
"""

from __future__ import annotations

import struct
from typing import Any, Generic, TypeVar

import msgspec

from ..outcomes import LogLine, RequestRecord
from ..surrogates import scrub

HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid frame or message (a bug, or a dying process)."""


# ---- pool -> runner ------------------------------------------------------------------------


class VersionSpec(msgspec.Struct, frozen=True):
    """A plugin version's source, sent when the runner does not have it yet."""

    name: str
    path: str | None
    hash: str
    source: str


class Load(msgspec.Struct, frozen=True, tag="load"):
    id: int
    version: VersionSpec


class Invoke(msgspec.Struct, frozen=True, tag="invoke"):
    id: int
    name: str
    hash: str
    events: list[str]  # each event's JSON text
    types: list[str]  # each event's type (picks the handler)
    settings: str  # the function's settings, JSON text
    batch: bool = False
    version: VersionSpec | None = None
    movable: bool = False  # this runner is not the function's home (see the module doc)


class Ping(msgspec.Struct, frozen=True, tag="ping"):
    id: int


ToRunner = Load | Invoke | Ping


# ---- runner -> pool ------------------------------------------------------------------------


class Report(msgspec.Struct, frozen=True):
    """What compiling a version gave: its handlers, or the error (bare message) and line."""

    ok: bool
    error: str | None = None
    line: int | None = None
    handlers: list[str] = []


class Result(msgspec.Struct, frozen=True, omit_defaults=True):
    """One invocation's result as the runner saw it (the pool classifies the error)."""

    duration_ms: float = 0.0
    value: str | None = None  # the handler's return value, JSON text (ok results)
    error_name: str | None = None  # set when the invocation failed
    error_message: str | None = None
    stack: str | None = None
    retry_after: float | None = None  # RetryError(msg, {retryAfter})
    logs: list[LogLine] = []
    requests: list[RequestRecord] = []
    # Handed back unrun (it did nothing outside JS): the pool runs it on the function's home.
    # Such a result also carries a retryable error, so a pool that did not look could only
    # ever retry it, never count it delivered.
    moved: bool = False


class Loaded(msgspec.Struct, frozen=True, tag="loaded"):
    id: int
    report: Report


class Missing(msgspec.Struct, frozen=True, tag="missing"):
    id: int


class Results(msgspec.Struct, frozen=True, tag="results"):
    id: int
    batch: bool
    results: list[Result]
    pid: int = 0
    heavy: list[str] = []  # functions that hit their CPU limit here lately (affinity.py)


class Pong(msgspec.Struct, frozen=True, tag="pong"):
    id: int


class Heavy(msgspec.Struct, frozen=True, tag="heavy"):
    """Sent by a runner the moment a function's slice hits its CPU limit, not with the next
    answer (which may come seconds later: an invoke of several such events answers when the
    last ends), so the pool stops sending other functions' work to that runner at once."""

    functions: list[str]
    id: int = 0  # answers nobody: the pool's read loop acts on it


ToPool = Loaded | Missing | Results | Pong | Heavy


# ---- framing -------------------------------------------------------------------------------

_encoder = msgspec.msgpack.Encoder()


def encode(message: ToRunner | ToPool) -> bytes:
    """One message -> one frame. A lone UTF-16 surrogate (JS strings may hold one: a function
    can log "\\ud800") cannot be UTF-8: such a message goes out with U+FFFD in its place."""
    try:
        body = _encoder.encode(message)
    except UnicodeEncodeError:
        body = _encoder.encode(scrub(msgspec.to_builtins(message)))
    return HEADER.pack(len(body)) + body


M = TypeVar("M")


class FrameDecoder(Generic[M]):
    """Accumulates bytes; `feed()` returns every complete message received so far, typed.

    `FrameDecoder[ToRunner](ToRunner)` in a runner, `FrameDecoder[ToPool](ToPool)` in the pool.
    """

    def __init__(self, kind: Any, *, max_frame: int = MAX_FRAME) -> None:  # a type, or a union of them
        self._decoder = msgspec.msgpack.Decoder(kind)
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes | bytearray) -> list[M]:
        self._buf += data
        out: list[M] = []
        pos = 0
        while len(self._buf) - pos >= HEADER.size:
            (n,) = HEADER.unpack_from(self._buf, pos)
            if n > self._max:
                raise ProtocolError(f"frame of {n} bytes exceeds the {self._max} byte limit")
            if len(self._buf) - pos - HEADER.size < n:
                break
            start = pos + HEADER.size
            try:
                with memoryview(self._buf) as view:  # released before the buffer shrinks below
                    out.append(self._decoder.decode(view[start : start + n]))
            except msgspec.MsgspecError as exc:
                raise ProtocolError(f"a malformed message: {exc}") from None
            pos = start + n
        del self._buf[:pos]
        return out

    @property
    def buffered(self) -> int:
        return len(self._buf)
