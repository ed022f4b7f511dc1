"""Helpers shared by the tests: builders, waiters and small real servers.

Each section is owned by the area it serves; keep helpers here, not in test_*.py files.
"""

from __future__ import annotations

# --- egress (issue 11) ------------------------------------------------------------------

# Loopback is denied to fetch() by default; tests whose functions call the loopback sink
# (tests/sink.py) open it explicitly, as an operator would for a local service.
SINK_ALLOW = ("127.0.0.1",)
