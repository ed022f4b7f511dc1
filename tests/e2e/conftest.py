"""Real `segfuncd` and `segfuncctl` processes for end-to-end tests.

`start_daemon(tmp_path, config_text, plugins={name: source})` writes a config into
tmp_path (the given TOML merged over test defaults: a free intake port on 127.0.0.1, the
admin socket, SQLite file and plugins_dir all inside tmp_path, one runner worker, short
retry delays), writes the plugins, starts `segfuncd --config X` as a subprocess and waits
until the admin socket answers GET /status. The `daemon` fixture is that function, and
kills whatever is still running at the end of the test.

    def test_something(daemon, sink):
        d = daemon(config_text='[functions.hello]\\nsettings = {apiKey = "k"}',
                   plugins={"hello": "async function onTrack(e) { return 1 }"})
        d.post("/v1/track", {"userId": "u", "event": "E"})
        out = d.ctl("status", "--json")
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomli_w

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 30.0


def _exe(name: str, module: str) -> list[str]:
    path = BIN / name
    return [str(path)] if path.exists() else [sys.executable, "-m", module]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (intake cannot listen on :0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def wait_until(
    predicate: Callable[[], Any], *, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll `predicate` until it returns something truthy; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class DaemonProc:
    """One running `segfuncd` and the ways to talk to it."""

    def __init__(
        self,
        tmp_path: Path,
        config: dict[str, Any],
        plugins: Mapping[str, str],
        *,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.dir = tmp_path
        self.config = config
        self.config_path = tmp_path / "segfuncd.toml"
        self.config_path.write_text(tomli_w.dumps(config), encoding="utf-8")
        self.plugins_dir: Path = tmp_path / config["runtime"]["plugins_dir"]
        self.plugins_dir.mkdir(parents=True, exist_ok=True)
        for name, source in plugins.items():
            self.write_plugin(name, source)
        self.admin_socket = tmp_path / config["admin"]["socket"]
        self.intake_url = f"http://{config['intake']['listen']}" if config["intake"].get("listen") else ""
        self.stderr_path = tmp_path / "segfuncd.stderr"
        self.env = {k: v for k, v in os.environ.items() if k != "SEGFUNCD_CONFIG"}
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.extra_args: list[str] = []  # e.g. ["--accept-state-loss"]

    # --- lifecycle ----------------------------------------------------------------------

    def start(
        self,
        *,
        timeout: float = START_TIMEOUT_S,
        nofile: tuple[int, int] | None = None,
        process_group: bool = False,
    ) -> DaemonProc:
        """Start and wait for the admin socket; `nofile` = (soft, hard) RLIMIT_NOFILE to start it
        with; `process_group=True` puts it in a group of its own (for `kill -- -PGID`)."""

        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [*_exe("segfuncd", "segfuncd.daemon"), "--config", str(self.config_path), *self.extra_args],
                stdout=err,
                stderr=err,
                cwd=self.dir,
                env=self.env,
                preexec_fn=limit if nofile is not None else None,
                process_group=0 if process_group else None,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"segfuncd exited with {self.proc.returncode} while starting:\n{self.stderr()}")
            try:
                if self.admin_get("/status", timeout=2).status_code == 200:
                    return self
            except (httpx.TransportError, OSError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"segfuncd did not answer on {self.admin_socket} in {timeout}s:\n{self.stderr()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; the exit status (killed after `timeout`)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"segfuncd did not stop within {timeout}s of SIGTERM:\n{self.stderr()}") from None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def wait_until(self, predicate: Callable[[], Any], *, timeout: float = 15.0, what: str = "condition") -> Any:
        """`wait_until`, failing early (with the daemon's stderr) if the daemon died."""

        def check() -> Any:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"segfuncd exited with {self.proc.returncode}:\n{self.stderr()[-4000:]}")
            return predicate()

        return wait_until(check, timeout=timeout, what=what)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    # --- files --------------------------------------------------------------------------

    def write_plugin(self, name: str, source: str) -> Path:
        """Write plugins/NAME.js atomically (as an editor's save-by-rename would)."""
        path = self.plugins_dir / f"{name}.js"
        tmp = self.plugins_dir / f".{name}.js.tmp"
        tmp.write_text(source, encoding="utf-8")
        os.replace(tmp, path)
        return path

    # --- segfuncctl ---------------------------------------------------------------------

    def ctl_argv(self, *args: str) -> list[str]:
        return [*_exe("segfuncctl", "segfuncd.ctl"), "--config", str(self.config_path), *args]

    def ctl(self, *args: str, input: str | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run the real `segfuncctl --config <this config> ARGS` to completion."""
        return subprocess.run(
            self.ctl_argv(*args),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.dir,
            env=self.env,
        )

    def ctl_popen(self, *args: str) -> subprocess.Popen[str]:
        """Start `segfuncctl ARGS` (e.g. `logs -f`) and leave it running; stdout is a pipe."""
        return subprocess.Popen(
            self.ctl_argv(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.dir,
            env=self.env,
            bufsize=1,
        )

    def status(self) -> dict[str, Any]:
        """GET /status on the admin socket, as JSON."""
        r = self.admin_get("/status")
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    def function_status(self, name: str) -> dict[str, Any]:
        return next((f for f in self.status()["functions"] if f["name"] == name), {})

    # --- HTTP ---------------------------------------------------------------------------

    def admin_get(self, path: str, *, timeout: float = 10.0, **params: Any) -> httpx.Response:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.admin_socket)), base_url="http://segfuncd") as c:
            return c.get(path, params=params, timeout=timeout)

    def admin_post(self, path: str, body: Any, *, timeout: float = 60.0) -> httpx.Response:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.admin_socket)), base_url="http://segfuncd") as c:
            return c.post(path, json=body, timeout=timeout)

    def post(self, path: str, json: Any, *, write_key: str | None = None, timeout: float = 10.0) -> httpx.Response:
        """POST JSON to intake (e.g. "/v1/track"), with the write key as Basic username if given."""
        auth = (write_key, "") if write_key else None
        return httpx.post(self.intake_url + path, json=json, auth=auth, timeout=timeout)

    def __repr__(self) -> str:
        return f"<DaemonProc pid={self.proc.pid if self.proc else None} {self.config_path}>"


def make_config(tmp_path: Path, config_text: str = "") -> dict[str, Any]:
    """The test defaults with `config_text` (TOML) merged over them."""
    base: dict[str, Any] = {
        "intake": {"listen": f"127.0.0.1:{free_port()}"},
        "admin": {"socket": "var/admin.sock", "console_listen": f"127.0.0.1:{free_port()}"},
        "storage": {"path": "var/segfuncd.db"},
        # loopback is denied to fetch() by default: the test sink on 127.0.0.1 is opened explicitly
        "runtime": {"plugins_dir": "plugins", "workers": 1, "timeout_ms": 5000, "egress_allow": ["127.0.0.1"]},
        "retry": {"max_attempts": 3, "base_delay_s": 0.2},
    }
    return _merge(base, tomllib.loads(config_text))


def start_daemon(
    tmp_path: Path,
    config_text: str = "",
    plugins: Mapping[str, str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = START_TIMEOUT_S,
) -> DaemonProc:
    """Write config + plugins into tmp_path and start a real segfuncd; see the module docstring."""
    return DaemonProc(tmp_path, make_config(tmp_path, config_text), plugins or {}, env=env).start(timeout=timeout)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., DaemonProc]]:
    """`daemon(config_text="", plugins={...})` starts a segfuncd in tmp_path; killed at teardown."""
    started: list[DaemonProc] = []

    def start(
        config_text: str = "", plugins: Mapping[str, str] | None = None, *, subdir: str | None = None, **kw: Any
    ) -> DaemonProc:
        where = tmp_path / subdir if subdir else tmp_path
        where.mkdir(parents=True, exist_ok=True)
        d = DaemonProc(where, make_config(where, config_text), plugins or {}, env=kw.pop("env", None))
        started.append(d)
        return d.start(**kw)

    yield start
    for d in started:
        d.kill()


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """tmp_path/var on its own 8 MB tmpfs (root only); unmounted at teardown.

    Request it BEFORE `daemon` in a test's arguments, so the daemon is killed before the
    unmount (fixtures tear down in reverse order).
    """
    where = tmp_path / "var"
    where.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(where)], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs for the disk-full test: {exc}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the disk-full test (needs root): {done.stderr.strip()}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True, timeout=10).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=10)


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)


@pytest.fixture
def nats_one(tmp_path: Path) -> Iterator[Any]:
    """One nats-server with JetStream on a free loopback port (issue 16); killed at teardown."""
    from helpers import start_nats

    server = start_nats(tmp_path / "nats")
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def nats_three(tmp_path: Path) -> Iterator[list[Any]]:
    """Three nats-servers routed into one JetStream cluster on loopback; killed at teardown."""
    from helpers import start_nats_cluster

    servers = start_nats_cluster(tmp_path / "nats")
    try:
        yield servers
    finally:
        for s in servers:
            s.kill()
