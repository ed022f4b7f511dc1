"""The console's access token: one file in the state directory, mode 0600.

The daemon creates it on first start (`load_or_create_token`) and keeps it across restarts,
so a bookmarked URL keeps working; deleting the file and restarting rotates it. `segfuncctl
console` reads the same file (`read_token`) and prints the URL with it (`console_url`).
Whoever can read the state directory can therefore use the console, which is exactly who
can read the database anyway.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import quote

from ..config import parse_address
from ..errors import SegfuncdError

TOKEN_FILE = "console.token"
TOKEN_BYTES = 32


def token_path(state_dir: Path) -> Path:
    return Path(state_dir) / TOKEN_FILE


def load_or_create_token(state_dir: Path) -> str:
    """The token in `state_dir`, created (0600, written atomically) when missing or empty."""
    path = token_path(state_dir)
    try:
        token = path.read_text(encoding="ascii").strip()
        if token:
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)  # someone loosened it: the token is a password
            return token
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        raise SegfuncdError(f"cannot read the console token {path}: {exc}") from exc
    token = secrets.token_urlsafe(TOKEN_BYTES)
    tmp = path.with_name(f".{TOKEN_FILE}.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(token + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise SegfuncdError(f"cannot write the console token {path}: {exc.strerror or exc}") from exc
    return token


def read_token(state_dir: Path) -> str:
    """The token the daemon wrote; SegfuncdError saying why when it cannot be read."""
    path = token_path(state_dir)
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise SegfuncdError(f"no console token at {path}: is segfuncd running with admin.console_listen set?") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SegfuncdError(f"cannot read the console token {path}: {exc}") from exc
    if not token:
        raise SegfuncdError(f"the console token file {path} is empty; restart segfuncd to create one")
    return token


def console_url(listen: str, token: str) -> str:
    """The URL a browser opens: `http://HOST:PORT/?token=...` (an unspecified host -> loopback)."""
    host, port = parse_address(listen)
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/?token={quote(token, safe='')}"
