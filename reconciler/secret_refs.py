"""Secret references (`${env:NAME}`, `${file:PATH}`): resolved only to write or to fingerprint.

Planning compares the reference strings and keyed fingerprints; a resolved value exists only
on its way into the registry and is never part of a plan, an output or an error message.
Every value resolved in this process is also registered with the redactor, the last line of
defence that scrubs any text before it is shown.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import SecretResolutionError
from reconciler.redaction import REDACTOR

REFERENCE = re.compile(r"^\$\{(env|file):([^}]+)\}$")
UNKNOWN = "(unknown until apply)"
# `${env:NAME:allow-empty}`: the one way to say that an empty value is meant. Without it an
# empty value is an error like an unset variable (an undefined CI secret expands to "").
ALLOW_EMPTY = ":allow-empty"
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
# At most this many sources are named on a missing variable's line.
_MAX_NAMED = 5


class Unresolved(SecretResolutionError):
    """One reference that cannot be resolved: `problem` is about the variable or file alone,
    so failures can be grouped by it."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def is_reference(value: Any) -> bool:
    # The prefix test first: this runs for every connection value of every source in a plan.
    return isinstance(value, str) and value[:2] == "${" and REFERENCE.match(value) is not None


def resolve(value: Any, *, source: str, field: str, env: Mapping[str, str] | None = None) -> Any:
    """The value a reference points at; other values pass through unchanged."""
    if not isinstance(value, str):
        return value
    match = REFERENCE.match(value)
    if match is None:
        return value
    kind, target = match.groups()
    where = f"source '{source}' {field}"
    allow_empty = target.endswith(ALLOW_EMPTY)
    target = target.removesuffix(ALLOW_EMPTY)
    if kind == "env":
        env = os.environ if env is None else env
        if VARIABLE.fullmatch(target) is None:
            raise Unresolved(where, f"invalid variable name '{target}' in {value}")
        if target not in env:
            raise Unresolved(where, f"environment variable {target} is not set")
        resolved = env[target]
    else:
        try:
            resolved = read_secret_file(target)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            if isinstance(exc, UnicodeDecodeError):
                reason = "not readable as UTF-8 text"
            raise Unresolved(where, f"cannot read secret file {target}: {reason}") from None
    if not resolved and not allow_empty:
        what = f"environment variable {target}" if kind == "env" else f"secret file {target}"
        raise Unresolved(
            where, f"{what} is empty (write ${{{kind}:{target}{ALLOW_EMPTY}}} if that is meant)"
        )
    REDACTOR.add(resolved)
    return resolved


# A secret is a password, a token, a key: far below this. Anything bigger is a mistake.
MAX_SECRET_FILE = 64 * 1024


def read_secret_file(target: str) -> str:
    """A `${file:}` secret: a regular file of at most MAX_SECRET_FILE bytes, UTF-8, trailing
    newline stripped. Opened without blocking and checked before reading, so a FIFO, a
    device (`/dev/zero`, `/dev/stdin`) or a directory is a clear error, never a hang."""
    path = Path(target).expanduser()
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        data = b""
        while chunk := os.read(fd, MAX_SECRET_FILE + 1 - len(data)):
            data += chunk
            if len(data) > MAX_SECRET_FILE:
                raise ValueError(f"larger than {MAX_SECRET_FILE} bytes")
    finally:
        os.close(fd)
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")


def fingerprint(key: bytes, value: Any) -> str:
    """A keyed, one-way fingerprint: tells a rotated secret without storing or showing it."""
    return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass
class ResolvedSecrets:
    """Resolved reference values by casefolded source name and field path (None: unknown)."""

    values: dict[str, dict[str, str | None]] = field(default_factory=dict)

    def fingerprints(self, key: bytes | None) -> dict[str, dict[str, str | None]]:
        return {
            name: {
                path: (fingerprint(key, v) if key is not None and v is not None else None)
                for path, v in fields.items()
            }
            for name, fields in self.values.items()
        }

    def connection(self, name: str, connection: Mapping[str, Any]) -> dict[str, Any]:
        """The connection with every reference replaced by its resolved value."""
        resolved = self.values.get(name.casefold(), {})
        out = dict(connection)
        for key in out:
            path = f"connection.{key}"
            if path in resolved:
                value = resolved[path]
                if value is None:
                    raise SecretResolutionError(
                        f"source '{name}' {path}: {connection[key]} is unknown until apply"
                    )
                out[key] = value
        return out


def resolve_all(
    documents: Iterable[Mapping[str, Any]],
    *,
    strict: bool,
    env: Mapping[str, str] | None = None,
) -> ResolvedSecrets:
    """Resolve every reference of every document; unresolvable ones are errors when strict.

    All failures are collected, so a CI log names every missing variable at once: one line
    per variable (or file), with the sources that need it.
    """
    out = ResolvedSecrets()
    failures: dict[str, list[str]] = {}
    for doc in documents:
        fields: dict[str, str | None] = {}
        for key, value in (doc.get("connection") or {}).items():
            if not is_reference(value):
                continue
            path = f"connection.{key}"
            try:
                fields[path] = resolve(value, source=doc["name"], field=path, env=env)
            except Unresolved as exc:
                if strict:
                    failures.setdefault(exc.problem, []).append(exc.where)
                fields[path] = None
        if fields:
            out.values[str(doc["name"]).casefold()] = fields
    if failures:
        raise SecretResolutionError(_grouped(failures))
    return out


def _grouped(failures: Mapping[str, list[str]]) -> str:
    """One failure on one line; more as a heading and a line per variable (or file)."""
    count = sum(len(places) for places in failures.values())
    if count == 1:
        [(problem, [where])] = failures.items()
        return f"{where}: {problem}; nothing was written"
    lines = [f"{count} secret reference(s) cannot be resolved; nothing was written:"]
    for problem, places in sorted(failures.items()):
        places = sorted(places)
        named = ", ".join(places[:_MAX_NAMED])
        more = f" and {len(places) - _MAX_NAMED} more" if len(places) > _MAX_NAMED else ""
        lines.append(f"  {problem} (needed by {named}{more})")
    return "\n".join(lines)
