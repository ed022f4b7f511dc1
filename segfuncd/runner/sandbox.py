"""One QuickJS context with an allow-listed host bridge, and the limits that interrupt it.

What lives here: building a context from the prelude files (plus real lodash), loading a
plugin's source, running one *slice* (a batch of triggers through the JS dispatcher), and
the signal timers that stop runaway JavaScript. What does not: I/O, trio, the protocol.

Sandbox rules (DESIGN.md §3 — dukpy's stock interpreter is not a sandbox):
  * the context comes from `dukpy._dukpy.create_context()`, never `JSInterpreter`, so there
    is no `require`, no module loader reading disk files and no `process.env`;
  * dukpy re-installs the `call_python` and `dukpy` globals on every eval; the prelude traps
    both with non-configurable accessors, keeps the native in a closure and never lets user
    code read either;
  * the host answers exactly one exported name, and only with the context's secret token;
    every host function is safe with any arguments and never raises (bad input -> null);
  * CPU and wall-clock limits are Python exceptions raised from SIGPROF / SIGALRM handlers,
    which dukpy's interrupt check turns into an aborted eval; the context stays usable.
    Signals run only in the main thread, so JS must run in the runner's main thread.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.resources
import importlib.util
import json
import os
import re
import secrets
import signal
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import dukpy._dukpy as _dukpy  # type: ignore[import-untyped]  # the bare native layer

PRELUDE_NAME = "<segfuncd-prelude>"
HANDLER_NAMES = (
    "onTrack",
    "track",
    "onIdentify",
    "identify",
    "onPage",
    "page",
    "onScreen",
    "screen",
    "onGroup",
    "group",
    "onAlias",
    "alias",
    "onDelete",
    "onBatch",
)
_HASHES = frozenset({"md5", "sha1", "sha224", "sha256", "sha384", "sha512"})
MAX_RANDOM_BYTES = 65_536


class LimitExceeded(BaseException):
    """Raised from a signal handler to abort running JS; a BaseException so that no
    `except Exception` between the handler and the eval can swallow it."""

    error_name = "LimitExceeded"


class CPULimitExceeded(LimitExceeded):
    error_name = "CPULimitError"


class WallLimitExceeded(LimitExceeded):
    error_name = "TimeoutError"


class _Armed:
    """Whether a JS eval is running; signals that arrive outside one are ignored."""

    on = False


def _on_sigprof(signum: int, frame: object) -> None:
    if _Armed.on:
        _Armed.on = False  # at most one raise per eval, even if it lands in its `finally`
        raise CPULimitExceeded()


def _on_sigalrm(signum: int, frame: object) -> None:
    if _Armed.on:
        _Armed.on = False
        raise WallLimitExceeded()


def install_limit_handlers() -> None:
    """Install the SIGPROF / SIGALRM handlers (main thread of a runner process only)."""
    signal.signal(signal.SIGPROF, _on_sigprof)
    signal.signal(signal.SIGALRM, _on_sigalrm)


@cache
def prelude_source() -> str:
    """All prelude/*.js files, in name order, inside one strict function scope."""
    folder = importlib.resources.files("segfuncd.runner") / "prelude"
    parts = [
        f"// ---- {entry.name}\n{entry.read_text(encoding='utf-8')}"
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".js")
    ]
    return '(function () {\n"use strict";\n' + "\n".join(parts) + "\n})();\n"


def lodash_path() -> Path:
    """Where the `js.lodash` package keeps the real lodash.min.js."""
    # find_spec, not import: importing js.lodash drags in fanstatic and webob
    spec = importlib.util.find_spec("js.lodash")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the js.lodash package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "js" / "lodash.min.js"


@cache
def lodash_source() -> str:
    """The text of the real lodash.min.js."""
    return lodash_path().read_text(encoding="utf-8")


def _bind_source() -> str:
    pairs = ", ".join(f'{n}: typeof {n} === "function" ? {n} : undefined' for n in HANDLER_NAMES)
    return f"__segfuncd.bind({{{pairs}}})"


_BIND = _bind_source()


class _Host:
    """What dukpy's native layer calls back into; the only door out of the context."""

    def __init__(self, token: str) -> None:
        self._ctx = _dukpy.create_context()
        self._token = token

    def _check_exported_function_exists(self, name: bytes) -> bool:
        return name == b"h"

    def _call_python(self, name: bytes, json_args: bytes) -> bytes:
        try:
            args = json.loads(json_args)
            if name != b"h" or not isinstance(args, list) or len(args) < 2:
                return b"null"
            if not isinstance(args[0], str) or not hmac.compare_digest(args[0], self._token):
                return b"null"
            return json.dumps(_host_call(args[1], args[2:])).encode()
        except Exception:  # noqa: BLE001 - any input from JS must yield an answer, not a crash
            return b"null"


def _latin1(v: Any) -> bytes:
    if not isinstance(v, str):
        raise TypeError("expected a string")
    return v.encode("latin-1")


def _host_call(fn: Any, args: list[Any]) -> Any:
    """The allow-list: pure functions of their arguments, no I/O, bounded output."""
    if fn == "hash" and len(args) == 2 and args[0] in _HASHES:
        return hashlib.new(args[0], _latin1(args[1])).hexdigest()
    if fn == "hmac" and len(args) == 3 and args[0] in _HASHES:
        return hmac.new(_latin1(args[1]), _latin1(args[2]), args[0]).hexdigest()
    if fn == "x" and args:  # host-backed built-ins: crypto, jsonwebtoken, AWS (runner/builtins/)
        from . import builtins

        return builtins.call(args[0], args[1:])
    if fn == "uuid":
        return str(uuid.uuid4())
    if fn == "random" and len(args) == 1 and isinstance(args[0], int) and 0 <= args[0] <= MAX_RANDOM_BYTES:
        return os.urandom(args[0]).hex()
    return None


@dataclass(frozen=True, slots=True)
class LoadFailure(Exception):
    """The plugin's source did not compile or its top-level code threw."""

    message: str
    line: int | None


@dataclass(frozen=True, slots=True)
class SliceOutput:
    """What one slice produced: outboxes not seen before, and triggers still queued."""

    outboxes: list[dict[str, Any]]
    queued: int
    interrupted: str | None  # error name charged to the running invocation, if any


class Sandbox:
    """One QuickJS context for one plugin version."""

    def __init__(self, *, cpu_s: float = 2.0, wall_s: float = 10.0) -> None:
        self._host = _Host(secrets.token_hex(16))
        self._cpu_s = cpu_s
        self._wall_s = wall_s
        self._seq = 0
        self._ack = 0
        self._blame: tuple[str, str] | None = None
        self._eval(prelude_source(), {"token": self._host._token, "lodash": lodash_source()}, PRELUDE_NAME)
        self.handlers: tuple[str, ...] = ()

    def _eval(self, code: str, kwargs: dict[str, Any], name: str) -> Any:
        """Evaluate with both limit timers armed; LimitExceeded propagates."""
        raw = self._eval_raw(code.encode("utf-8"), json.dumps(kwargs).encode("utf-8"), name, self._cpu_s)
        return None if raw is None else json.loads(raw)

    def _eval_raw(self, code: bytes, kwargs: bytes, name: str, cpu_s: float) -> bytes | None:
        # A signal that lands just after eval_string returned still raises (once) here;
        # run_slice treats it as an interrupt, and the dispatcher re-sends the outboxes
        # Python has not acknowledged, so the slice's work is not lost.
        signal.setitimer(signal.ITIMER_PROF, cpu_s)
        signal.setitimer(signal.ITIMER_REAL, self._wall_s)
        _Armed.on = True
        try:
            result: bytes | None = _dukpy.eval_string(self._host, code, kwargs, False, name)
            return result
        finally:
            _Armed.on = False
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.setitimer(signal.ITIMER_REAL, 0)

    def load(self, source: str, filename: str) -> tuple[str, ...]:
        """Run the plugin's top-level code; return its handler names (LoadFailure if none)."""
        try:
            self._eval(source, {}, filename)
        except LimitExceeded as exc:
            raise LoadFailure(f"{exc.error_name}: top-level code exceeded a limit", None) from None
        except _dukpy.JSRuntimeError as exc:
            message, line = parse_js_error(str(exc), filename)
            raise LoadFailure(message, line) from None
        handlers = tuple(self._eval(_BIND, {}, "<bind>"))
        if not handlers:
            raise LoadFailure("no handler defined (expected e.g. onTrack, track or onBatch)", None)
        self.handlers = handlers
        return handlers

    def run_slice(self, triggers: list[dict[str, Any]]) -> SliceOutput:
        """Feed triggers to the dispatcher; on an interrupt, charge the running invocation."""
        self._seq += 1
        seq = self._seq
        blame = self._blame
        self._blame = None
        call = f"__segfuncd.slice({seq},{self._ack}"
        call += f",{json.dumps(blame[0])},{json.dumps(blame[1])})" if blame else ")"
        kwargs = json.dumps({"t": triggers}).encode("utf-8")
        # a batch of starts may legitimately use a little more than one invocation's budget
        try:
            raw = self._eval_raw(call.encode(), kwargs, "<slice>", self._cpu_s + 0.05)
        except LimitExceeded as exc:
            self._blame = (exc.error_name, self._limit_message(exc))
            return SliceOutput([], 1, exc.error_name)
        except _dukpy.JSRuntimeError as exc:
            # only our own dispatcher runs at the top of a slice; a failure here means the
            # user shadowed or broke it, which only hurts this version
            raise LoadFailure(f"the runtime of this function broke: {exc}", None) from None
        got: dict[str, Any] = json.loads(raw) if raw is not None else {"u": [], "q": 0}
        fresh = [o for o in got["u"] if o["s"] > self._ack]
        if fresh:
            self._ack = fresh[-1]["s"]
        return SliceOutput(fresh, int(got["q"]), None)

    def _limit_message(self, exc: LimitExceeded) -> str:
        if isinstance(exc, CPULimitExceeded):
            return f"the function used more than {round(self._cpu_s * 1000)} ms of CPU"
        return f"the function ran longer than {round(self._wall_s * 1000)} ms"


_USER_FRAME = re.compile(r"^\s*at (?:<eval> \()?<dukpy>:(\d+):\d+\)?\s*$")


def parse_js_error(text: str, filename: str = "") -> tuple[str, int | None]:
    """Split dukpy's error text into its first line and the line number in the user's file.

    dukpy names every script `<dukpy>`; the plugin is evaluated alone (nothing prepended),
    so its frames are `at <dukpy>:L:C` (syntax errors) or `at <eval> (<dukpy>:L:C)`
    (top-level code), and L is already the plugin's own line number.
    """
    lines = text.strip().splitlines()
    message = lines[0] if lines else text
    for frame in lines[1:]:
        m = _USER_FRAME.match(frame)
        if m:
            return message, int(m.group(1))
    return message, None
