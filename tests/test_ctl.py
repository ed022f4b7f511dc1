"""segfuncctl as a real process against the admin API on a real Unix socket.

The admin runs in a thread with stand-ins at its edge (tests/test_admin_fakes.py); the
whole daemon is driven in tests/e2e/test_ctl_*.py.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio
from helpers import until_a_line_arrives
from test_admin_fakes import NOW, make_admin

from segfuncd.config import parse_config_file
from segfuncd.ctl import cli
from segfuncd.ctl_format import render_status
from segfuncd.server import open_unix_listener, serve_http

ROOT = Path(__file__).resolve().parents[1]


def ctl(*args: str, stdin: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "segfuncd.ctl", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """An Admin served on tmp_path/admin.sock from a trio loop in a thread."""
    path = tmp_path / "admin.sock"
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        adm, store, pool = make_admin()
        holder.update(admin=adm, store=store, pool=pool, token=trio.lowlevel.current_trio_token())
        listener = await open_unix_listener(path, mode=0o600)
        async with trio.open_nursery() as nursery:
            holder["scope"] = nursery.cancel_scope
            await nursery.start(serve_http, adm.handle, [listener])
            ready.set()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    assert ready.wait(10), "admin server did not start"
    ns = SimpleNamespace(path=path, **holder)
    ns.run = lambda fn, *a: trio.from_thread.run_sync(fn, *a, trio_token=holder["token"])
    try:
        yield ns
    finally:
        ns.run(holder["scope"].cancel)
        thread.join(10)


class TestAgainstAdmin:
    def test_status_table_fits_80_columns_and_json_is_the_data(self, admin: SimpleNamespace) -> None:
        out = ctl("--socket", str(admin.path), "status")
        assert out.returncode == 0, out.stderr
        assert all(len(line) <= 80 for line in out.stdout.splitlines()), out.stdout
        assert "teams" in out.stdout and "load error" in out.stdout and "SyntaxError" in out.stdout
        data = json.loads(ctl("--socket", str(admin.path), "status", "--json").stdout)
        assert {f["name"] for f in data["functions"]} == {"teams", "broken"}

    def test_socket_mode_is_0600(self, admin: SimpleNamespace) -> None:
        assert stat.S_IMODE(os.stat(admin.path).st_mode) == 0o600

    def test_test_prints_callback_return_then_log_output_then_requests(
        self, admin: SimpleNamespace, tmp_path: Path
    ) -> None:
        out = ctl("--socket", str(admin.path), "test", "teams", "-", stdin='{"type": "track", "event": "X"}')
        assert out.returncode == 0, out.stderr
        text = out.stdout
        assert text.index("Callback Return") < text.index("Log Output") < text.index("Requests")
        assert '"seen": "track"' in text and "key is [redacted]" in text and "POST http://sink/hook" in text

    def test_test_exits_1_when_the_function_throws(self, admin: SimpleNamespace, tmp_path: Path) -> None:
        ev = tmp_path / "ev.json"
        ev.write_text('{"type": "track", "want": "ValidationError"}')
        out = ctl("--socket", str(admin.path), "test", "teams", str(ev))
        assert out.returncode == 1 and "ValidationError: nope" in out.stdout

    def test_test_settings_file_is_sent(self, admin: SimpleNamespace, tmp_path: Path) -> None:
        s = tmp_path / "s.json"
        s.write_text('{"channel": "dev"}')
        assert ctl("--socket", str(admin.path), "test", "teams", "--settings", str(s)).returncode == 0
        assert admin.pool.calls[-1][2]["channel"] == "dev"

    def test_unknown_function_is_one_line_and_exit_2(self, admin: SimpleNamespace) -> None:
        out = ctl("--socket", str(admin.path), "test", "nope")
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no function named 'nope'" in out.stderr

    def test_logs_n_and_follow_sees_a_line_written_after_it_started(self, admin: SimpleNamespace) -> None:
        for i in range(3):
            admin.run(lambda i=i: admin.store.add_log(function="teams", message=f"old {i}", time=NOW))
        out = ctl("--socket", str(admin.path), "logs", "-n", "2", "teams")
        assert out.returncode == 0 and "old 0" not in out.stdout and "old 2" in out.stdout
        proc = subprocess.Popen(
            [sys.executable, "-m", "segfuncd.ctl", "--socket", str(admin.path), "logs", "-f", "-n", "1"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            line, _ = until_a_line_arrives(
                proc.stdout,
                lambda i: admin.run(lambda: admin.store.add_log(function="teams", message=f"fresh line {i}")),
            )
            assert "fresh line" in line and "teams@" not in line  # no version given
            assert "old" not in line  # -n 0: nothing from before
        finally:
            proc.terminate()
            proc.wait(5)

    def test_replay_reload_and_deliveries(self, admin: SimpleNamespace) -> None:
        sock = str(admin.path)
        assert "replayed 1 dead-lettered delivery of teams" in ctl("--socket", sock, "replay", "teams").stdout
        assert ctl("--socket", sock, "reload").stdout.strip() == "config reloaded"
        listing = ctl("--socket", sock, "deliveries", "teams", "--state", "dead")
        assert listing.returncode == 0 and "TypeError: boom" in listing.stdout
        one = ctl("--socket", sock, "deliveries", "show", "7")
        assert one.returncode == 0 and "#1" in one.stdout and '"event": "X"' in one.stdout
        assert ctl("--socket", sock, "deliveries", "show", "8").returncode == 1


class TestWithoutADaemon:
    def test_unreachable_daemon_is_one_line_naming_the_socket(self, tmp_path: Path) -> None:
        sock = tmp_path / "admin.sock"
        out = ctl("--socket", str(sock), "status")
        assert out.returncode == 3 and out.stdout == ""
        assert out.stderr == f"segfuncctl: cannot reach the daemon at {sock}: no such socket (is segfuncd running?)\n"

    def test_refused_connection_says_so(self, tmp_path: Path) -> None:
        import socket

        sock = tmp_path / "admin.sock"
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(sock))  # bound, never listening: connect is refused
        try:
            out = ctl("--socket", str(sock), "status")
        finally:
            s.close()
        assert out.stderr == f"segfuncctl: cannot reach the daemon at {sock}: connection refused\n"

    def test_socket_comes_from_the_config(self, tmp_path: Path) -> None:
        cfg = tmp_path / "segfuncd.toml"
        cfg.write_text('[admin]\nsocket = "run/a.sock"\n')
        out = ctl("--config", str(cfg), "status")
        assert out.returncode == 3 and str(tmp_path / "run" / "a.sock") in out.stderr

    def test_an_invalid_config_is_a_warning_and_its_socket_is_still_used(self, tmp_path: Path) -> None:
        """`segfuncctl reload` after breaking the config must still reach the daemon."""
        cfg = tmp_path / "segfuncd.toml"
        cfg.write_text('[admin]\nsocket = "run/x.sock"\nsockett = 1\n')
        out = ctl("--config", str(cfg), "status")
        warning, error = out.stderr.splitlines()
        assert warning.startswith("segfuncctl: warning: ") and "sockett" in warning
        assert out.returncode == 3 and f"cannot reach the daemon at {tmp_path / 'run' / 'x.sock'}" in error

    def test_a_config_that_is_not_even_toml_still_names_its_socket(self, tmp_path: Path) -> None:
        cfg = tmp_path / "segfuncd.toml"
        cfg.write_text('[admin]\nsocket = "run/y.sock"\n[retry]\nmax_attempts = 3\n[retry]\nbase_delay_s = 1\n')
        out = ctl("--config", str(cfg), "reload")
        assert "invalid TOML" in out.stderr and str(tmp_path / "run" / "y.sock") in out.stderr and out.returncode == 3

    def test_a_missing_config_file_is_one_line(self, tmp_path: Path) -> None:
        out = ctl("--config", str(tmp_path / "nope.toml"), "status")
        assert out.returncode == 3 and out.stderr == f"segfuncctl: {tmp_path / 'nope.toml'}: no such config file\n"

    def test_init_writes_a_config_that_parses_and_an_example_plugin_and_never_overwrites(self, tmp_path: Path) -> None:
        out = ctl("init", str(tmp_path / "site"))
        assert out.returncode == 0, out.stderr
        config = parse_config_file(tmp_path / "site" / "segfuncd.toml")
        assert config.function("example").settings["apiKey"] == "replace-me"
        assert "async function onTrack" in (tmp_path / "site" / "plugins" / "example.js").read_text()
        assert (tmp_path / "site" / "segfuncd.toml").read_text().count("# ") > 10
        again = ctl("init", str(tmp_path / "site"))
        assert again.returncode == 1 and "refusing to overwrite" in again.stderr


class TestHelp:
    COMMANDS = sorted(cli.commands)

    def test_every_command_has_help_ending_with_an_example_and_exit_codes(self) -> None:
        for name in self.COMMANDS:
            out = ctl(name, "-h")
            assert out.returncode == 0
            assert "Example:" in out.stdout and "Exit status:" in out.stdout, name

    def test_every_command_is_in_the_readme(self) -> None:
        readme = (ROOT / "README.md").read_text()
        missing = [n for n in self.COMMANDS if f"segfuncctl {n}" not in readme]
        assert not missing, f"not in README.md: {missing}"


class TestRenderStatus:
    def test_long_names_and_big_numbers_still_fit_80_columns(self) -> None:
        window = {"count": 123_456_789, "success_rate": 0.98765, "p50_ms": 12345.6, "p99_ms": 99999.9}
        fn = {
            "name": "a-very-long-function-name-indeed",
            "state": "load error",
            "version": "0123456789ab",
            "loaded_at": NOW - 10**7,
            "delivered": 10**9,
            "discarded": {"ValidationError": 10**8},
            "filtered": 10**7,
            "retrying": 99_999,
            "dead": 123_456,
            "last_5m": window,
            "last_24h": window,
            "error": "plugins/x.js:1: " + "x" * 200,
            "error_at": NOW,
            "last_error": "E: " + "y" * 200,
            "last_error_at": NOW,
        }
        data = {
            "now": NOW,
            "daemon": {"version": "0.1.0", "pid": 1, "uptime_s": 10**6, "config": "/etc/" + "c" * 90},
            "intake": {"addresses": ["http://127.0.0.1:8088"], "events_per_s": 12345.6, "accepted": 10**10},
            "runners": {"alive": 8, "workers": 8, "restarts": 3},
            "queue": {"pending": 10**7, "oldest_pending_age_s": 3600},
            "functions": [fn, dict(fn, name="b")],
        }
        text = render_status(data)
        too_wide = [line for line in text.splitlines() if len(line) > 80]
        assert not too_wide, too_wide
        assert "a-very-long-fun…" in text and "1.0M" not in text.splitlines()[0]

    def test_no_functions_says_where_to_put_them(self) -> None:
        text = render_status({"daemon": {"plugins_dir": "/srv/plugins"}, "functions": []})
        assert "put NAME.js files in /srv/plugins" in text

    def test_latency_and_rates_are_formatted(self) -> None:
        fn = {
            "name": "teams",
            "state": "live",
            "last_5m": {"count": 50, "success_rate": 0.98, "p50_ms": 12.2, "p99_ms": 340},
            "last_24h": {"count": 0},
        }
        text = render_status({"now": NOW, "daemon": {}, "functions": [fn]})
        row = [line for line in text.splitlines() if line.startswith("teams") and "%" in line][0]
        assert re.search(r"50\s+98\.0%\s+12ms\s+340ms\s+0\s+-\s+-\s+-", row), row


def test_starter_config_values_are_the_built_in_defaults(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`segfuncctl init` says "the values below are the defaults": parsing it changes no section."""
    import tomllib

    from segfuncd.config import Config, parse_config
    from segfuncd.ctl_starter import starter_config

    parsed = parse_config(tomllib.loads(starter_config()), source="starter", base_dir=tmp_path)
    defaults = Config()
    for section in ("intake", "admin", "storage", "runtime", "retry"):
        assert getattr(parsed, section) == getattr(defaults, section), section


def test_the_repositorys_example_plugin_is_the_starters_and_a_real_file() -> None:
    """`segfuncd` in a fresh checkout loads plugins/example.js: a symlink out of plugins/ is
    refused by design (plugin_files.py), so it is a copy of the starter, kept equal here."""
    root = Path(__file__).resolve().parents[1]
    example = root / "plugins" / "example.js"
    assert not example.is_symlink()
    assert example.read_text() == (root / "segfuncd" / "starter" / "example.js").read_text()
