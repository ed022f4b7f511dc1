"""Reading a plugin file safely: only from inside plugins_dir, and only once it is complete.

* A symlink may point at another file inside plugins_dir, never outside it: a daemon
  running as root must not read `/etc/shadow` because someone could drop a link into
  plugins_dir. The refusal names the link and says why; it never shows the target's
  content (nothing is read). Only regular files are read (a FIFO would block the loader).
* A file written in place (an upload, `cat > plugins/x.js`) passes through half-written
  states that may well compile (a complete `onTrack`, `onIdentify` not yet written). The
  file is read only once it has not changed for `SETTLE_S` (size and mtime), and is
  re-checked after reading, so an event never meets half a file. A writer that pauses
  longer than SETTLE_S mid-file is not caught; saving by rename (what editors and
  `install` do) is always safe.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import trio

from .runner import PluginVersion

SETTLE_S = 0.25  # unchanged this long: complete
MAX_SETTLE_ROUNDS = 40  # a file still changing after ~10 s is read as it is; the next change reloads it
MAX_PLUGIN_BYTES = 5 * 1024 * 1024


class PluginFileError(Exception):
    """The file cannot be loaded; str() is the load error shown by status (no file content in it)."""


def read_plugin(plugins_dir: Path, path: Path) -> PluginVersion:
    """Read plugins_dir/NAME.js; PluginFileError for a link out of plugins_dir, a non-regular file, bad UTF-8."""
    base = plugins_dir.resolve()
    real = path.resolve(strict=True)  # FileNotFoundError when gone (or a dangling link)
    if real.parent != base and base not in real.parents:
        raise PluginFileError(f"{path}: is a symlink to a file outside {base}; refusing to load it")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise PluginFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PluginFileError(f"{path}: not a regular file; refusing to load it")
        if st.st_size > MAX_PLUGIN_BYTES:
            raise PluginFileError(f"{path}: {st.st_size} bytes; the limit is {MAX_PLUGIN_BYTES} bytes")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    finally:
        os.close(fd)
    try:
        source = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PluginFileError(f"{path}: not UTF-8 text (byte offset {exc.start})") from None
    return PluginVersion.from_source(path.stem, source, path=str(path))


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_size, st.st_mtime_ns)


async def read_settled(plugins_dir: Path, path: Path) -> PluginVersion:
    """`read_plugin` once the file stopped changing (see the module docstring)."""
    for _ in range(MAX_SETTLE_ROUNDS):
        before = _signature(path)
        if before is None:
            raise FileNotFoundError(path)
        age = time.time() - before[1] / 1e9
        if 0 <= age < SETTLE_S:
            await trio.sleep(SETTLE_S - age)
            if _signature(path) != before:
                continue
        version = await trio.to_thread.run_sync(read_plugin, plugins_dir, path)
        if _signature(path) == before:
            return version
    return await trio.to_thread.run_sync(read_plugin, plugins_dir, path)
