"""The production registry store: PostgreSQL through psycopg 3.

Writers serialise on transaction-level advisory locks, so CI and cron runs never interleave
and a killed run releases the lock with its connection. An apply locks its owner only (and
the registry in shared mode): two teams reconciling their own sources into one registry do
not wait for each other. Their rows are disjoint (every write names the owner it expects)
and a name both create at once is refused by the unique index on lower(name), so
correctness never depends on the lock. Migrations and other writes lock the whole registry.
"""

from __future__ import annotations

import hashlib
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

LOCK_KEY = 0x7265636F6E63  # "reconc": the registry-wide lock (shared by applies)
_OWNER_CLASS = 0x7265636F  # "reco": with a hash of the owner, the two-key lock of one owner
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

    def __init__(self, url: str, *, writable: bool, lock_owner: str | None = None) -> None:
        self._url = url
        self.display_url = redact_url(url)
        for secret in (*_passwords(url), os.environ.get("PGPASSWORD")):
            if secret:
                REDACTOR.add(secret)  # a driver message may echo it, in any form
        self.writable = writable
        self._conn: psycopg.Connection[Any] | None = None
        self._lock_owner = lock_owner
        self._scoped = False  # inside locked(): lock the owner, not the registry

    @contextmanager
    def locked(self, timeout: float = 60.0) -> Iterator[None]:
        """The owner's lock (with lock_owner), the registry's otherwise."""
        self._scoped = self._lock_owner is not None and self._cur is None
        try:
            with super().locked(timeout):
                yield
        finally:
            self._scoped = False

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
        owner = _owner_key(self._lock_owner) if self._scoped and self._lock_owner else None
        while True:
            if owner is None:
                cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,))
            else:  # the registry in shared mode (a migration waits), then this owner
                cur.execute(
                    "SELECT pg_try_advisory_xact_lock_shared(%s) "
                    "AND pg_try_advisory_xact_lock(%s, %s)",
                    (LOCK_KEY, _OWNER_CLASS, owner),
                )
            if cur.fetchone()[0]:
                return
            waited = time.monotonic() - started
            if waited >= timeout:
                raise LockTimeout(self._busy_message(cur, timeout, owner))
            time.sleep(min(_POLL_S, max(timeout - waited, 0.0)))

    def _busy_message(self, cur: Any, timeout: float, owner: int | None = None) -> str:
        registry = ((LOCK_KEY >> 32) & 0xFFFFFFFF, LOCK_KEY & 0xFFFFFFFF, 1)
        # Waiting for an owner's lock: its holder, or a registry-wide writer (exclusive).
        mine = (_OWNER_CLASS, owner & 0xFFFFFFFF, 2) if owner is not None else registry
        cur.execute(
            "SELECT a.application_name, a.pid, a.xact_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid() "
            "AND ((l.classid, l.objid, l.objsubid) = (%s, %s, %s) "
            "OR ((l.classid, l.objid, l.objsubid) = (%s, %s, %s) AND l.mode = 'ExclusiveLock')) "
            "ORDER BY l.objsubid DESC LIMIT 1",
            (*mine, *registry),
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

    def _insert_rows(
        self,
        cur: Any,
        table: str,
        columns: str,
        rows: Sequence[tuple[Any, ...]],
        tail: str = "",
        types: tuple[str, ...] = (),
    ) -> None:
        """In bulk: COPY (one stream instead of a statement per row: 10,000 creates take a
        second less), or an upsert of whole columns as arrays (no temporary table, which
        a locked-down role may not be allowed to create)."""
        if not tail:
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        arrays = ", ".join(f"%s::{kind}[]" for kind in types)
        cur.execute(
            f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({arrays}) {tail}",
            [list(column) for column in zip(*rows, strict=True)],
        )

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


def _owner_key(owner: str) -> int:
    """A signed 32-bit key for an owner's advisory lock (a collision only serialises two)."""
    return int.from_bytes(hashlib.sha256(owner.encode()).digest()[:4], "big", signed=True)


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
    """libpq URLs; of the options, the run-log retention and the lock owner apply."""
    registry = PostgresRegistry(url, writable=writable, lock_owner=options.lock_owner)
    registry.keep_runs = options.keep_runs
    return registry
