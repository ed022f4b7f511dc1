"""Listening sockets: TCP from "host:port", Unix with a mode, stale socket files replaced safely."""

from __future__ import annotations

import os
import socket as _stdsocket
import stat
from pathlib import Path

import trio

from ..config import parse_address
from ..errors import SegfuncdError


async def open_tcp_listeners_for(address: str, *, backlog: int = 1024) -> list[trio.SocketListener]:
    """Listeners for "host:port" ("" -> none); SegfuncdError names the address on failure."""
    if not address:
        return []
    try:
        host, port = parse_address(address)
    except ValueError as exc:
        raise SegfuncdError(f"cannot listen on {address!r}: {exc}") from exc
    try:
        return await trio.open_tcp_listeners(port, host=host, backlog=backlog)
    except OSError as exc:
        raise SegfuncdError(f"cannot listen on {address}: {exc.strerror or exc}") from exc


async def open_unix_listener(path: Path, *, mode: int, backlog: int = 1024) -> trio.SocketListener:
    """Listen on a Unix socket at `path` with permissions `mode`.

    An existing socket file is replaced only when nothing answers on it (a stale file left by
    a crash); a live one, or a file that is not a socket, is refused with SegfuncdError. The
    socket is bound under a temporary name, chmod-ed, then renamed into place, so it is
    never reachable with the wrong permissions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        st = path.lstat()
    except FileNotFoundError:
        st = None
    if st is not None:
        if not stat.S_ISSOCK(st.st_mode):
            raise SegfuncdError(f"{path}: exists and is not a socket; refusing to replace it")
        if await _unix_socket_answers(path):
            raise SegfuncdError(f"{path}: another process is listening on this socket")
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    sock = trio.socket.socket(_stdsocket.AF_UNIX, _stdsocket.SOCK_STREAM)
    try:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        await sock.bind(str(tmp))
        os.chmod(tmp, mode)
        sock.listen(backlog)
        os.replace(tmp, path)
    except OSError as exc:
        sock.close()
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise SegfuncdError(f"cannot listen on {path}: {exc.strerror or exc}") from exc
    listener = trio.SocketListener(sock)
    # getsockname() reports the temporary name; remember where clients find it.
    listener.unix_path = str(path)  # type: ignore[attr-defined]
    return listener


async def _unix_socket_answers(path: Path) -> bool:
    probe = trio.socket.socket(_stdsocket.AF_UNIX, _stdsocket.SOCK_STREAM)
    try:
        with trio.move_on_after(2):
            await probe.connect(str(path))
            return True
        return True  # connect hung: something is there (a full backlog), do not delete it
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except BlockingIOError:
        return True  # a full backlog (EAGAIN): a live server that is busy
    finally:
        probe.close()
