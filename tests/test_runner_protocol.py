"""Pipe framing and typed messages between the pool and a runner: pure, no processes."""

from __future__ import annotations

import msgspec
import pytest

from segfuncd.outcomes import LogLine, RequestRecord
from segfuncd.runner.protocol import (
    FrameDecoder,
    Invoke,
    Loaded,
    Ping,
    ProtocolError,
    Report,
    Result,
    Results,
    ToPool,
    ToRunner,
    VersionSpec,
    encode,
)


def test_frames_round_trip_across_arbitrary_splits() -> None:
    messages: list[ToRunner] = [
        Invoke(id=i, name="f", hash="h", events=['{"a":"é"}'] * i, types=["track"] * i, settings="{}") for i in range(5)
    ]
    messages.append(Ping(id=-1))
    wire = b"".join(encode(m) for m in messages)
    for step in (1, 3, 7, len(wire)):
        decoder = FrameDecoder[ToRunner](ToRunner)
        got: list[ToRunner] = []
        for i in range(0, len(wire), step):
            got += decoder.feed(wire[i : i + step])
        assert got == messages and decoder.buffered == 0


def test_answers_carry_outcome_records_unchanged() -> None:
    request = RequestRecord(
        method="POST",
        url="http://127.0.0.1:1/x",
        status=200,
        duration_ms=1.5,
        request_headers=(("content-type", "application/json"),),
        request_body='{"a":1}',
        response_headers=(("x-id", "7"),),
        response_body="ok",
    )
    answer = Results(
        id=3,
        batch=False,
        results=[
            Result(
                duration_ms=2.0, value="200", logs=[LogLine(level="log", message="hi", time=1.0)], requests=[request]
            ),
            Result(error_name="TypeError", error_message="x is undefined", stack="at onTrack (f.js:2)"),
        ],
        pid=42,
        heavy=["burner"],
    )
    [got] = FrameDecoder[ToPool](ToPool).feed(encode(answer))
    assert got == answer
    assert isinstance(got, Results) and got.results[0].requests[0] == request  # outcomes' own record type


def test_a_message_of_the_wrong_shape_is_a_protocol_error() -> None:
    """A field of the wrong type, a missing field, an unknown kind: refused at the boundary."""
    raw = msgspec.msgpack.encode
    bad = [
        {"type": "results", "id": "1", "batch": False, "results": []},  # id not an int
        {"type": "results", "id": 1, "results": []},  # batch missing
        {"type": "results", "id": 1, "batch": False, "results": [{"logs": [["log", "x"]]}]},  # a log line short
        {"type": "launch", "id": 1},  # no such message
        [1, 2, 3],
    ]
    for message in bad:
        body = raw(message)
        with pytest.raises(ProtocolError):
            FrameDecoder[ToPool](ToPool).feed(len(body).to_bytes(4, "big") + body)


def test_a_runner_message_is_not_a_pool_message() -> None:
    """Each side decodes only what the other may send: a runner cannot send an Invoke."""
    with pytest.raises(ProtocolError):
        FrameDecoder[ToPool](ToPool).feed(encode(Invoke(id=1, name="f", hash="h", events=[], types=[], settings="")))
    with pytest.raises(ProtocolError):
        FrameDecoder[ToRunner](ToRunner).feed(encode(Loaded(id=1, report=Report(ok=True))))


def test_oversized_frame_is_refused() -> None:
    version = VersionSpec(name="f", path=None, hash="h", source="x" * 100)
    with pytest.raises(ProtocolError):
        FrameDecoder[ToPool](ToPool, max_frame=10).feed(
            encode(Loaded(id=1, report=Report(ok=True, error=str(version))))
        )


def test_garbage_bytes_are_a_protocol_error() -> None:
    body = b"\xc1\xc1\xc1\xc1"  # 0xc1 is never used in MessagePack
    with pytest.raises(ProtocolError):
        FrameDecoder[ToPool](ToPool).feed(len(body).to_bytes(4, "big") + body)
