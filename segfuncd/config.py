"""segfuncd.toml -> frozen dataclasses; config discovery; errors that name file and key.

Every key is optional. Unknown keys and wrong types raise ConfigError naming the file and
the dotted key (`segfuncd.toml: retry.max_attempts: expected an integer, got "ten"`).
Relative paths resolve against the config file's folder (or the working directory when
running on built-in defaults).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .outcomes import DEFAULT_BASE_DELAY_S, DEFAULT_MAX_ATTEMPTS
from .runner.egress import parse_rule
from .secrets import resolve_settings

ENV_VAR = "SEGFUNCD_CONFIG"
SYSTEM_CONFIG = Path("/etc/segfuncd/segfuncd.toml")
LOCAL_CONFIG = Path("segfuncd.toml")
MAX_BATCH_EVENTS = 400  # Segment's onBatch limit
DEFAULT_SOURCE_NAME = "default"  # how config and status name the source of intake.write_keys


@dataclass(frozen=True, slots=True, kw_only=True)
class IntakeConfig:
    listen: str = "127.0.0.1:8088"  # "" disables TCP
    unix_socket: str = ""  # "" disables; mode 0660
    write_keys: tuple[str, ...] = ()
    # With no write keys, only loopback / unix clients are served unless this is true.
    allow_remote_without_key: bool = False
    cors_origins: tuple[str, ...] = ()
    # Peers (IPs or CIDRs) whose X-Forwarded-For first hop is taken as the client's address.
    trusted_proxies: tuple[str, ...] = ()
    max_connections: int = 1024
    idle_timeout_s: float = 60.0
    read_timeout_s: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceConfig:
    """One `[sources.NAME]` table: the write key(s) events of this source arrive with."""

    write_key: str = ""
    write_keys: tuple[str, ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        """Every write key of the source, `write_key` first."""
        return tuple(dict.fromkeys(k for k in (self.write_key, *self.write_keys) if k))


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminConfig:
    socket: str = "var/admin.sock"
    group: str = ""  # set: socket mode 0660 owned by this group
    metrics_listen: str = ""  # optional TCP address serving only GET /metrics
    console_listen: str = "127.0.0.1:8089"  # the web console (token-protected); "" disables it


@dataclass(frozen=True, slots=True, kw_only=True)
class JetStreamConfig:
    """`[storage.jetstream]`: the NATS JetStream cluster shared by the nodes (segfuncd/jetstream/)."""

    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    stream: str = "SEGFUNCD"  # name prefix of the streams and consumers this cluster of nodes shares
    replicas: int = 1  # 1, 3 or 5 copies of each stream (RAFT); 3 survives one lost server
    credentials: str = ""  # a .creds file (JWT + nkey seed), as `nats.connect(user_credentials=)`
    nkey: str = ""  # an nkey seed file, as `nats.connect(nkeys_seed=)`
    user: str = ""
    password: str = ""
    token: str = ""
    tls_ca: str = ""  # CA bundle to verify the servers; set (or a tls:// server) turns TLS on
    tls_cert: str = ""  # client certificate (mutual TLS), with tls_key
    tls_key: str = ""
    max_bytes: int = 1 << 30  # the event stream's size limit; when full, intake answers 503
    # Seconds a Nats-Msg-Id (source + messageId) is remembered. The servers keep these ids in
    # memory (~100 B each): 1 h at 1,000 events/s is ~360 MB; SQLite's 24 h would be ~9 GB.
    duplicate_window: float = 3_600.0
    connect_timeout_s: float = 5.0
    # A function's consumer is swept (the events not routed to it acked, so the interest stream
    # does not keep them for it) once no node has listed the function for this long.
    orphan_grace_s: float = 600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageConfig:
    backend: str = "sqlite"  # "sqlite" (one node) or "jetstream" (nodes sharing a NATS cluster)
    jetstream: JetStreamConfig = field(default_factory=JetStreamConfig)
    path: str = "var/segfuncd.db"
    synchronous: str = "normal"  # "normal": survives a crash; "full": survives power loss
    retention_hours: float = 24.0  # delivered / discarded / filtered rows are pruned after this
    max_pending: int = 1_000_000  # above this, intake answers 503
    log_lines: int = 50_000  # bounded log store


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeConfig:
    plugins_dir: str = "plugins"
    workers: int = 0  # 0: CPU count
    timeout_ms: int = 10_000
    cpu_ms: int = 2_000
    memory_mb: int = 256
    egress_deny: tuple[str, ...] = ()  # added to runner/egress.py BUILTIN_DENY
    egress_allow: tuple[str, ...] = ()  # holes in the deny list; the most specific rule wins
    recycle_after: int = 100_000  # invocations before a runner is replaced
    drain_timeout_s: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryConfig:
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay_s: float = DEFAULT_BASE_DELAY_S


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchConfig:
    max_events: int = 20
    max_wait_ms: int = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class FilterConfig:
    """One `[[functions.NAME.filters]]` table; FQL is parsed by segfuncd.filters."""

    if_: str = "all"
    action: str = "drop"  # drop | sample | drop_properties | allow_properties
    percent: float = 1.0
    path: str = ""
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionConfig:
    enabled: bool = True
    settings: Mapping[str, Any] = field(default_factory=dict)
    # Settings whose values are redacted from logs; apiKey always is.
    secret_settings: tuple[str, ...] = ()
    filters: tuple[FilterConfig, ...] = ()
    batch: BatchConfig | None = None
    # Invocations of this function in flight at once; 0: up to all of the dispatcher's
    # slots. Either way each function with work is served in turn and keeps its fair share.
    max_concurrency: int = 0
    # Sources this function is connected to ("default" = intake.write_keys); None: all.
    sources: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The whole configuration, with paths already resolved."""

    source: str = "<built-in defaults>"  # the file it came from
    base_dir: Path = field(default_factory=Path.cwd)
    intake: IntakeConfig = field(default_factory=IntakeConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    retry: RetryConfig = field(default_factory=RetryConfig)
    sources: Mapping[str, SourceConfig] = field(default_factory=dict)
    functions: Mapping[str, FunctionConfig] = field(default_factory=dict)

    def resolve(self, path: str) -> Path:
        """A config path, absolute (relative ones are relative to the config's folder)."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def plugins_dir(self) -> Path:
        return self.resolve(self.runtime.plugins_dir)

    @property
    def db_path(self) -> Path:
        return self.resolve(self.storage.path)

    @property
    def admin_socket(self) -> Path:
        return self.resolve(self.admin.socket)

    @property
    def intake_socket(self) -> Path | None:
        return self.resolve(self.intake.unix_socket) if self.intake.unix_socket else None

    @property
    def workers(self) -> int:
        return self.runtime.workers or (os.cpu_count() or 1)

    def function(self, name: str) -> FunctionConfig:
        """The config of plugin `name` (defaults when it has no table)."""
        return self.functions.get(name) or FunctionConfig()


# --- discovery -------------------------------------------------------------------------


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """--config, else $SEGFUNCD_CONFIG, else ./segfuncd.toml, else /etc/segfuncd/segfuncd.toml."""
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError("no such config file", path=str(p))
        return p
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env)
        if not p.is_file():
            raise ConfigError(f"no such config file (from ${ENV_VAR})", path=str(p))
        return p
    for candidate in (LOCAL_CONFIG, SYSTEM_CONFIG):
        if candidate.is_file():
            return candidate
    return None


def load_config(explicit: str | os.PathLike[str] | None = None) -> Config:
    """Find and parse the config; built-in defaults when there is none."""
    path = find_config(explicit)
    if path is None:
        return Config()
    return parse_config_file(path)


def parse_config_file(path: Path, *, read_secrets: bool = True) -> Config:
    """Read and validate one TOML file; `read_secrets=False` leaves secret references unread (segfuncctl)."""
    name = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=name) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError("not UTF-8 text", path=name) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=name) from exc
    return parse_config(raw, source=name, base_dir=path.resolve().parent, read_secrets=read_secrets)


def parse_config(raw: Mapping[str, Any], *, source: str, base_dir: Path, read_secrets: bool = True) -> Config:
    """Validate a parsed TOML document into a Config."""
    sections: dict[str, Any] = {}
    section_types = {
        "intake": IntakeConfig,
        "admin": AdminConfig,
        "storage": StorageConfig,
        "runtime": RuntimeConfig,
        "retry": RetryConfig,
    }
    for key, value in raw.items():
        if key == "functions":
            sections["functions"] = _parse_functions(value, source, base_dir, read_secrets)
        elif key == "sources":
            if not isinstance(value, dict):
                raise ConfigError(f"expected a table, got {_show(value)}", path=source, key="sources")
            sections["sources"] = {n: _build(SourceConfig, t, source, f"sources.{n}") for n, t in value.items()}
        elif key in section_types:
            sections[key] = _build(section_types[key], value, source, key)
        else:
            raise ConfigError(_unknown(key, [*section_types, "functions", "sources"]), path=source, key=key)
    config = Config(source=source, base_dir=base_dir, **sections)
    _check(config)
    return config


def _parse_functions(value: Any, source: str, base_dir: Path, read_secrets: bool) -> dict[str, FunctionConfig]:
    if not isinstance(value, dict):
        raise ConfigError(f"expected a table, got {_show(value)}", path=source, key="functions")
    out = {}
    for name, table in value.items():
        key = f"functions.{name}"
        if not isinstance(table, dict):
            raise ConfigError(f"expected a table, got {_show(table)}", path=source, key=key)
        table = dict(table)
        filters = table.pop("filters", [])
        batch = table.pop("batch", None)
        fn = _build(FunctionConfig, table, source, key)
        if not isinstance(filters, list):
            raise ConfigError(f"expected an array of tables, got {_show(filters)}", path=source, key=f"{key}.filters")
        parsed_filters = []
        for i, f in enumerate(filters):
            fkey = f"{key}.filters[{i}]"
            if not isinstance(f, dict):
                raise ConfigError(f"expected a table, got {_show(f)}", path=source, key=fkey)
            f = dict(f)
            if "if" in f:
                f["if_"] = f.pop("if")
            parsed_filters.append(_build(FilterConfig, f, source, fkey))
        parsed_batch = None if batch is None else _build(BatchConfig, batch, source, f"{key}.batch")
        settings, secret = resolve_settings(
            fn.settings, source=source, key=f"{key}.settings", base_dir=base_dir, read=read_secrets
        )
        out[name] = dataclasses.replace(
            fn,
            settings=settings,
            secret_settings=tuple(dict.fromkeys((*fn.secret_settings, *secret))),
            filters=tuple(parsed_filters),
            batch=parsed_batch,
        )
    return out


def _build(cls: type, value: Any, source: str, key: str) -> Any:
    """Construct dataclass `cls` from a TOML table, checking names and types."""
    if not isinstance(value, dict):
        raise ConfigError(f"expected a table, got {_show(value)}", path=source, key=key)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, v in value.items():
        pyname = "if_" if name == "if_" else name
        if pyname not in fields:
            shown = [("if" if n == "if_" else n) for n in fields]
            raise ConfigError(_unknown(name, shown), path=source, key=f"{key}.{name}")
        kwargs[pyname] = _coerce(v, hints[pyname], source, f"{key}.{'if' if name == 'if_' else name}")
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], source, key)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"expected true or false, got {_show(value)}", path=source, key=key)
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"expected an integer, got {_show(value)}", path=source, key=key)
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"expected a number, got {_show(value)}", path=source, key=key)
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"expected a string, got {_show(value)}", path=source, key=key)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"expected an array, got {_show(value)}", path=source, key=key)
        return tuple(_coerce(v, args[0], source, f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, dict):
            raise ConfigError(f"expected a table, got {_show(value)}", path=source, key=key)
        if args and args[1] is not Any:
            return {k: _coerce(v, args[1], source, f"{key}.{k}") for k, v in value.items()}
        return dict(value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, source, key)
    return value


def _check(config: Config) -> None:
    """Cross-field and range checks, after the types are right."""
    src = config.source
    rt, st, rc = config.runtime, config.storage, config.retry

    def positive(key: str, value: float) -> None:
        if value <= 0:
            raise ConfigError(f"must be greater than 0, got {value!r}", path=src, key=key)

    if rt.workers < 0:
        raise ConfigError(f"must be 0 (CPU count) or more, got {rt.workers}", path=src, key="runtime.workers")
    for key, value in (
        ("runtime.timeout_ms", rt.timeout_ms),
        ("runtime.cpu_ms", rt.cpu_ms),
        ("runtime.memory_mb", rt.memory_mb),
        ("runtime.recycle_after", rt.recycle_after),
        ("retry.max_attempts", rc.max_attempts),
        ("retry.base_delay_s", rc.base_delay_s),
        ("storage.max_pending", st.max_pending),
        ("storage.retention_hours", st.retention_hours),
    ):
        positive(key, value)
    _check_jetstream(config)
    if st.synchronous not in ("normal", "full"):
        raise ConfigError(
            f'expected "normal" or "full", got {_show(st.synchronous)}', path=src, key="storage.synchronous"
        )
    for name, rules in (("egress_deny", rt.egress_deny), ("egress_allow", rt.egress_allow)):
        for i, rule in enumerate(rules):
            try:
                parse_rule(rule)
            except ValueError as exc:
                raise ConfigError(str(exc), path=src, key=f"runtime.{name}[{i}]") from exc
    for addr_key, addr in (
        ("intake.listen", config.intake.listen),
        ("admin.metrics_listen", config.admin.metrics_listen),
        ("admin.console_listen", config.admin.console_listen),
    ):
        if addr:
            try:
                parse_address(addr)
            except ValueError as exc:
                raise ConfigError(str(exc), path=src, key=addr_key) from exc
    _check_sources(config)
    for i, proxy in enumerate(config.intake.trusted_proxies):
        try:
            if proxy != "unix":
                ipaddress.ip_network(proxy, strict=False)
        except ValueError as exc:
            raise ConfigError(
                f'not an IP address, a CIDR network or "unix": {proxy!r}', path=src, key=f"intake.trusted_proxies[{i}]"
            ) from exc
    for name, fn in config.functions.items():
        if fn.max_concurrency < 0:
            raise ConfigError(
                f"must be 0 (no cap of its own) or more, got {fn.max_concurrency}",
                path=src,
                key=f"functions.{name}.max_concurrency",
            )
        if fn.batch is not None and not (1 <= fn.batch.max_events <= MAX_BATCH_EVENTS):
            raise ConfigError(
                f"must be between 1 and {MAX_BATCH_EVENTS}, got {fn.batch.max_events}",
                path=src,
                key=f"functions.{name}.batch.max_events",
            )
        for i, f in enumerate(fn.filters):
            key = f"functions.{name}.filters[{i}]"
            if f.action not in ("drop", "sample", "drop_properties", "allow_properties"):
                raise ConfigError(
                    f'expected one of "drop", "sample", "drop_properties", "allow_properties", got {_show(f.action)}',
                    path=src,
                    key=f"{key}.action",
                )
            if not 0.0 <= f.percent <= 1.0:
                raise ConfigError(f"must be between 0 and 1, got {f.percent}", path=src, key=f"{key}.percent")


_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _check_jetstream(config: Config) -> None:
    """[storage] backend and [storage.jetstream]: values a NATS server would refuse, named by key."""
    src, st, js = config.source, config.storage, config.storage.jetstream
    if st.backend not in ("sqlite", "jetstream"):
        raise ConfigError(f'expected "sqlite" or "jetstream", got {_show(st.backend)}', path=src, key="storage.backend")
    if not js.servers:
        raise ConfigError("expected at least one server URL", path=src, key="storage.jetstream.servers")
    for i, url in enumerate(js.servers):
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in ("nats", "tls") or not rest:
            raise ConfigError(
                f'expected a URL like "nats://host:4222" or "tls://host:4222", got {_show(url)}',
                path=src,
                key=f"storage.jetstream.servers[{i}]",
            )
    if not js.stream or not set(js.stream) <= _NAME_CHARS or len(js.stream) > 32:
        raise ConfigError(
            f"expected 1-32 letters, digits, _ or -, got {_show(js.stream)}", path=src, key="storage.jetstream.stream"
        )
    if js.replicas not in (1, 3, 5):
        raise ConfigError(f"expected 1, 3 or 5, got {js.replicas}", path=src, key="storage.jetstream.replicas")
    for key, value in (
        ("storage.jetstream.max_bytes", js.max_bytes),
        ("storage.jetstream.duplicate_window", js.duplicate_window),
        ("storage.jetstream.connect_timeout_s", js.connect_timeout_s),
    ):
        if value <= 0:
            raise ConfigError(f"must be greater than 0, got {value!r}", path=src, key=key)
    if not 0 <= js.orphan_grace_s < float("inf"):
        raise ConfigError(
            f"expected seconds, 0 or more, got {js.orphan_grace_s!r}", path=src, key="storage.jetstream.orphan_grace_s"
        )
    if bool(js.tls_cert) != bool(js.tls_key):
        raise ConfigError("tls_cert and tls_key go together: set both or neither", path=src, key="storage.jetstream")
    if js.credentials and js.nkey:
        raise ConfigError("set credentials or nkey, not both", path=src, key="storage.jetstream")


def _check_sources(config: Config) -> None:
    """Named sources have keys, no key belongs to two sources, functions name known sources."""
    src = config.source
    owner: dict[str, str] = {key: "intake.write_keys" for key in config.intake.write_keys}
    for name, table in config.sources.items():
        key = f"sources.{name}"
        if name == DEFAULT_SOURCE_NAME:
            raise ConfigError(
                f'"{DEFAULT_SOURCE_NAME}" is the name of the unnamed source of intake.write_keys; pick another name',
                path=src,
                key=key,
            )
        if not name or not all(c.isalnum() or c in "-_." for c in name):
            raise ConfigError("a source name uses letters, digits, '-', '_' and '.'", path=src, key=key)
        if not table.keys:
            raise ConfigError("a source needs write_key or write_keys", path=src, key=key)
        for write_key in table.keys:
            if write_key in owner:
                raise ConfigError(f"this write key is also in {owner[write_key]}", path=src, key=f"{key}.write_keys")
            owner[write_key] = key
    known = {DEFAULT_SOURCE_NAME, *config.sources}
    for name, fn in config.functions.items():
        for i, wanted in enumerate(fn.sources or ()):
            if wanted not in known:
                raise ConfigError(
                    _unknown(wanted, sorted(known)).replace("unknown key", "unknown source"),
                    path=src,
                    key=f"functions.{name}.sources[{i}]",
                )


def parse_address(addr: str) -> tuple[str, int]:
    """ "host:port" or "[v6]:port" -> (host, port); ValueError names the problem."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f'expected "host:port", got {addr!r}')
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    n = int(port)
    if not 0 <= n <= 65535:
        raise ValueError(f"port out of range in {addr!r}")
    return host, n


def _unknown(key: str, known: list[str]) -> str:
    return f"unknown key {key!r} (known: {', '.join(sorted(known))})"


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return repr(value)
