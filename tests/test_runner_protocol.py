"""Pipe framing between the pool and a runner: pure, no processes."""

from __future__ import annotations

import pytest

from segfuncd.runner.protocol import FrameDecoder, ProtocolError, encode


def test_frames_round_trip_across_arbitrary_splits() -> None:
    messages = [{"id": i, "op": "invoke", "events": ['{"a":"é"}'] * i} for i in range(5)]
    wire = b"".join(encode(m) for m in messages)
    for step in (1, 3, 7, len(wire)):
        decoder = FrameDecoder()
        got = []
        for i in range(0, len(wire), step):
            got += decoder.feed(wire[i : i + step])
        assert got == messages and decoder.buffered == 0


def test_oversized_frame_is_refused() -> None:
    with pytest.raises(ProtocolError):
        FrameDecoder(max_frame=10).feed(encode({"id": 1, "padding": "x" * 100}))


def test_a_frame_must_hold_an_object() -> None:
    wire = encode({"id": 1})
    bad = (4).to_bytes(4, "big") + b"[1] "
    with pytest.raises(ProtocolError):
        FrameDecoder().feed(wire + bad)
