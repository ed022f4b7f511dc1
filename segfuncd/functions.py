"""One home for a destination function: its config, filters, loaded version, state and reason.

A destination function is a plugin file (plugins/NAME.js, loaded by the registry) plus its
`[functions.NAME]` table (settings, filters, batch). `Functions` joins the two and answers,
from this one place, every question the rest of the daemon asks about a function:
intake's routing (`routable`), the dispatcher's target lookup (`target`), admin's status
row (`status_row`) and /metrics (`live`), and the names that match nothing (`warnings`,
`require`).

Rules (each decided here once):
  * The state of a function is one FunctionState, with a reason when it is not live, in
    this order: no plugin file -> NO_PLUGIN; file removed -> REMOVED; `enabled = false`
    -> DISABLED; `segfuncctl pause NAME` -> PAUSED (the paused set is pausing.py's, kept in
    SQLite); the newest file fails to load -> LOAD_ERROR (an older version that loaded
    keeps running); no version yet -> LOADING; else LIVE.
  * A function runs new deliveries when it has a version and is neither removed, disabled
    nor paused. Otherwise its deliveries wait (held with the reason, attempts kept).
  * It receives new events (routing) when its file is present and it is enabled, loaded
    or not: a bad deploy loses nothing, and fixing the file delivers them.
  * onBatch: a plugin with onBatch batches when its table has `batch`, and also without
    one when onBatch is its only handler, with Segment's defaults (20 events or 10 s).
  * A `[functions.NAME]` table with no plugin file is a warning (log at start and on each
    reload, and `status`), with "did you mean" when a plugin has a close name: a typo would
    otherwise run the real function with empty settings.
  * A function name given to `logs`, `deliveries`, `replay` or `test` that matches no
    plugin, config table or stored delivery is the caller's mistake: UnknownFunction
    (segfuncctl exits 2).

Not here: loading and watching files (plugins.py), the dispatcher (delivery.py), the
store's counts (store/), latency windows (metrics.py).
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .config import BatchConfig, Config, FunctionConfig
from .errors import SegfuncdError
from .pausing import PAUSED_REASON
from .redact import Redactor
from .runner.version import PluginVersion
from .spec import BATCH_HANDLER, has_single_handler

if TYPE_CHECKING:
    from .filters import FilterChain
    from .plugins import PluginState


class FunctionState(enum.Enum):
    """Where a function stands now; `Function.reason` says why when it is not LIVE."""

    LIVE = "live"
    LOADING = "loading"  # the file is there, no version loaded yet
    LOAD_ERROR = "load error"  # the newest file fails to load (an older version may still run)
    DISABLED = "disabled"  # `enabled = false` in its table
    PAUSED = "paused"  # `segfuncctl pause NAME`: events are accepted and held, none delivered
    REMOVED = "removed"  # the file was removed: no new events, pending ones are kept
    NO_PLUGIN = "no plugin"  # a config table or stored deliveries, and no file


class UnknownFunction(SegfuncdError):
    """A function name that matches no plugin, config table or stored delivery (caller's mistake)."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        names = sorted(set(known))
        hint = did_you_mean(name, names)
        message = f"no function named {name!r}"
        if hint:
            message += f" (did you mean {hint!r}?)"
        message += f"; functions: {', '.join(names) or 'none'}"
        super().__init__(message)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to `name`, when one is close enough to be a likely typo."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigWarning:
    """A `[functions.NAME]` table that matches no plugin file."""

    function: str
    did_you_mean: str | None
    message: str


def tables_without_plugin(
    tables: Iterable[str], plugins: Iterable[str], *, source: str, plugins_dir: str
) -> list[ConfigWarning]:
    """A warning per config table in `tables` that has no plugin among `plugins`."""
    present = sorted(set(plugins))
    out = []
    for name in sorted(set(tables) - set(present)):
        hint = did_you_mean(name, present)
        message = f"{source}: [functions.{name}] matches no plugin file {name}.js in {plugins_dir}"
        if hint:
            message += f"; did you mean [functions.{hint}]?"
        out.append(ConfigWarning(function=name, did_you_mean=hint, message=message))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """What the dispatcher needs to run one function now."""

    version: PluginVersion | None  # None: no runnable version, deliveries wait
    config: FunctionConfig
    filters: FilterChain | None = None
    reason: str | None = None  # why there is no runnable version, shown on the waiting rows
    handlers: tuple[str, ...] = ()  # LoadReport.handlers; onBatch needs "onBatch" here

    @property
    def batch(self) -> BatchConfig | None:
        """How rows are grouped for onBatch; None: one event per handler call (see the rules)."""
        if BATCH_HANDLER not in self.handlers:
            return None
        if self.config.batch is not None:
            return self.config.batch
        return None if has_single_handler(self.handlers) else BatchConfig()

    @property
    def batching(self) -> bool:
        return self.batch is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Function:
    """One destination function as it stands now."""

    name: str
    state: FunctionState
    reason: str | None  # why it is not LIVE (None when it is)
    config: FunctionConfig
    filters: FilterChain | None
    plugin: PluginState | None  # the registry's view of its file (None: no file ever seen)

    @property
    def version(self) -> PluginVersion | None:
        """The version new deliveries run on; None while they wait."""
        if self.plugin is None or self.state in (FunctionState.REMOVED, FunctionState.DISABLED, FunctionState.PAUSED):
            return None
        return self.plugin.version

    @property
    def handlers(self) -> tuple[str, ...]:
        return self.plugin.handlers if self.plugin is not None else ()

    @property
    def live(self) -> bool:
        return self.state is FunctionState.LIVE

    def target(self) -> Target:
        version = self.version
        reason = None if version is not None else self.reason or "function has no loaded version"
        return Target(version=version, config=self.config, filters=self.filters, reason=reason, handlers=self.handlers)


def classify(
    name: str, plugin: PluginState | None, config: FunctionConfig, *, plugins_dir: str, paused: bool = False
) -> tuple[FunctionState, str | None]:
    """The state of function `name` and its reason (the order is the module's first rule)."""
    if plugin is None:
        return FunctionState.NO_PLUGIN, f"no plugin file {name}.js in {plugins_dir}"
    if plugin.removed:
        return FunctionState.REMOVED, f"plugin file {plugin.path} was removed"
    if not config.enabled:
        return FunctionState.DISABLED, "function is disabled in the config"
    if paused:
        return FunctionState.PAUSED, PAUSED_REASON.format(name=name)
    if plugin.error:
        return FunctionState.LOAD_ERROR, f"function fails to load: {plugin.error}"
    if plugin.version is None:
        return FunctionState.LOADING, "function is loading"
    return FunctionState.LIVE, None


def compile_all_filters(config: Config) -> dict[str, FilterChain]:
    """Every function's filters, compiled; a bad FQL string is a ConfigError naming it."""
    from .filters import compile_filters

    return {
        name: compile_filters(name, fn.filters, source=config.source)
        for name, fn in config.functions.items()
        if fn.filters
    }


class Registry(Protocol):
    """What Functions reads of plugins.PluginRegistry."""

    def get(self, name: str) -> PluginState | None: ...

    def states(self) -> list[PluginState]: ...


class Functions:
    """Every destination function, from the plugin registry and the current config."""

    def __init__(
        self,
        registry: Registry,
        config: Callable[[], Config],
        filters: Callable[[], Mapping[str, FilterChain]] = dict,
        *,
        paused: Callable[[], Container[str]] = frozenset,
    ) -> None:
        self._registry = registry
        self._config = config
        self._filters = filters
        self._paused = paused

    def get(self, name: str) -> Function:
        config = self._config()
        plugin = self._registry.get(name)
        fconfig = config.function(name)
        state, reason = classify(
            name, plugin, fconfig, plugins_dir=str(config.plugins_dir), paused=name in self._paused()
        )
        return Function(
            name=name,
            state=state,
            reason=reason,
            config=fconfig,
            filters=self._filters().get(name),
            plugin=plugin,
        )

    def all(self) -> list[Function]:
        """Every function with a plugin file seen since start, sorted by name."""
        return [self.get(s.name) for s in self._registry.states()]

    def plugin_names(self) -> set[str]:
        return {s.name for s in self._registry.states()}

    # --- what the other parts ask ---------------------------------------------------------

    def target(self, name: str) -> Target:
        """The dispatcher's lookup: what to run for `name` now."""
        return self.get(name).target()

    def routable(self) -> list[str]:
        """Names that receive new events: file present and enabled, loaded or not."""
        config = self._config()
        return [s.name for s in self._registry.states() if not s.removed and config.function(s.name).enabled]

    def live(self) -> dict[str, bool]:
        """name -> whether it is LIVE, for /metrics."""
        return {f.name: f.live for f in self.all()}

    def warnings(self) -> list[ConfigWarning]:
        """`[functions.NAME]` tables that match no plugin file the registry has seen."""
        config = self._config()
        return tables_without_plugin(
            config.functions, self.plugin_names(), source=config.source, plugins_dir=str(config.plugins_dir)
        )

    def names(self) -> set[str]:
        """Every name with a plugin file (seen since start) or a config table."""
        return self.plugin_names() | set(self._config().functions)

    def require(self, name: str, *, stored: Iterable[str]) -> None:
        """UnknownFunction unless `name` is a plugin, a config table or among `stored` names."""
        if name in self.names():
            return
        in_store = set(stored)
        if name not in in_store:
            raise UnknownFunction(name, self.names() | in_store)


def status_row(
    name: str, fn: Function | None, fs: Any, fm: Any, *, redactor: Redactor, plugins_dir: Any
) -> dict[str, Any]:
    """One function's row of /status: its Function `fn`, store counts `fs`, metrics windows `fm`."""
    ps = fn.plugin if fn is not None else None
    state = fn.state.value if fn is not None else FunctionState.NO_PLUGIN.value
    last_error, last_error_at = (fs.last_error, fs.last_error_at) if fs is not None else (None, None)
    if fm is not None and fm.last_error and (last_error_at is None or (fm.last_error_at or 0) > last_error_at):
        last_error, last_error_at = fm.last_error, fm.last_error_at
    error = redactor(ps.error) if ps is not None and ps.error else None
    windows = {}
    for key in ("last_5m", "last_24h"):
        w = getattr(fm, key) if fm is not None else None
        windows[key] = (
            dataclasses.asdict(w)
            if w is not None
            else {"count": 0, "delivered": 0, "success_rate": None, "p50_ms": None, "p99_ms": None}
        )
    return {
        "name": name,
        "state": state,
        "reason": fn.reason if fn is not None and fn.state is not FunctionState.LOAD_ERROR else None,
        "error": error,
        "error_first_line": first_line(error, plugins_dir),
        "error_at": ps.error_at if ps is not None else None,
        "version": ps.version.hash if ps is not None and ps.version is not None else None,
        "loaded_at": ps.loaded_at if ps is not None else None,
        "handlers": list(ps.handlers) if ps is not None else [],
        "delivered": fs.delivered if fs is not None else 0,
        "discarded": dict(fs.discarded_by_reason) if fs is not None else {},
        "discarded_total": fs.discarded if fs is not None else 0,
        "filtered": fs.filtered if fs is not None else 0,
        "pending": fs.pending if fs is not None else 0,
        "retrying": fs.retrying if fs is not None else 0,
        "dead": fs.dead if fs is not None else 0,
        "attempts": fs.attempts if fs is not None else 0,
        **windows,
        "last_error": redactor(last_error) if last_error else None,
        "last_error_at": last_error_at,
    }


def first_line(error: str | None, plugins_dir: Any) -> str | None:
    """The first line of a load error, with the plugins directory left off its file names."""
    if not error or not error.strip():
        return None
    return error.strip().splitlines()[0].replace(f"{plugins_dir}/", "")
