"""Setting values kept outside the TOML: `{ env = "N" }`, `{ file = "P" }`, `{ credential = "N" }`.

A top-level value of `[functions.X] settings` that is a table with exactly one of these
keys is a reference, resolved when the config is loaded (and again on every reload):

    env         the daemon's environment variable NAME
    file        the file at PATH (relative paths: to the config file's folder)
    credential  $CREDENTIALS_DIRECTORY/NAME, as systemd's LoadCredential= and
                LoadCredentialEncrypted= provide (decrypted, readable only by the service)

One trailing newline of a file or credential is dropped (`echo KEY > file` writes one).
A resolved setting is secret: its name joins `secret_settings`, so redact.py replaces its
value in every log line, error, request record and `deliveries show`. A missing variable,
file or credential is a ConfigError naming the setting's key.

What does not live here: the redaction itself (redact.py), the TOML parsing (config.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

KINDS = ("env", "file", "credential")
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
MAX_SECRET_BYTES = 64 * 1024  # a secret bigger than this is a mistake (a wrong path)


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretRef:
    """Where one setting's value comes from."""

    kind: str  # one of KINDS
    name: str  # variable name, file path or credential name


def as_ref(value: Any, *, source: str, key: str) -> SecretRef | None:
    """The SecretRef a setting value spells, None for a plain value; ConfigError for a malformed one."""
    if not isinstance(value, dict) or not value or not set(value) & set(KINDS):
        return None
    if len(value) != 1:
        raise ConfigError(
            f"a secret reference has exactly one of {', '.join(KINDS)}, got keys {sorted(value)}",
            path=source,
            key=key,
        )
    ((kind, name),) = value.items()
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{kind}: expected a non-empty string, got {name!r}", path=source, key=f"{key}.{kind}")
    if kind == "credential" and (name in (".", "..") or "/" in name):
        raise ConfigError(f"credential: a name, not a path: {name!r}", path=source, key=f"{key}.{kind}")
    return SecretRef(kind=kind, name=name)


def resolve(
    ref: SecretRef,
    *,
    source: str,
    key: str,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The secret's value; ConfigError naming `key` when it cannot be read."""
    env = os.environ if environ is None else environ
    if ref.kind == "env":
        value = env.get(ref.name)
        if value is None:
            raise ConfigError(f"environment variable {ref.name} is not set", path=source, key=key)
        if not value:
            raise ConfigError(f"environment variable {ref.name} is empty", path=source, key=key)
        return value
    if ref.kind == "file":
        path = Path(ref.name).expanduser()
        return _read(path if path.is_absolute() else base_dir / path, what="file", source=source, key=key)
    folder = env.get(CREDENTIALS_ENV)
    if not folder:
        raise ConfigError(
            f"credential {ref.name!r}: ${CREDENTIALS_ENV} is not set "
            "(systemd sets it for a unit with LoadCredential= or LoadCredentialEncrypted=)",
            path=source,
            key=key,
        )
    return _read(Path(folder) / ref.name, what=f"credential {ref.name!r}", source=source, key=key)


def _read(path: Path, *, what: str, source: str, key: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror or exc}", path=source, key=key) from exc
    if len(data) > MAX_SECRET_BYTES:
        raise ConfigError(f"{what}: {path} is larger than {MAX_SECRET_BYTES} bytes", path=source, key=key)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what}: {path} is not UTF-8 text", path=source, key=key) from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text:
        raise ConfigError(f"{what}: {path} is empty", path=source, key=key)
    return text


def resolve_settings(
    settings: Mapping[str, Any],
    *,
    source: str,
    key: str,
    base_dir: Path,
    read: bool = True,
    environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """(settings with references replaced by their values, names of the settings that were references).

    With `read=False` references are checked for shape only and left as they are
    (segfuncctl reads the config for the socket path and has no access to the secrets).
    """
    out = dict(settings)
    secret: list[str] = []
    for name, value in settings.items():
        ref = as_ref(value, source=source, key=f"{key}.{name}")
        if ref is None:
            continue
        secret.append(name)
        if read:
            out[name] = resolve(ref, source=source, key=f"{key}.{name}", base_dir=base_dir, environ=environ)
    return out, tuple(secret)
