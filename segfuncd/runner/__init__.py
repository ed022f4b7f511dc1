"""The function runtime: user JavaScript in sandboxed QuickJS runner processes.

Layout: `pool.py` (the face: open_runner_pool, RunnerPool) supervises processes that run
`child.py`; they speak `protocol.py` over pipes; each child holds `sandbox.py` contexts
built from `prelude/*.js`, and performs fetches with `fetch.py`. Only the names below are
used outside this package.
"""

from __future__ import annotations

from .pool import LoadReport, PoolStatistics, RunnerPool, open_runner_pool
from .version import PluginVersion

__all__ = ["LoadReport", "PluginVersion", "PoolStatistics", "RunnerPool", "open_runner_pool"]
