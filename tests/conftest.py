"""Fixtures for every test: the real HTTP sink (tests/sink.py) functions send their requests to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sink import Sink


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A real HTTP server on 127.0.0.1 that records what functions send it."""
    s = Sink().start()
    try:
        yield s
    finally:
        s.stop()
