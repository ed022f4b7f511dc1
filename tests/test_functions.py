"""functions.py: a destination function's state and reason, target, routing and name rules (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from segfuncd.config import BatchConfig, Config, FunctionConfig
from segfuncd.functions import Functions, FunctionState, UnknownFunction, did_you_mean
from segfuncd.plugins import PluginState
from segfuncd.runner import PluginVersion

V1 = PluginVersion.from_source("a", "async function onTrack(e) { return 1 }")


class Registry:
    """The two calls Functions makes of the plugin registry, over a fixed dict."""

    def __init__(self, *states: PluginState) -> None:
        self.items = {s.name: s for s in states}

    def get(self, name: str) -> PluginState | None:
        return self.items.get(name)

    def states(self) -> list[PluginState]:
        return [self.items[n] for n in sorted(self.items)]


def plugin(name: str, **kw: object) -> PluginState:
    fields: dict[str, object] = {
        "name": name,
        "path": f"plugins/{name}.js",
        "enabled": True,
        "version": V1,
        "loaded_at": 1.0,
        "handlers": ("onTrack",),
    }
    fields.update(kw)
    return PluginState(**fields)  # type: ignore[arg-type]


def functions(*states: PluginState, **tables: FunctionConfig) -> Functions:
    config = Config(source="segfuncd.toml", base_dir=Path("/etc/segfuncd"), functions=tables)
    return Functions(Registry(*states), lambda: config)


class TestState:
    """One state per function, decided in one order, with a reason when not live."""

    def test_live(self) -> None:
        f = functions(plugin("a")).get("a")
        assert f.state is FunctionState.LIVE and f.reason is None and f.version is V1

    def test_no_plugin_file(self) -> None:
        f = functions(teams=FunctionConfig()).get("teams")
        assert f.state is FunctionState.NO_PLUGIN and "no plugin file teams.js" in (f.reason or "")
        assert f.target().version is None

    def test_removed_wins_over_disabled(self) -> None:
        f = functions(plugin("a", removed=True), a=FunctionConfig(enabled=False)).get("a")
        assert f.state is FunctionState.REMOVED and f.target().version is None

    def test_disabled_waits_with_its_reason(self) -> None:
        t = functions(plugin("a"), a=FunctionConfig(enabled=False)).target("a")
        assert t.version is None and t.reason == "function is disabled in the config"

    def test_load_error_with_an_older_version_keeps_running_it(self) -> None:
        f = functions(plugin("a", error="a.js:3: SyntaxError")).get("a")
        assert f.state is FunctionState.LOAD_ERROR and f.target().version is V1

    def test_load_error_without_a_version_waits(self) -> None:
        t = functions(plugin("a", version=None, error="a.js:1: no handler")).target("a")
        assert t.version is None and t.reason == "function fails to load: a.js:1: no handler"

    def test_loading(self) -> None:
        assert functions(plugin("a", version=None)).get("a").state is FunctionState.LOADING


def test_routable_is_present_and_enabled_loaded_or_not() -> None:
    fs = functions(
        plugin("live"),
        plugin("broken", version=None, error="x"),
        plugin("gone", removed=True),
        plugin("off"),
        off=FunctionConfig(enabled=False),
    )
    assert sorted(fs.routable()) == ["broken", "live"]
    assert fs.live() == {"broken": False, "gone": False, "live": True, "off": False}


class TestOnBatch:
    """onBatch batches with a batch table, or alone with Segment's defaults."""

    def test_onbatch_only_uses_segment_defaults(self) -> None:
        t = functions(plugin("b", handlers=("onBatch",))).target("b")
        assert t.batch == BatchConfig(max_events=20, max_wait_ms=10_000)

    def test_onbatch_beside_single_handlers_needs_the_table(self) -> None:
        both = ("onBatch", "onTrack")
        assert functions(plugin("b", handlers=both)).target("b").batch is None
        table = BatchConfig(max_events=5, max_wait_ms=100)
        assert functions(plugin("b", handlers=both), b=FunctionConfig(batch=table)).target("b").batch == table

    def test_no_onbatch_never_batches(self) -> None:
        table = FunctionConfig(batch=BatchConfig())
        assert functions(plugin("a"), a=table).target("a").batch is None


class TestNames:
    def test_table_without_plugin_warns_with_did_you_mean(self) -> None:
        [w] = functions(plugin("hello"), helo=FunctionConfig()).warnings()
        assert w.function == "helo" and w.did_you_mean == "hello"
        assert w.message == (
            "segfuncd.toml: [functions.helo] matches no plugin file helo.js in /etc/segfuncd/plugins; "
            "did you mean [functions.hello]?"
        )

    def test_unrelated_name_gets_no_suggestion(self) -> None:
        assert did_you_mean("zzz", ["hello", "teams"]) is None

    def test_require_knows_plugins_tables_and_stored_names(self) -> None:
        fs = functions(plugin("hello"), configured=FunctionConfig())
        for name in ("hello", "configured", "old"):
            fs.require(name, stored=["old"])
        with pytest.raises(UnknownFunction) as info:
            fs.require("helo", stored=["old"])
        assert str(info.value) == "no function named 'helo' (did you mean 'hello'?); functions: configured, hello, old"
