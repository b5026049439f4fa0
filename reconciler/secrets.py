"""Secret references (`${env:NAME}`, `${file:PATH}`): found in manifests, resolved only to write.

Planning compares the reference strings; the resolved value exists only on its way into the
registry and is never part of a plan, an output or an error message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import SecretResolutionError

REFERENCE = re.compile(r"^\$\{(env|file):([^}]+)\}$")


def is_reference(value: Any) -> bool:
    return isinstance(value, str) and REFERENCE.match(value) is not None


def resolve(value: Any, *, source: str, field: str, env: Mapping[str, str] | None = None) -> Any:
    """The secret a reference points at; other values pass through unchanged."""
    if not isinstance(value, str):
        return value
    match = REFERENCE.match(value)
    if match is None:
        return value
    kind, target = match.groups()
    where = f"source '{source}' {field}"
    if kind == "env":
        env = os.environ if env is None else env
        if target not in env:
            raise SecretResolutionError(f"{where}: environment variable {target} is not set")
        return env[target]
    try:
        return Path(target).expanduser().read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not readable as UTF-8 text"
        raise SecretResolutionError(
            f"{where}: cannot read secret file {target}: {reason}"
        ) from None


def resolve_connection(
    connection: Mapping[str, Any], *, source: str, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    return {
        key: resolve(value, source=source, field=f"connection.{key}", env=env)
        for key, value in connection.items()
    }
