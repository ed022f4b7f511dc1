"""sd_notify: READY=1, STOPPING=1, WATCHDOG=1 to $NOTIFY_SOCKET, in a few lines.

No dependency on libsystemd: the protocol is one datagram on a Unix socket. Without
$NOTIFY_SOCKET (not under systemd) every call is a no-op.
"""

from __future__ import annotations

import os
import socket


def notify(state: str, *, env: dict[str, str] | None = None) -> bool:
    """Send `state` (e.g. "READY=1") to systemd; True when a socket was there to send to."""
    addr = (env if env is not None else os.environ).get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):  # abstract namespace
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.connect(addr)
            sock.sendall(state.encode())
        except OSError:
            return False
    return True


def watchdog_interval_s(*, env: dict[str, str] | None = None) -> float | None:
    """Half of $WATCHDOG_USEC in seconds (systemd's advice), or None when not enabled."""
    e = env if env is not None else os.environ
    usec = e.get("WATCHDOG_USEC")
    pid = e.get("WATCHDOG_PID")
    if not usec or not usec.isdigit():
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 2_000_000
