from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sink import Sink  # noqa: E402


@pytest.fixture
def sink() -> Iterator[Sink]:
    """A real HTTP server on 127.0.0.1 that records what functions send it."""
    s = Sink().start()
    try:
        yield s
    finally:
        s.stop()
