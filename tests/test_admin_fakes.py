"""(No tests here.) Stand-ins at the admin's edge (store, registry, pool, intake) for admin and ctl unit tests.

They follow docs/internals.md; the real components are exercised by tests/e2e/.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import trio

from segfuncd.admin import Admin
from segfuncd.config import Config, FunctionConfig
from segfuncd.metrics import Metrics
from segfuncd.outcomes import DeliveryState, InvocationResult, LogLine, Outcome, RequestRecord
from segfuncd.runner.version import PluginVersion
from segfuncd.store.models import (
    AttemptRecord,
    DeliveryDetail,
    DeliverySummary,
    FunctionStats,
    LogRecord,
    StoreStats,
)

NOW = 1_800_000_000.0


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class PluginState:
    """The shape of segfuncd.plugins.PluginState (importing plugins needs a runner)."""

    name: str
    path: str
    enabled: bool
    version: PluginVersion | None
    loaded_at: float | None
    handlers: tuple[str, ...] = ()
    error: str | None = None
    error_at: float | None = None
    removed: bool = False

    @property
    def live(self) -> bool:
        return self.version is not None and not self.removed and self.enabled


class FakeStore:
    def __init__(self) -> None:
        self.logs: list[LogRecord] = []
        self._new = trio.Event()
        self.replays: list[dict[str, Any]] = []
        self.functions = {
            "teams": FunctionStats(
                function="teams",
                delivered=120,
                discarded=2,
                dead=1,
                retrying=3,
                pending=3,
                attempts=130,
                discarded_by_reason={"EventNotSupported": 2},
                last_error="TypeError: x is undefined",
                last_error_at=NOW - 120,
            ),
        }
        self.summary = DeliverySummary(
            id=7,
            function="teams",
            message_id="m-7",
            type="track",
            state=DeliveryState.DEAD,
            attempts=1,
            next_attempt_at=None,
            created_at=NOW - 300,
            updated_at=NOW - 290,
            version="abc123def456",
            last_error="TypeError: boom",
            note=None,
        )

    def add_log(self, **kw: Any) -> None:
        kw.setdefault("time", NOW)
        kw.setdefault("level", "log")
        kw.setdefault("source", "function")
        self.logs.append(LogRecord(id=len(self.logs) + 1, **kw))
        self._new.set()
        self._new = trio.Event()

    async def cluster_stats(self) -> None:
        return None

    async def stats(self) -> StoreStats:
        return StoreStats(
            pending=3, leased=0, dead=1, oldest_pending_age_s=42.0, functions=self.functions, healthy=True
        )

    async def read_logs(
        self,
        *,
        after_id: int | None = None,
        limit: int = 100,
        function: str | None = None,
        level: str | None = None,
        message_id: str | None = None,
    ) -> list[LogRecord]:
        rows = [
            r
            for r in self.logs
            if (after_id is None or (r.id or 0) > after_id)
            and (function is None or r.function == function)
            and (message_id is None or r.message_id == message_id)
        ]
        return rows[:limit] if after_id is not None else rows[-limit:]

    async def wait_logs(self, after_id: int) -> None:
        while not self.logs or (self.logs[-1].id or 0) <= after_id:
            await self._new.wait()

    async def replay(self, *, function: str | None = None, delivery_id: int | None = None) -> int:
        self.replays.append({"function": function, "delivery_id": delivery_id})
        return 1

    async def deliveries(
        self, *, function: str | None = None, state: str | None = None, limit: int = 20, message_id: str | None = None
    ) -> list[DeliverySummary]:
        if message_id is not None and message_id != self.summary.message_id:
            return []
        return [self.summary][:limit]

    async def delivery(self, delivery_id: int) -> DeliveryDetail | None:
        if delivery_id != 7:
            return None
        attempt = AttemptRecord(
            number=1, time=NOW - 290, version="abc123def456", outcome="failed", error="TypeError: boom", duration_ms=3.5
        )
        return DeliveryDetail(summary=self.summary, event={"type": "track", "event": "X"}, attempts=(attempt,))


class FakeRegistry:
    def __init__(self) -> None:
        v = PluginVersion.from_source("teams", "async function onTrack(e, s) { return 1 }")
        self.items = {
            "teams": PluginState(
                name="teams",
                path="plugins/teams.js",
                enabled=True,
                version=v,
                loaded_at=NOW - 3600,
                handlers=("onTrack", "onIdentify"),
            ),
            "broken": PluginState(
                name="broken",
                path="plugins/broken.js",
                enabled=True,
                version=None,
                loaded_at=None,
                error="plugins/broken.js:3: SyntaxError: unexpected token\n  at line 3",
                error_at=NOW - 60,
            ),
        }

    def get(self, name: str) -> PluginState | None:
        return self.items.get(name)

    def states(self) -> list[PluginState]:
        return [self.items[n] for n in sorted(self.items)]


@dataclasses.dataclass(frozen=True)
class PoolStats:
    workers: int = 2
    alive: int = 2
    restarts: int = 1
    invocations: int = 10
    in_flight: int = 0


class FakePool:
    """Answers what the test asks for: the event's `want` field picks the result."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, list[dict[str, Any]], Mapping[str, Any], bool]] = []

    def statistics(self) -> PoolStats:
        return PoolStats()

    async def invoke(
        self, version: Any, events: list[dict[str, Any]], settings: Mapping[str, Any], *, batch: bool = False
    ) -> list[InvocationResult]:
        self.calls.append((version, events, settings, batch))
        out = []
        for ev in events:
            logs = (LogLine(level="log", message=f"key is {settings.get('apiKey')}", time=NOW),)
            reqs = (
                RequestRecord(
                    method="POST", url=f"http://sink/hook?k={settings.get('apiKey')}", status=200, duration_ms=4.0
                ),
            )
            if ev.get("want"):
                out.append(
                    InvocationResult(
                        outcome=Outcome.DISCARDED,
                        error_name=ev["want"],
                        error_message="nope",
                        logs=logs,
                        duration_ms=2.0,
                    )
                )
            else:
                out.append(
                    InvocationResult(
                        outcome=Outcome.DELIVERED,
                        value={"seen": ev.get("type")},
                        logs=logs,
                        requests=reqs,
                        duration_ms=5.0,
                    )
                )
        return out


@dataclasses.dataclass(frozen=True)
class IntakeStats:
    requests: Mapping[int, int] = dataclasses.field(default_factory=lambda: {200: 50, 400: 2})
    events_accepted: int = 600
    events_duplicate: int = 1
    events_rejected: int = 2
    draining: bool = False
    sources: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    refused: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class FakeIntake:
    def statistics(self) -> IntakeStats:
        return IntakeStats()


def make_admin(**overrides: Any) -> tuple[Admin, FakeStore, FakePool]:
    config = Config(functions={"teams": FunctionConfig(settings={"apiKey": "sk-secret-1", "channel": "ops"})})
    store, pool = FakeStore(), FakePool()
    metrics = Metrics()
    for i in range(10):
        metrics.record("teams", InvocationResult(outcome=Outcome.DELIVERED, duration_ms=12.0), NOW - i)

    async def reload() -> str:
        return "config reloaded"

    kw: dict[str, Any] = dict(
        config=config,
        store=store,
        registry=FakeRegistry(),
        pool=pool,
        intake=FakeIntake(),
        metrics=metrics,
        reload=reload,
        started_at=NOW - 7800,
        pid=4242,
        clock=lambda: NOW,
    )
    kw.update(overrides)
    return Admin(**kw), store, pool


__all__ = ["FakeIntake", "FakePool", "FakeRegistry", "FakeStore", "NOW", "make_admin", "time"]
