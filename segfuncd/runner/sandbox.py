"""One QuickJS context with an allow-listed host bridge, and the limits that interrupt it.

What lives here: building a context from the prelude files (plus real lodash), loading a
plugin's source, running one *slice* (a batch of triggers through the JS dispatcher), and
the signal timers that stop runaway JavaScript. What does not: I/O, trio, the protocol.

Sandbox rules (dukpy's stock interpreter is not a sandbox):
  * the context comes from `dukpy._dukpy.create_context()`, never `JSInterpreter`, so there
    is no `require`, no module loader reading disk files and no `process.env`;
  * dukpy re-installs the `call_python` and `dukpy` globals on every eval; the prelude traps
    both with non-configurable accessors, keeps the native in a closure and never lets user
    code read either;
  * the host answers exactly one exported name, and only with the context's secret token;
    every host function is safe with any arguments and never raises (bad input -> null);
  * CPU and wall-clock limits are Python exceptions raised from SIGPROF / SIGALRM handlers,
    which dukpy's interrupt check turns into an aborted eval (uncatchable in JS). A limit
    that lands inside a host call is deferred until JS runs again (see _Armed). After any
    interrupt the runner throws the context away: its state is not trusted any more.
    Signals run only in the main thread, so JS must run in the runner's main thread;
  * what a slice answers is parsed by answers.py (typed records, ContextViolation).
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
import time
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import FrameType
from typing import Any

import dukpy._dukpy as _dukpy  # type: ignore[import-untyped]  # the bare native layer

from ..spec import HANDLER_NAMES
from .answers import ContextViolation, LogEntry, SliceAnswer, parse_answer, parse_answer_text
from .lodash_guards import guarded
from .triggers import Trigger, encode_slice

PRELUDE_NAME = "<segfuncd-prelude>"
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
    """Whether a JS eval is running, and which limit fired during it.

    dukpy runs Python signal handlers from two places: its interrupt check inside JS (a
    raise there aborts the eval, uncatchably) and the host-call path (a raise there becomes
    a JS error user code can catch, and the eval goes on). The handler cannot tell which,
    so once a limit fired it keeps raising every millisecond until the eval is over, and
    every host call returns at once meanwhile: the first raise that lands in JS ends it.
    It raises only while a `_run_js` frame is on the stack; elsewhere (the eval's own
    bookkeeping, the trio loop) a late signal does nothing.
    """

    on = False
    fired: type[LimitExceeded] | None = None


def _in_js(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code is _RUN_CODE:
            return True
        frame = frame.f_back
    return False


def _on_limit(kind: type[LimitExceeded], frame: FrameType | None) -> None:
    if not _Armed.on or not _in_js(frame):
        return
    if _Armed.fired is None:
        _Armed.fired = kind
    signal.setitimer(signal.ITIMER_REAL, 0.001)  # again, until the eval is over
    raise _Armed.fired()


def _on_sigprof(signum: int, frame: FrameType | None) -> None:
    _on_limit(CPULimitExceeded, frame)


def _on_sigalrm(signum: int, frame: FrameType | None) -> None:
    _on_limit(WallLimitExceeded, frame)


def _run_js(host: Any, code: bytes, kwargs: bytes, name: str) -> bytes | None:
    """The only place JS runs; the limit handlers raise only below this frame."""
    result: bytes | None = _dukpy.eval_string(host, code, kwargs, False, name)
    return result


_RUN_CODE = _run_js.__code__


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
    """The text of the real lodash.min.js, with 4.17.21's prototype-pollution guards."""
    return guarded(lodash_path().read_text(encoding="utf-8"))


def _bind_source() -> str:
    pairs = ", ".join(f'{n}: typeof {n} === "function" ? {n} : undefined' for n in HANDLER_NAMES)
    return f"__segfuncd.bind({{{pairs}}})"


_BIND = _bind_source()


class _Host:
    """What dukpy's native layer calls back into; the only door out of the context."""

    def __init__(self, token: str) -> None:
        self._ctx = _dukpy.create_context()
        self._token = token
        self.salvaged: str | None = None  # the answer text of a slice a limit stopped

    def _check_exported_function_exists(self, name: bytes) -> bool:
        return name == b"h"

    def _call_python(self, name: bytes, json_args: bytes) -> bytes:
        if _Armed.fired is not None:
            raise _Armed.fired()  # a limit fired: host() in the prelude waits for the interrupt
        try:
            args = json.loads(json_args)
            if name != b"h" or not isinstance(args, list) or len(args) < 2:
                return b"null"
            if not isinstance(args[0], str) or not hmac.compare_digest(args[0], self._token):
                return b"null"
            if args[1] == "salvage" and len(args) == 3 and isinstance(args[2], str):
                self.salvaged = args[2]
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
    """What one slice produced.

    `answer` holds the outboxes not seen before (None when the slice did not complete);
    `interrupted` names the limit that stopped it (CPULimitError / TimeoutError /
    MemoryLimitError) and `logs` what the stopped slice had logged;
    `violation` says how the context broke the protocol. Either of the last two means the
    context must be thrown away. `cpu_s` is the CPU the slice used.
    """

    answer: SliceAnswer | None
    cpu_s: float
    interrupted: str | None = None
    message: str = ""
    logs: tuple[LogEntry, ...] = ()  # what an interrupted slice had logged
    violation: str | None = None


class Sandbox:
    """One QuickJS context for one plugin version."""

    def __init__(self, *, cpu_s: float = 2.0, wall_s: float = 10.0) -> None:
        self._host = _Host(secrets.token_hex(16))
        self._cpu_s = cpu_s
        self._wall_s = wall_s
        self._seq = 0
        self._ack = 0
        self._eval(prelude_source(), {"token": self._host._token, "lodash": lodash_source()}, PRELUDE_NAME)
        self.handlers: tuple[str, ...] = ()

    def _eval(self, code: str, kwargs: dict[str, Any], name: str) -> Any:
        """Evaluate with both limit timers armed; LimitExceeded propagates."""
        raw = self._eval_raw(code.encode("utf-8"), json.dumps(kwargs).encode("utf-8"), name, self._cpu_s)
        return None if raw is None else json.loads(raw)

    def _eval_raw(
        self, code: bytes, kwargs: bytes, name: str, cpu_s: float, wall_s: float | None = None
    ) -> bytes | None:
        """Run JS with both timers armed; a limit that fired raises LimitExceeded, even when
        JS caught it or it surfaced as another error (see _Armed)."""
        _Armed.fired = None
        signal.setitimer(signal.ITIMER_PROF, cpu_s)
        signal.setitimer(signal.ITIMER_REAL, self._wall_s if wall_s is None else wall_s)
        _Armed.on = True
        try:
            result = _run_js(self._host, code, kwargs, name)
        except BaseException:
            if _Armed.fired is None:
                raise
            result = None
        finally:
            _Armed.on = False
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.setitimer(signal.ITIMER_REAL, 0)
        if _Armed.fired is not None:
            raise _Armed.fired()
        return result

    def load(self, source: str, filename: str) -> tuple[str, ...]:
        """Run the plugin's top-level code; return its handler names (LoadFailure if none)."""
        try:
            # `;null` on a line of its own: the completion value of the script is never
            # serialized (a trailing function expression is not JSON; a toJSON is user code)
            self._eval(sloppy(source) + "\n;null", {}, filename)
            found = self._eval(_BIND, {}, "<bind>")
        except LimitExceeded as exc:
            raise LoadFailure(f"{exc.error_name}: top-level code exceeded a limit", None) from None
        except _dukpy.JSRuntimeError as exc:
            message, line = parse_js_error(str(exc), filename)
            raise LoadFailure(message, line) from None
        except (MemoryError, SystemError, ValueError) as exc:
            raise LoadFailure(f"the function's top-level code broke its runtime: {type(exc).__name__}", None) from None
        if found == "!oom":  # caught by the top-level code, seen by the prelude (prelude/00_core.js)
            raise LoadFailure("MemoryLimitError: the function's top-level code ran out of memory", None)
        names = found.split(",") if isinstance(found, str) and found else []
        if not isinstance(found, str) or not all(h in HANDLER_NAMES for h in names):
            raise LoadFailure("the function's top-level code broke its runtime (handler list)", None)
        handlers = tuple(names)
        if not handlers:
            raise LoadFailure("no handler defined (expected e.g. onTrack, track or onBatch)", None)
        self.handlers = handlers
        return handlers

    def run_slice(self, triggers: list[Trigger], *, cpu_s: float | None = None) -> SliceOutput:
        """Feed triggers to the dispatcher and parse what it answers (never raises)."""
        self._seq += 1
        call = f"__segfuncd.slice({self._seq},{self._ack})".encode()
        budget = self._cpu_s + 0.05 if cpu_s is None else cpu_s
        t0 = time.thread_time()
        try:
            kwargs = encode_slice(triggers)
            raw = self._eval_raw(call, kwargs, "<slice>", budget)
        except LimitExceeded as exc:
            used = time.thread_time() - t0
            return SliceOutput(None, used, exc.error_name, self._limit_message(exc), logs=self._salvage())
        except MemoryError:
            used = time.thread_time() - t0
            return SliceOutput(None, used, "MemoryLimitError", "the function ran out of memory", logs=self._salvage())
        except _dukpy.JSRuntimeError as exc:
            used = time.thread_time() - t0
            text = str(exc)
            if "out of memory" in text:
                return SliceOutput(
                    None, used, "MemoryLimitError", "the function ran out of memory", logs=self._salvage()
                )
            # only our own dispatcher runs at the top of a slice: the user broke it
            return SliceOutput(None, used, violation=f"its runtime broke: {text.splitlines()[0][:200]}")
        except (SystemError, ValueError, RecursionError) as exc:
            return SliceOutput(None, time.thread_time() - t0, violation=f"its runtime broke: {type(exc).__name__}")
        used = time.thread_time() - t0
        try:
            got = parse_answer(raw)
        except ContextViolation as exc:
            return SliceOutput(None, used, violation=str(exc))
        except MemoryError:
            return SliceOutput(None, used, "MemoryLimitError", "the function's answer did not fit in memory")
        fresh = tuple(o for o in got.outboxes if o.seq > self._ack)
        if fresh:
            self._ack = max(o.seq for o in fresh)
        return SliceOutput(SliceAnswer(fresh, got.queued, got.out_of_memory), used)

    def _salvage(self) -> tuple[LogEntry, ...]:
        """After an interrupt: the log lines the lost slice wrote (the context is discarded,
        but what a function logged before it hit a limit is what its author needs)."""
        self._host.salvaged = None
        try:
            self._eval_raw(b"__segfuncd.salvage()", b"{}", "<salvage>", 0.05, 0.2)
        except (LimitExceeded, Exception):  # noqa: BLE001 - best effort: the answer came before any job ran
            pass
        text, self._host.salvaged = self._host.salvaged, None
        if text is None:
            return ()
        try:
            answer = parse_answer_text(text)
        except (ContextViolation, MemoryError):
            return ()
        return tuple(line for o in answer.outboxes if o.seq > self._ack for line in o.logs)

    def _limit_message(self, exc: LimitExceeded) -> str:
        if isinstance(exc, CPULimitExceeded):
            return f"the function used more than {round(self._cpu_s * 1000)} ms of CPU"
        return f"the function ran longer than {round(self._wall_s * 1000)} ms"


def sloppy(source: str) -> str:
    """The plugin's text, never in strict mode as a whole: Segment's wrapper puts the file inside
    its own code, so a `'use strict'` on top is no directive there. An empty statement in front
    ends the directive prologue here the same way, on the same line (a `#!` line stays first).
    A `'use strict'` inside a function still makes that function strict, as in Node."""
    if source.startswith("#!"):
        first, nl, rest = source.partition("\n")
        return first + nl + ";" + rest
    return ";" + source


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
