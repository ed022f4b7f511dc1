"""The runner pool: spawn, supervise, restart and recycle runner processes; route work.

What lives here: `open_runner_pool()` (the runtime's face, see docs/internals.md), one
`_Runner` per process (its pipes, a reader task that matches answers to requests, what
versions it has loaded) and the supervisor that replaces a dead runner with backoff.

Error handling. A runner that dies (crash, kill -9, stuck past its watchdog) fails every
request in flight on it with RETRY results named RunnerCrashed; `invoke()` never raises
for anything user code does. Recycling: after `recycle_after` invocations a runner is
retired (stdin closed, it finishes its work and exits) and a fresh one takes its place,
which bounds what a leaky function can accumulate.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
import trio

from .. import __version__
from ..errors import RunnerError
from ..outcomes import InvocationResult, Outcome, batch_item_outcome, classify
from ..spec import EncodedEvent
from .affinity import Affinity
from .fetch import DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_PER_FUNCTION
from .protocol import (
    FrameDecoder,
    Heavy,
    Invoke,
    Load,
    Loaded,
    Missing,
    Ping,
    ProtocolError,
    Result,
    Results,
    ToPool,
    ToRunner,
    VersionSpec,
    encode,
)
from .version import PluginVersion

RESTART_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)
WATCHDOG_GRACE_S = 5.0  # beyond timeout_ms, before a silent runner is presumed stuck
# An overdue request whose runner still answers a ping is not stuck: its events wait for
# their turn in a busy context (timeout_ms runs from admission, child.py). It is waited for
# in further timeout_ms rounds while pings are answered, up to this many rounds in all.
WATCHDOG_MAX_ROUNDS = 10
PING_GRACE_S = 5.0
RUNNER_WAIT_S = 5.0  # how long invoke() waits for any runner to be up
# A runner's resident memory is checked every this many invocations (one /proc read).
RSS_CHECK_EVERY = 200
READY_TIMEOUT_S = 30.0  # a new runner must answer its first ping within this


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadReport:
    """Whether a version compiles and which handlers it defines."""

    ok: bool
    error: str | None = None  # the bare message, e.g. "SyntaxError: unexpected token ..."
    line: int | None = None
    handlers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolStatistics:
    workers: int  # runner processes wanted
    alive: int  # runner processes up now
    restarts: int  # runners replaced after dying (not recycling)
    recycles: int  # runners replaced on purpose (recycle_after, memory growth)
    invocations: int  # events handed to runners since start
    in_flight: int  # requests waiting on an answer now


class _RunnerDied(Exception):
    pass


class _Retired(Exception):
    """The runner was retired between being picked and being sent to: pick another."""


class _Runner:
    """One child process and the requests waiting on it."""

    def __init__(self, proc: trio.Process, *, on_heavy: Callable[[list[str]], None] = lambda names: None) -> None:
        self.proc = proc
        self.on_heavy = on_heavy  # a Heavy message: the pool's affinity hears of it at once
        self.waiting: dict[int, tuple[trio.Event, list[ToPool]]] = {}
        self.loaded: set[tuple[str, str]] = set()  # (function name, version hash) it holds
        self.alive = True
        self.retiring = False
        self.invocations = 0
        self.rss_checked_at = 0  # invocations count at the last RSS check
        self.base_rss: int | None = None  # RSS after the first check: the runner's own size
        self.send_lock = trio.Lock()
        self._ping_ids = itertools.count(-1, -1)  # the pool's own ids are positive

    async def request(self, msg: ToRunner, *, timeout_s: float) -> ToPool:
        """Send one message and wait for its answer; _RunnerDied if the runner goes away."""
        if not self.alive:
            raise _RunnerDied("runner is not running")
        event = trio.Event()
        slot: list[ToPool] = []
        self.waiting[msg.id] = (event, slot)
        try:
            async with self.send_lock:
                if self.retiring:
                    raise _Retired()
                assert self.proc.stdin is not None
                await self.proc.stdin.send_all(encode(msg))
            with trio.move_on_after(timeout_s):
                await event.wait()
            rounds = 1
            while not slot and self.alive and rounds < WATCHDOG_MAX_ROUNDS and isinstance(msg, Invoke):
                if not await self._answers_ping():
                    break
                rounds += 1
                with trio.move_on_after(timeout_s):
                    await event.wait()
            if not slot:
                if self.alive:
                    # stuck in native code past every limit: kill it, the supervisor respawns
                    self.kill()
                raise _RunnerDied("runner stopped answering and was killed")
            return slot[0]
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _RunnerDied("runner pipe closed") from exc
        finally:
            self.waiting.pop(msg.id, None)

    async def _answers_ping(self) -> bool:
        """Whether the runner's loop still answers (busy, not stuck in native code)."""
        try:
            await self.request(Ping(id=next(self._ping_ids)), timeout_s=PING_GRACE_S)
        except _Retired:
            return True  # stdin closed: it cannot be asked; it exits once its work is done
        except _RunnerDied:
            return False
        return True

    async def read_loop(self) -> None:
        """Match answers to waiters; on EOF fail everything still waiting."""
        decoder = FrameDecoder[ToPool](ToPool)
        assert self.proc.stdout is not None
        try:
            while True:
                data = await self.proc.stdout.receive_some(1 << 20)
                if not data:
                    break
                for msg in decoder.feed(data):
                    if isinstance(msg, Heavy):
                        self.on_heavy(msg.functions)
                        continue
                    waiter = self.waiting.get(msg.id)
                    if waiter is not None:
                        waiter[1].append(msg)
                        waiter[0].set()
        except (trio.BrokenResourceError, trio.ClosedResourceError, ProtocolError):
            pass  # a runner that garbles its pipe is treated as dead (its waiters get _RunnerDied)
        finally:
            self.alive = False
            for event, _ in list(self.waiting.values()):
                event.set()  # empty slot -> _RunnerDied in request()

    def kill(self) -> None:
        self.alive = False
        try:
            self.proc.kill()
        except OSError:
            pass


class RunnerPool:
    """Runs plugin versions in runner processes; see open_runner_pool()."""

    def __init__(
        self,
        nursery: trio.Nursery,
        *,
        workers: int,
        config: dict[str, Any],
        timeout_ms: int,
        recycle_after: int,
        recycle_growth_bytes: int | None = None,
    ) -> None:
        self._nursery = nursery
        # Recycle a runner whose memory grew this much past its size at start (leaky
        # top-level caches, fragmentation), before it meets RLIMIT_AS mid-invocation.
        self._recycle_growth = recycle_growth_bytes
        self._workers = workers
        self._config = config
        self._timeout_s = timeout_ms / 1000
        self._recycle_after = recycle_after
        self._runners: list[_Runner] = []
        self._next_id = 1
        self._restarts = 0
        self._recycles = 0
        self._invocations = 0
        self._in_flight = 0
        self._changed = trio.Event()
        self._closing = False
        self._affinity = Affinity()

    # ---- public API -------------------------------------------------------------------
    async def check(self, version: PluginVersion) -> LoadReport:
        """Compile `version` in a runner and report what it defines (never raises for bad code)."""
        try:
            runner = await self._pick()
            answer = await runner.request(
                Load(id=self._new_id(), version=_version_spec(version)),
                timeout_s=self._timeout_s + WATCHDOG_GRACE_S + 60,
            )
        except _RunnerDied as exc:
            return LoadReport(ok=False, error=f"RunnerCrashed: {exc}")
        if not isinstance(answer, Loaded):
            return LoadReport(ok=False, error=f"RunnerCrashed: a {type(answer).__name__} answer to a load")
        runner.loaded.add((version.name, version.hash))
        rep = answer.report
        # error is the bare message; callers prefix the file and line (plugins.py does)
        return LoadReport(ok=rep.ok, error=rep.error, line=rep.line, handlers=tuple(rep.handlers))

    async def invoke(
        self,
        version: PluginVersion,
        events: Sequence[Mapping[str, Any] | EncodedEvent],
        settings: Mapping[str, Any],
        *,
        batch: bool = False,
    ) -> list[InvocationResult]:
        """Run the version's handler on each event (or onBatch once); one result per event.

        The dispatcher passes events as stored (EncodedEvent: no parse, no re-encode here).
        """
        if not events:
            return []
        encoded = [e if isinstance(e, EncodedEvent) else EncodedEvent.of(e) for e in events]
        self._in_flight += 1
        self._invocations += len(events)
        msg = Invoke(
            id=0,
            name=version.name,
            hash=version.hash,
            events=[e.json for e in encoded],
            types=[e.type for e in encoded],
            settings=json.dumps(dict(settings), separators=(",", ":")),
            batch=batch,
        )
        try:
            results, moved = await self._attempt(version, msg, movable=True)
            if moved:  # the function holds a loop: what it handed back runs on its home
                rest = msgspec.structs.replace(
                    msg, events=[msg.events[i] for i in moved], types=[msg.types[i] for i in moved]
                )
                again, _ = await self._attempt(version, rest, movable=False)
                for i, result in zip(moved, again, strict=True):
                    results[i] = result
        finally:
            self._in_flight -= 1
        self._affinity.note(version.name, [r.error_name for r in results], time.monotonic())
        return results

    async def _attempt(
        self, version: PluginVersion, msg: Invoke, *, movable: bool
    ) -> tuple[list[InvocationResult], list[int]]:
        """One invoke on one runner: a result per event, and the positions it handed back."""
        n = len(msg.events)
        started = time.monotonic()
        try:
            answer = await self._invoke_once(version, msg, movable)
        except _RunnerDied as exc:
            ms = (time.monotonic() - started) * 1000
            crashed = InvocationResult(
                outcome=Outcome.RETRY, error_name="RunnerCrashed", error_message=str(exc), duration_ms=ms
            )
            return [crashed] * n, []
        try:
            results = _results(answer, n, runner=answer.pid or None)
        except (IndexError, TypeError, ValueError) as exc:
            # our own runner answered nonsense: a bug, but one event batch's, not the daemon's
            bad = InvocationResult(
                outcome=Outcome.RETRY, error_name="RunnerCrashed", error_message=f"malformed runner answer: {exc!r}"
            )
            return [bad] * n, []
        moved = [i for i, r in enumerate(answer.results) if r.moved] if movable else []
        if moved and answer.batch:
            moved = list(range(n))  # onBatch's one result stands for every event
        return results, moved

    def reconfigure(self, *, timeout_ms: int, recycle_after: int, **runner_config: Any) -> bool:
        """Apply reloaded runtime limits; True when the runners are being replaced for them.

        `runner_config` holds open_runner_pool's per-runner keys (cpu_ms, memory_mb, ...).
        A runner reads them at start, so when they change every runner is retired: it
        finishes its in-flight work and a fresh one, started with the new values, takes over.
        """
        self._timeout_s = timeout_ms / 1000
        self._recycle_after = recycle_after
        new = {**self._config, "timeout_ms": timeout_ms}
        new.update({k: list(v) if isinstance(v, tuple) else v for k, v in runner_config.items()})
        if new == self._config:
            return False
        self._config = new
        for runner in list(self._runners):
            if not runner.retiring:
                runner.retiring = True
                self._nursery.start_soon(self._retire, runner)
        return True

    def statistics(self) -> PoolStatistics:
        return PoolStatistics(
            workers=self._workers,
            alive=len(self._ready()),
            restarts=self._restarts,
            recycles=self._recycles,
            invocations=self._invocations,
            in_flight=self._in_flight,
        )

    # ---- routing ------------------------------------------------------------------------
    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def _invoke_once(self, version: PluginVersion, msg: Invoke, movable: bool) -> Results:
        timeout = self._timeout_s + WATCHDOG_GRACE_S
        runner = await self._pick(version.name)
        runner.invocations += len(msg.events)
        key = (version.name, version.hash)
        for _ in range(3):
            spec = None if key in runner.loaded else _version_spec(version)
            away = movable and self._affinity.movable(version.name, runner, self._ready(), time.monotonic())
            msg = msgspec.structs.replace(msg, id=self._new_id(), version=spec, movable=away)
            try:
                answer = await runner.request(msg, timeout_s=timeout)
            except _Retired:
                runner = await self._pick(version.name)
                continue
            runner.loaded.add(key)
            if isinstance(answer, Results):
                for name in answer.heavy:
                    self._affinity.note(name, ["CPULimitError"], time.monotonic())
                self._maybe_recycle(runner)
                return answer
            if not isinstance(answer, Missing):
                raise _RunnerDied(f"the runner answered an invoke with a {type(answer).__name__}")
            runner.loaded.discard(key)  # the runner evicted it: resend the source
        raise _RunnerDied("runner kept losing the function's source")

    async def _pick(self, function: str | None = None) -> _Runner:
        """The live runner with the fewest requests waiting, where `function` may go
        (affinity.py keeps CPU-heavy functions apart); waits a little for one to start."""
        with trio.move_on_after(RUNNER_WAIT_S):
            while True:
                ready = self._ready()
                if ready and function is not None:
                    return self._affinity.choose(function, ready, lambda r: len(r.waiting), time.monotonic())
                if ready:
                    return min(ready, key=lambda r: len(r.waiting))
                changed = self._changed
                await changed.wait()
        raise _RunnerDied("no runner process is available")

    def _ready(self) -> list[_Runner]:
        return [r for r in self._runners if r.alive and not r.retiring]

    def _heard_heavy(self, functions: list[str]) -> None:
        now = time.monotonic()
        for name in functions:
            self._affinity.note(name, ["CPULimitError"], now)

    def _maybe_recycle(self, runner: _Runner) -> None:
        if runner.retiring:
            return
        if runner.invocations >= self._recycle_after or self._grew_too_much(runner):
            runner.retiring = True
            self._recycles += 1
            self._nursery.start_soon(self._retire, runner)

    def _grew_too_much(self, runner: _Runner) -> bool:
        if self._recycle_growth is None or runner.invocations - runner.rss_checked_at < RSS_CHECK_EVERY:
            return False
        runner.rss_checked_at = runner.invocations
        rss = rss_bytes(runner.proc.pid)
        if rss is None:
            return False
        if runner.base_rss is None:
            runner.base_rss = rss
            return False
        return rss - runner.base_rss > self._recycle_growth

    async def _retire(self, runner: _Runner) -> None:
        """Closing stdin makes the child finish its in-flight work and exit."""
        async with runner.send_lock:
            assert runner.proc.stdin is not None
            try:
                await runner.proc.stdin.aclose()
            except trio.BrokenResourceError:
                pass
        await self._nursery.start(self._supervise, len(self._runners))

    # ---- processes ----------------------------------------------------------------------
    async def _spawn(self) -> _Runner:
        env = dict(os.environ)
        env["MALLOC_ARENA_MAX"] = "2"  # glibc reserves 64 MB of address space per arena
        try:
            proc = await trio.lowlevel.open_process(
                [sys.executable, "-m", "segfuncd.runner.child", json.dumps(self._config)],
                stdin=-1,
                stdout=-1,
                env=env,
                # Its own process group: Ctrl-C in a terminal (SIGINT to the foreground group)
                # reaches only the daemon, which drains and then closes our stdin. The child
                # also ignores SIGINT/SIGTERM, for `kill -- -PGID` and systemd's control-group kill.
                process_group=0,
            )
        except OSError as exc:
            raise RunnerError(f"cannot start a runner process: {exc}") from exc
        return _Runner(proc, on_heavy=self._heard_heavy)

    async def _supervise(self, slot: int, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep one runner alive: spawn, wait for it to exit, respawn with backoff."""
        failures = 0
        started = False
        while not self._closing:
            born = time.monotonic()
            runner = await self._spawn()
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(runner.read_loop)
                    # serve only once the child has imported everything and answers
                    try:
                        await runner.request(Ping(id=self._new_id()), timeout_s=READY_TIMEOUT_S)
                    except _RunnerDied:
                        pass
                    self._runners.append(runner)
                    self._notify()
                    if not started:
                        task_status.started()
                        started = True
                await runner.proc.wait()
            finally:
                runner.alive = False
                if runner in self._runners:
                    self._runners.remove(runner)
                self._notify()
                if self._closing or runner.retiring:
                    with trio.CancelScope(shield=True):
                        await _reap(runner)
            if self._closing or runner.retiring:
                break
            self._restarts += 1
            failures = 0 if time.monotonic() - born > 10 else failures + 1
            await trio.sleep(RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)])
        if not started:
            task_status.started()  # the pool closed while a replacement was starting

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _shutdown(self, grace_s: float = 2.0) -> None:
        """Close every runner's stdin (it exits once idle), then kill what is left."""
        self._closing = True
        runners = list(self._runners)
        with trio.CancelScope(shield=True):
            with trio.move_on_after(grace_s):
                for runner in runners:
                    if runner.proc.stdin is not None:
                        try:
                            await runner.proc.stdin.aclose()
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            pass
                for runner in runners:
                    await runner.proc.wait()
        for runner in runners:
            if runner.proc.returncode is None:
                runner.kill()


def rss_bytes(pid: int) -> int | None:
    """Resident memory of process `pid` from /proc (None when it is gone or not Linux)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


async def _reap(runner: _Runner) -> None:
    with trio.move_on_after(2):
        await runner.proc.wait()
        return
    runner.kill()


def _version_spec(version: PluginVersion) -> VersionSpec:
    return VersionSpec(name=version.name, path=version.path, hash=version.hash, source=version.source)


def _results(answer: Results, n: int, *, runner: int | None = None) -> list[InvocationResult]:
    raw = answer.results
    if answer.batch:
        if not raw:
            raise ValueError("an onBatch answer without its result")
        return _batch_results(raw[0], n, runner)
    if len(raw) != n:
        raise ValueError(f"{len(raw)} results for {n} events")
    return [_result(r, runner) for r in raw]


def _result(r: Result, runner: int | None = None) -> InvocationResult:
    name = r.error_name
    return InvocationResult(
        outcome=Outcome.DELIVERED if name is None else classify(name),
        value=_loads(r.value) if name is None else None,
        error_name=name,
        error_message=r.error_message if name is not None else None,
        retry_after=r.retry_after if name is not None else None,
        stack=r.stack if name is not None else None,
        runner=runner,
        logs=tuple(r.logs),
        requests=tuple(r.requests),
        duration_ms=r.duration_ms,
    )


def _loads(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


def _batch_results(r: Result, n: int, runner: int | None = None) -> list[InvocationResult]:
    """Map onBatch's result to positions: an error applies to all; else each {status}."""
    if r.error_name is not None:
        return [_result(r, runner)] * n
    common: dict[str, Any] = {
        "runner": runner,
        "logs": tuple(r.logs),
        "requests": tuple(r.requests),
        "duration_ms": r.duration_ms,
    }
    value = _loads(r.value)
    out: list[InvocationResult] = []
    for pos in range(n):
        item = value[pos] if isinstance(value, list) and pos < len(value) else None
        out.append(_position(item, common))
    return out


def _position(item: Any, common: dict[str, Any]) -> InvocationResult:
    status = item.get("status") if isinstance(item, dict) else None
    message = item.get("errormessage") if isinstance(item, dict) else None
    outcome, error_name = batch_item_outcome(status)  # the rule lives in outcomes.py
    if error_name is None:
        return InvocationResult(outcome=outcome, value=item, **common)
    assert isinstance(status, int | float)
    return InvocationResult(
        outcome=outcome,
        value=item,
        error_name=error_name,
        error_message=message or f"status {int(status)}",
        **common,
    )


@asynccontextmanager
async def open_runner_pool(
    *,
    workers: int = 2,
    timeout_ms: int = 10_000,
    cpu_ms: int = 2_000,
    memory_mb: int = 256,
    egress_deny: tuple[str, ...] = (),
    egress_allow: tuple[str, ...] = (),
    recycle_after: int = 100_000,
    user_agent: str = f"segfuncd/{__version__}",
    max_fetch_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    max_fetch_per_function: int = DEFAULT_MAX_IN_FLIGHT_PER_FUNCTION,
    max_active: int = 32,
    recycle_growth_mb: int | None = None,
) -> AsyncIterator[RunnerPool]:
    """Start `workers` runner processes; on exit, stop them (in-flight work is abandoned).

    A runner is recycled after `recycle_after` invocations, or once its resident memory
    grew `recycle_growth_mb` past its size at start (default: 3/4 of `memory_mb`).
    """
    growth_mb = memory_mb * 3 // 4 if recycle_growth_mb is None else recycle_growth_mb
    config = {
        "timeout_ms": timeout_ms,
        "cpu_ms": cpu_ms,
        "memory_mb": memory_mb,
        "egress_deny": list(egress_deny),
        "egress_allow": list(egress_allow),
        "user_agent": user_agent,
        "max_fetch_in_flight": max_fetch_in_flight,
        "max_fetch_per_function": max_fetch_per_function,
        "max_active": max_active,
    }
    async with trio.open_nursery() as nursery:
        pool = RunnerPool(
            nursery,
            workers=max(1, workers),
            config=config,
            timeout_ms=timeout_ms,
            recycle_after=recycle_after,
            recycle_growth_bytes=growth_mb * 1024 * 1024,
        )
        try:
            for slot in range(pool._workers):
                await nursery.start(pool._supervise, slot)
            yield pool
        finally:
            await pool._shutdown()
            nursery.cancel_scope.cancel()


__all__ = ["LoadReport", "PoolStatistics", "RunnerPool", "open_runner_pool"]
