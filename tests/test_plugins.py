"""The plugin registry with a real runner pool and a real plugins directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
from helpers import SINK_ALLOW, functions_of

from segfuncd.functions import FunctionState
from segfuncd.plugins import PluginRegistry, plugin_name
from segfuncd.runner import open_runner_pool

GOOD = "async function onTrack(e) { return 1 }"
BETTER = "async function onTrack(e) { return 2 }"


@pytest.mark.parametrize(
    "filename, name",
    [
        ("teams.js", "teams"),
        ("my-func_2.js", "my-func_2"),
        (".teams.js", None),  # dotfile
        (".teams.js.swp", None),  # vim swap
        ("teams.js~", None),  # backup
        ("#teams.js#", None),  # emacs autosave
        ("teams.js.tmp", None),
        ("teams.mjs", None),
        ("te am.js", None),
        ("README.md", None),
    ],
)
def test_which_files_are_plugins(filename: str, name: str | None) -> None:
    assert plugin_name(Path("/plugins") / filename) == name


def write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


async def test_load_swap_keep_old_on_error_and_remove(tmp_path: Path) -> None:
    woke: list[str] = []

    async def on_live(name: str) -> None:
        woke.append(name)

    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        reg = PluginRegistry(tmp_path, pool=pool, enabled=lambda n: n != "off", on_live=on_live)
        write(tmp_path / "a.js", GOOD)
        write(tmp_path / "off.js", GOOD)
        (tmp_path / "notes.txt").write_text("ignored")
        await reg.scan()
        a = reg.get("a")
        assert a is not None and a.version is not None and a.handlers == ("onTrack",)
        assert functions_of(reg, disabled="off").routable() == ["a"]
        assert woke == ["a", "off"]
        first = a.version
        assert first is not None

        write(tmp_path / "a.js", "async function onTrack(e) {\n  return (\n}\n")
        await reg.scan()
        a = reg.get("a")
        assert a is not None and a.version == first  # the old version stays live
        assert a.error is not None and "a.js:3" in a.error and "SyntaxError" in a.error

        write(tmp_path / "a.js", BETTER)
        await reg.scan()
        a = reg.get("a")
        assert a is not None and a.error is None and a.version is not None and a.version.hash != first.hash

        (tmp_path / "a.js").unlink()
        await reg.scan()
        a = reg.get("a")
        assert a is not None and a.removed
        assert functions_of(reg, disabled="off").get("a").state is FunctionState.REMOVED
        assert functions_of(reg, disabled="off").routable() == []


async def test_a_file_without_handlers_is_a_load_error(tmp_path: Path) -> None:
    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        reg = PluginRegistry(tmp_path, pool=pool, enabled=lambda n: True)
        write(tmp_path / "empty.js", "var x = 1\n")
        await reg.scan()
        state = reg.get("empty")
        assert state is not None and state.version is None and state.error
        assert functions_of(reg).routable() == ["empty"]  # its events wait until the file is fixed


async def test_watch_picks_up_a_new_file_and_one_save_is_one_load(tmp_path: Path) -> None:
    loads: list[str] = []

    async def on_live(name: str) -> None:
        loads.append(name)

    async with open_runner_pool(workers=1, egress_allow=SINK_ALLOW) as pool:
        reg = PluginRegistry(tmp_path, pool=pool, enabled=lambda n: True, on_live=on_live)
        async with trio.open_nursery() as nursery:
            await nursery.start(reg.watch)
            write(tmp_path / "w.js", GOOD)  # save via rename: add + move events
            (tmp_path / ".w.js.swp").write_text("editor noise")
            with trio.fail_after(10):
                while not loads:
                    await trio.sleep(0.02)
            await trio.sleep(0.5)  # let any second event batch arrive
            nursery.cancel_scope.cancel()
    assert loads == ["w"]
