"""The production registry store: PostgreSQL through psycopg 3."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from ..errors import RegistryError
from . import redact_url
from .sql import SqlRegistry

# Serialises writers (migrations and applies) across processes, CI and cron alike.
_LOCK_KEY = 0x7265636F6E63  # "reconc"
_CONNECT_TIMEOUT_S = 10


class PostgresRegistry(SqlRegistry):
    types: ClassVar[dict[str, str]] = {"uuid": "UUID", "json": "JSONB", "time": "TIMESTAMPTZ"}

    def __init__(self, url: str, *, writable: bool) -> None:
        self._url = url
        self.display_url = redact_url(url)
        self.writable = writable
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            try:
                self._conn = psycopg.connect(self._url, connect_timeout=_CONNECT_TIMEOUT_S)
            except psycopg.Error as exc:
                raise RegistryError(
                    f"cannot connect to registry {self.display_url}: {self._scrub(exc)}"
                ) from None
            if not self.writable:
                self._conn.read_only = True
        return self._conn

    def _scrub(self, exc: BaseException) -> str:
        """Driver messages may echo the DSN; keep only its first line and no password."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        for secret in (_password(self._url), os.environ.get("PGPASSWORD")):
            if secret:
                text = text.replace(secret, "***")
        return text.replace(self._url, self.display_url)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        if not self.writable:
            raise RegistryError(f"registry {self.display_url} was opened read-only")
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                yield cur
        except psycopg.Error as exc:
            raise RegistryError(f"registry {self.display_url}: {self._scrub(exc)}") from None

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(self._sql(sql) if "?" in sql else sql, params)
                return cur.fetchall()
        except psycopg.Error as exc:
            raise RegistryError(
                f"cannot read registry {self.display_url}: {self._scrub(exc)}"
            ) from None

    def _initialised(self) -> bool:
        return bool(self._read("SELECT to_regclass('sources') IS NOT NULL")[0][0])

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _json(self, value: Any) -> Any:
        return Jsonb(value)

    def _is_unique_violation(self, exc: Exception) -> bool:
        return isinstance(exc, psycopg.errors.UniqueViolation)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _password(url: str) -> str | None:
    try:
        value = conninfo_to_dict(url).get("password")
    except psycopg.Error:
        return None
    return str(value) if value else None


def open_postgres(url: str, *, writable: bool) -> PostgresRegistry:
    return PostgresRegistry(url, writable=writable)
