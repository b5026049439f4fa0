"""What the SQL backends share: the table layout, versioned migrations, batched writes.

Each dialect supplies its connection, parameter style, JSON encoding and column types; the
statements and the order of writes live here once, so SQLite and PostgreSQL behave alike.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

from reconciler import progress
from reconciler.backends.base import (
    DEFAULT_LOCK_TIMEOUT_S,
    ConnectOptions,
    NewRecord,
    RecordDelete,
    RecordReplace,
    RecordUpdate,
    Registry,
    RunEntry,
    SnapshotStore,
    Writes,
    finished,
)
from reconciler.backends.sql.content_digests import ContentDigestsMixin
from reconciler.backends.sql.migrations import migrations
from reconciler.backends.sql.rows import SOURCE_COLUMNS, as_time, decode, loads, unreadable_record
from reconciler.backends.sql.run_log import RunLogMixin, insert_run
from reconciler.backends.sql.snapshots import SnapshotsMixin
from reconciler.errors import RegistryError, StaleRecordError
from reconciler.interning import shared
from reconciler.models import Record

RecordChange = RecordUpdate | RecordReplace | RecordDelete

# Every update and delete names the row by id, the version it was planned from and the
# owner it must have: a row that moved, or belongs to someone else, is not touched.
_THIS_ROW = "id = ? AND version = ? AND managed_by IS NOT DISTINCT FROM ?"


class SqlRegistry(SnapshotsMixin, RunLogMixin, ContentDigestsMixin, Registry, SnapshotStore, ABC):
    """A registry in SQL tables; subclasses provide the dialect."""

    display_url: str
    updates_in_place: bool = True
    keep_runs: int = ConnectOptions().keep_runs
    types: ClassVar[dict[str, str]]
    _cur: Any = None  # the cursor of the open write transaction, while one is open

    # -- dialect hooks -------------------------------------------------------------------
    @abstractmethod
    def _begin(self, timeout: float) -> AbstractContextManager[Any]:
        """Open a write transaction holding the registry's write lock; yield its cursor.

        Commits when the block ends, rolls back on any exception.
        """

    @abstractmethod
    def _read_outside(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """A read outside any write transaction (may find no registry at all)."""

    @abstractmethod
    def _initialised(self) -> bool: ...

    @abstractmethod
    def _sql(self, sql: str) -> str:
        """Statements are written with `?` placeholders; a dialect may rewrite them."""

    @abstractmethod
    def _json(self, value: Any) -> Any: ...

    def _unjson(self, value: Any) -> Any:
        if isinstance(value, str | bytes):
            return shared(loads(value)) if _share else loads(value)
        return shared(value) if _share else value  # decoded by the driver (JSONB)

    def _is_unique_violation(self, exc: Exception) -> bool:
        return False

    @contextmanager
    def _transaction(self, timeout: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[Any]:
        """Reentrant: writes inside `locked()` join its transaction."""
        if self._cur is not None:
            yield self._cur
            return
        with self._begin(timeout) as cur:
            self._cur = cur
            try:
                yield cur
            finally:
                self._cur = None

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self._cur is not None:
            self._cur.execute(self._sql(sql), params)
            rows: list[tuple[Any, ...]] = self._cur.fetchall()
            return rows
        return self._read_outside(self._sql(sql), params)

    # -- the public SQL API: what the state store of API registries uses ----------------
    def initialised(self) -> bool:
        """Whether the registry's tables exist (reads of an uninitialised one find nothing)."""
        return self._initialised()

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of a query written with `?` placeholders; joins an open transaction."""
        return self._read(sql, params)

    @contextmanager
    def transaction(self, timeout: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[Statements]:
        """A write transaction under the write lock (joining the one `locked()` holds)."""
        with self._transaction(timeout) as cur:
            yield Statements(self, cur)

    def to_json(self, value: Any) -> Any:
        """A value as this dialect stores a JSON column."""
        return self._json(value)

    def from_json(self, value: Any) -> Any:
        """A JSON column's value, decoded."""
        return self._unjson(value)

    # -- the Registry interface ----------------------------------------------------------
    @contextmanager
    def locked(self, timeout: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[None]:
        with self._transaction(timeout):
            yield

    def exists(self) -> bool:
        return self._initialised()

    def init(self) -> int:
        steps = migrations(self.types)
        if self._schema_version() == len(steps):
            return 0  # up to date: no need to wait for the write lock
        with self._transaction() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                f"(version INTEGER PRIMARY KEY, applied_at {self.types['time']} NOT NULL)"
            )
            cur.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            current = int(cur.fetchone()[0])
            if current > len(steps):
                raise RegistryError(
                    f"registry schema version {current} is newer than this reconciler "
                    f"supports ({len(steps)}); upgrade reconciler"
                )
            for version in range(current + 1, len(steps) + 1):
                for statement in steps[version - 1]:
                    cur.execute(statement)
                cur.execute(
                    self._sql("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"),
                    (version, _now()),
                )
            cur.execute(
                self._sql(
                    "INSERT INTO registry_meta (key, value) VALUES ('fingerprint_key', ?) "
                    "ON CONFLICT (key) DO NOTHING"
                ),
                (secrets.token_hex(32),),
            )
            return len(steps) - current

    def _schema_version(self) -> int:
        if not self._initialised():
            return 0
        return int(self._read("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")[0][0])

    def fingerprint_key(self) -> bytes | None:
        if not self._initialised():
            return None
        rows = self._read("SELECT value FROM registry_meta WHERE key = 'fingerprint_key'")
        return bytes.fromhex(rows[0][0]) if rows else None

    def known(self, owner: str) -> dict[str, str]:
        if not self._initialised():
            return {}
        rows = self._read(
            "SELECT name_key, record_id FROM applied_sources WHERE owner = ?", (owner,)
        )
        return {r[0]: str(r[1]) for r in rows}

    def applied_times(self) -> dict[str, datetime]:
        """By record id, when its owner last applied it (for `show`/`list`)."""
        if not self._initialised():
            return {}
        rows = self._read("SELECT record_id, applied_at FROM applied_sources")
        return {str(r[0]): as_time(r[1]) for r in rows}

    def list_records(self) -> list[Record]:
        if not self._initialised():
            return []
        global _share
        records: list[Record] = []
        try:
            for row in self._read_rows(f"SELECT {SOURCE_COLUMNS} FROM sources"):
                records.append(self._record(row))
                # A big registry: one copy of each key and short value, not one per record.
                _share = len(records) >= _SHARE_FROM
            return records
        finally:
            _share = False

    def _read_rows(self, sql: str) -> Iterator[tuple[Any, ...]]:
        """A read's rows one by one, each let go once used (a dialect may fetch in batches)."""
        rows = self._read(sql)
        for index, row in enumerate(rows):
            rows[index] = ()
            yield row

    def apply(self, writes: Writes, run: RunEntry) -> None:
        now = _now()
        with self._transaction() as cur:
            if writes.creates:
                self._insert(cur, writes.creates, run.actor, now)
                progress.advance(len(writes.creates))
            if writes.updates:
                cur.executemany(
                    self._sql(
                        "UPDATE sources SET name = ?, source_type = ?, connection = ?, "
                        "description = ?, tags = ?, managed_by = ?, last_applied = ?, "
                        "fingerprints = ?, source_digest = ?, secret_refs = ?, updated_at = ?, "
                        "version = version + 1, applied_version = version + 1 "
                        f"WHERE {_THIS_ROW}"
                    ),
                    [
                        (
                            *self._values(u.record)[1:],
                            now,
                            u.record.id,
                            u.expected_version,
                            u.expected_owner,
                        )
                        for u in writes.updates
                    ],
                )
                self._check_count(cur, writes.updates)
                progress.advance(len(writes.updates))
            if writes.replaces:
                # A new id under the same name: the old row goes first (names are unique).
                self._delete(cur, writes.replaces, [r.old_id for r in writes.replaces])
                self._insert(cur, [r.record for r in writes.replaces], run.actor, now)
                progress.advance(len(writes.replaces))
            if writes.deletes:
                self._delete(cur, writes.deletes, [d.id for d in writes.deletes])
                progress.advance(len(writes.deletes))
            self._remember(cur, writes, run.owner, now)
            insert_run(self, cur, finished(run, _now()))

    def _remember(self, cur: Any, writes: Writes, owner: str, now: datetime) -> None:
        applied = [
            *writes.creates,
            *(u.record for u in writes.updates),
            *(r.record for r in writes.replaces),
        ]
        # A renamed record: its old name is not one this owner applied (one key lookup each).
        renamed = [
            (owner, u.renamed_from.casefold(), u.record.id)
            for u in writes.updates
            if u.renamed_from is not None and u.renamed_from.casefold() != u.record.name.casefold()
        ]
        if renamed:
            cur.executemany(
                self._sql(
                    "DELETE FROM applied_sources WHERE owner = ? AND name_key = ? AND record_id = ?"
                ),
                renamed,
            )
        if applied:
            self._insert_rows(
                cur,
                "applied_sources",
                "owner, name_key, record_id, applied_at",
                [(owner, r.name.casefold(), r.id, now) for r in applied],
                "ON CONFLICT (owner, name_key) DO UPDATE SET "
                "record_id = excluded.record_id, applied_at = excluded.applied_at",
                ("TEXT", "TEXT", "TEXT", self.types["time"]),
            )
        if writes.deletes:
            cur.executemany(
                self._sql("DELETE FROM applied_sources WHERE owner = ? AND name_key = ?"),
                [(owner, d.name.casefold()) for d in writes.deletes],
            )

    # -- helpers -------------------------------------------------------------------------
    def _insert(self, cur: Any, creates: list[NewRecord], actor: str, now: datetime) -> None:
        try:
            self._insert_rows(
                cur,
                "sources",
                "id, name, source_type, connection, description, tags, managed_by, "
                "last_applied, fingerprints, source_digest, secret_refs, registered_by, "
                "registered_at, updated_at, status, version, applied_version",
                [(*self._values(r), actor, now, now, "active", 1, 1) for r in creates],
            )
        except Exception as exc:
            if self._is_unique_violation(exc):
                raise RegistryError(
                    "a source with one of these names was registered concurrently; "
                    "nothing was written, run again to see the new plan"
                ) from None
            raise

    def _insert_rows(
        self,
        cur: Any,
        table: str,
        columns: str,
        rows: Sequence[tuple[Any, ...]],
        tail: str = "",
        types: tuple[str, ...] = (),
    ) -> None:
        """INSERT INTO table (columns) VALUES each row, then `tail` (ON CONFLICT ...; then
        the columns' `types` are given). A dialect may send them in bulk."""
        marks = ", ".join("?" * len(rows[0])) if rows else ""
        cur.executemany(self._sql(f"INSERT INTO {table} ({columns}) VALUES ({marks}) {tail}"), rows)

    def _values(self, r: NewRecord) -> tuple[Any, ...]:
        return (
            r.id,
            r.name,
            r.source_type,
            self._json(r.connection),
            r.description,
            self._json(r.tags),
            r.managed_by,
            self._json(r.last_applied),
            self._json(r.fingerprints),
            r.digest,
            r.secret_refs,
        )

    def _delete(
        self, cur: Any, entries: Sequence[RecordReplace | RecordDelete], ids: list[str]
    ) -> None:
        """Delete each row by id, only at the version and owner it was planned from."""
        cur.executemany(
            self._sql(f"DELETE FROM sources WHERE {_THIS_ROW}"),
            [(i, e.expected_version, e.expected_owner) for i, e in zip(ids, entries, strict=True)],
        )
        self._check_count(cur, entries)

    def _locked_message(self, who: str, timeout: float) -> str:
        return (
            f"registry {self.display_url} is locked by {who}; gave up after {timeout:g} s "
            "(--lock-timeout). Nothing was written."
        )

    def _check_count(self, cur: Any, expected: Sequence[RecordChange]) -> None:
        if cur.rowcount != len(expected):
            # Leaving the `with` by exception rolls everything back.
            names = ", ".join(sorted(_name(e) for e in expected)[:5])
            raise StaleRecordError(
                "the registry changed since it was read (a record's version moved); "
                f"nothing was written. Affected among: {names}. Run again to see the new plan."
            )

    def _record(self, row: tuple[Any, ...]) -> Record:
        try:
            return decode(row, self._unjson)
        except Exception:  # written by another tool: listed as unreadable, never touched
            return unreadable_record(row, self._unjson)


class Statements:
    """The statements of one open write transaction, written with `?` placeholders."""

    def __init__(self, registry: SqlRegistry, cursor: Any) -> None:
        self._registry, self._cursor = registry, cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(self._registry._sql(sql), params)


# From this many records on, JSON keys and short strings are shared between records
# (sys.intern): 100,000 records then take 200 MB less (a fifth), for 5 % more time.
_SHARE_FROM = 20_000
_share = False


def _name(entry: RecordChange) -> str:
    return entry.name if isinstance(entry, RecordDelete) else entry.record.name


def _now() -> datetime:
    return datetime.now(UTC)
