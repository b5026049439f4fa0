"""The production registry store: PostgreSQL through psycopg 3.

Writers serialise on a transaction-level advisory lock, so CI and cron runs never interleave
and a killed run releases the lock with its connection.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from reconciler.actor import holder
from reconciler.backends.base import ConnectOptions
from reconciler.backends.sql.shared import SqlRegistry
from reconciler.errors import LockTimeout, RegistryError
from reconciler.redaction import REDACTOR, is_sensitive_name, redact_url, unencoded_userinfo

LOCK_KEY = 0x7265636F6E63  # "reconc": the one advisory lock every writer takes
_CONNECT_TIMEOUT_S = 10
_POLL_S = 0.1
_FETCH = 2000  # rows per fetch when reading many


class PostgresRegistry(SqlRegistry):
    types: ClassVar[dict[str, str]] = {
        "uuid": "UUID",
        "json": "JSONB",
        "time": "TIMESTAMPTZ",
        "dialect": "postgresql",
    }

    def __init__(self, url: str, *, writable: bool) -> None:
        self._url = url
        self.display_url = redact_url(url)
        for secret in (*_passwords(url), os.environ.get("PGPASSWORD")):
            if secret:
                REDACTOR.add(secret)  # a driver message may echo it, in any form
        self.writable = writable
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            if unencoded_userinfo(self._url) or not _parses(self._url):
                # libpq would cut the password elsewhere and quote the rest as a host name
                raise RegistryError(
                    f"cannot connect to registry {self.display_url}: invalid connection URL "
                    "(characters such as @ : / in a user name or password must be "
                    "percent-encoded)"
                )
            try:
                self._conn = psycopg.connect(
                    self._url,
                    connect_timeout=_CONNECT_TIMEOUT_S,
                    # Shown to whoever waits for the lock: who holds it.
                    application_name=f"reconcile {holder()}"[:63],
                )
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
        return REDACTOR.scrub(text.replace(self._url, self.display_url))

    @contextmanager
    def _begin(self, timeout: float) -> Iterator[Any]:
        if not self.writable:
            raise RegistryError(f"registry {self.display_url} was opened read-only")
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cur:
                self._lock(cur, timeout)
                yield cur
        except psycopg.Error as exc:
            raise RegistryError(f"registry {self.display_url}: {self._scrub(exc)}") from None

    def _lock(self, cur: Any, timeout: float) -> None:
        started = time.monotonic()
        while True:
            cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,))
            if cur.fetchone()[0]:
                return
            waited = time.monotonic() - started
            if waited >= timeout:
                raise LockTimeout(self._busy_message(cur, timeout))
            time.sleep(min(_POLL_S, max(timeout - waited, 0.0)))

    def _busy_message(self, cur: Any, timeout: float) -> str:
        cur.execute(
            "SELECT a.application_name, a.pid, a.xact_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = %s AND l.objid = %s",
            ((LOCK_KEY >> 32) & 0xFFFFFFFF, LOCK_KEY & 0xFFFFFFFF),
        )
        row = cur.fetchone()
        if row:
            name = (row[0] or "").removeprefix("reconcile ") or f"backend pid {row[1]}"
            since = row[2].isoformat(timespec="seconds") if row[2] else "an unknown time"
            who = f"{name} since {since}"
        else:
            who = "another process"
        return self._locked_message(who, timeout)

    def _read_outside(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        except psycopg.Error as exc:
            raise RegistryError(
                f"cannot read registry {self.display_url}: {self._scrub(exc)}"
            ) from None

    def _read_rows(self, sql: str) -> Iterator[tuple[Any, ...]]:
        """Rows streamed from the server a batch at a time (a server-side cursor), so a big
        registry is never in memory three times: raw rows, decoded rows and records."""
        if self._cur is not None:  # inside the write transaction
            with self._cur.connection.cursor(name="reconciler_rows") as cur:
                cur.execute(self._sql(sql))
                while batch := cur.fetchmany(_FETCH):
                    yield from batch
            return
        conn = self._connection()
        try:
            with conn.transaction(), conn.cursor(name="reconciler_rows") as cur:
                cur.execute(self._sql(sql))
                while batch := cur.fetchmany(_FETCH):
                    yield from batch
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


def _parses(url: str) -> bool:
    try:
        conninfo_to_dict(url)
    except psycopg.Error:
        return False
    return True


def _passwords(url: str) -> list[str]:
    """The secrets libpq reads from a connection string (password, sslpassword)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        return []
    return [str(v) for k, v in params.items() if v and is_sensitive_name(k)]


def open_postgres(url: str, *, writable: bool, options: ConnectOptions) -> PostgresRegistry:
    """libpq URLs; of the options, only the run-log retention applies."""
    registry = PostgresRegistry(url, writable=writable)
    registry.keep_runs = options.keep_runs
    return registry
