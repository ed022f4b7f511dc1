"""JS stacks mapped to the plugin file's own lines: `at onTrack (teams.js:7:17)`. Pure.

QuickJS (dukpy) names every script `<dukpy>`, the plugin's and the runtime prelude's
alike. The plugin is evaluated alone, so its frames' line numbers already are the file's
own; what must go are the runtime's frames. Rules, innermost frame first:
* frames from the runtime's dispatcher (RUNTIME_FRAMES, in prelude/00_core.js) and
  everything below them are dropped: the handler was called from there;
* a frame whose line is beyond the plugin's last line cannot be the plugin's (a prelude
  helper such as fetch or lodash) and is dropped too.
A prelude helper frame whose line happens to fall inside the plugin's length is kept:
that is the limit of what the stack text tells apart.
"""

from __future__ import annotations

import dataclasses
import re

from .outcomes import InvocationResult

RUNTIME_FRAMES = frozenset({"start", "apply", "pump", "slice"})
_FRAME = re.compile(r"^\s*at (?:(?P<fn>[^\s(]+) \()?<dukpy>:(?P<line>\d+):(?P<col>\d+)\)?\s*$")


def plugin_frames(stack: str, *, filename: str, lines: int) -> list[str]:
    """The plugin's frames of `stack`, as `at NAME (FILE:LINE:COL)`, innermost first."""
    out = []
    for raw in stack.splitlines():
        m = _FRAME.match(raw)
        if m is None:
            continue
        fn = m.group("fn")
        if fn in RUNTIME_FRAMES or fn == "<eval>":
            break
        line = int(m.group("line"))
        if line > lines:
            continue
        where = f"{filename}:{line}:{m.group('col')}"
        out.append(f"at {fn} ({where})" if fn and fn != "<anonymous>" else f"at {where}")
    return out


def map_stack(stack: str, *, filename: str, source: str) -> str:
    """`stack` with only the plugin's frames, named by its file; the original when none are found."""
    frames = plugin_frames(stack, filename=filename, lines=source.count("\n") + 1)
    return "\n".join(f"    {f}" for f in frames) if frames else stack


def first_location(stack: str | None, *, filename: str, source: str) -> str | None:
    """`FILE:LINE:COL` of the innermost plugin frame, for one-line error messages."""
    if not stack:
        return None
    frames = plugin_frames(stack, filename=filename, lines=source.count("\n") + 1)
    if not frames:
        return None
    top = frames[0]
    return top[top.find("(") + 1 : -1] if top.endswith(")") else top.removeprefix("at ")


def located(result: InvocationResult, *, filename: str, source: str) -> InvocationResult:
    """`result` with its error message ending in `(at FILE:LINE:COL)` and its stack mapped, when it threw."""
    if result.error_name is None or not result.stack:
        return result
    where = first_location(result.stack, filename=filename, source=source)
    message = result.error_message or ""
    if where and where not in message:
        message = f"{message} (at {where})" if message else f"at {where}"
    return dataclasses.replace(
        result, error_message=message, stack=map_stack(result.stack, filename=filename, source=source)
    )
