"""What the SQL backends share: the table layout, versioned migrations, batched writes.

Each dialect supplies its connection, parameter style, JSON encoding and column types; the
statements and the order of writes live here once, so SQLite and PostgreSQL behave alike.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..errors import RegistryError, StaleRecordError
from ..models import Record
from .base import NewRecord, RecordDelete, RecordUpdate, RunEntry, Writes

# Columns of `sources`, in the order every SELECT returns them.
SOURCE_COLUMNS = (
    "id, name, source_type, connection, description, tags, registered_by, registered_at, "
    "status, managed_by, version, last_applied"
)
RUN_COLUMNS = (
    "id, owner, actor, started_at, finished_at, created, updated, deleted, outcome, message"
)


def migrations(types: dict[str, str]) -> list[list[str]]:
    """Versioned migrations; entry N brings the schema to version N+1. Append only."""
    t = types
    return [
        [
            f"""CREATE TABLE sources (
                id {t["uuid"]} PRIMARY KEY,
                name TEXT NOT NULL,
                source_type TEXT NOT NULL,
                connection {t["json"]} NOT NULL,
                description TEXT NOT NULL DEFAULT '',
                tags {t["json"]} NOT NULL,
                registered_by TEXT NOT NULL,
                registered_at {t["time"]} NOT NULL,
                status TEXT NOT NULL DEFAULT 'active',
                managed_by TEXT,
                version INTEGER NOT NULL DEFAULT 1,
                last_applied {t["json"]},
                updated_at {t["time"]} NOT NULL
            )""",
            "CREATE UNIQUE INDEX sources_name_key ON sources (lower(name))",
            "CREATE INDEX sources_managed_by ON sources (managed_by)",
            f"""CREATE TABLE runs (
                id {t["uuid"]} PRIMARY KEY,
                owner TEXT NOT NULL,
                actor TEXT NOT NULL,
                started_at {t["time"]} NOT NULL,
                finished_at {t["time"]},
                created INTEGER NOT NULL DEFAULT 0,
                updated INTEGER NOT NULL DEFAULT 0,
                deleted INTEGER NOT NULL DEFAULT 0,
                outcome TEXT NOT NULL,
                message TEXT NOT NULL DEFAULT ''
            )""",
        ],
    ]


class SqlRegistry(ABC):
    """A registry in SQL tables; subclasses provide the dialect."""

    display_url: str
    types: ClassVar[dict[str, str]]

    # -- dialect hooks -------------------------------------------------------------------
    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Any]:
        """A write transaction holding the registry's write lock; yields a cursor."""

    @abstractmethod
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _initialised(self) -> bool: ...

    @abstractmethod
    def _sql(self, sql: str) -> str:
        """Statements are written with `?` placeholders; a dialect may rewrite them."""

    @abstractmethod
    def _json(self, value: Any) -> Any: ...

    def _unjson(self, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value

    def _is_unique_violation(self, exc: Exception) -> bool:
        return False

    # -- the Registry interface ----------------------------------------------------------
    def init(self) -> int:
        steps = migrations(self.types)
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
            return len(steps) - current

    def list_records(self) -> list[Record]:
        if not self._initialised():
            return []
        rows = self._read(f"SELECT {SOURCE_COLUMNS} FROM sources ORDER BY lower(name)")
        return [self._record(row) for row in rows]

    def apply(self, writes: Writes, run: RunEntry) -> None:
        now = _now()
        with self._transaction() as cur:
            if writes.creates:
                self._insert(cur, writes.creates, run.actor, now)
            if writes.updates:
                cur.executemany(
                    self._sql(
                        "UPDATE sources SET name = ?, source_type = ?, connection = ?, "
                        "description = ?, tags = ?, managed_by = ?, last_applied = ?, "
                        "updated_at = ?, version = version + 1 WHERE id = ? AND version = ?"
                    ),
                    [
                        (*self._values(u.record)[1:], now, u.record.id, u.expected_version)
                        for u in writes.updates
                    ],
                )
                self._check_count(cur, writes.updates)
            if writes.deletes:
                cur.executemany(
                    self._sql("DELETE FROM sources WHERE id = ? AND version = ?"),
                    [(d.id, d.expected_version) for d in writes.deletes],
                )
                self._check_count(cur, writes.deletes)
            run.finished_at = _now()
            run.outcome = "success"
            self._insert_run(cur, run)

    def record_run(self, run: RunEntry) -> None:
        with self._transaction() as cur:
            self._insert_run(cur, run)

    def list_runs(self, limit: int = 20) -> list[RunEntry]:
        if not self._initialised():
            return []
        rows = self._read(
            self._sql(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY started_at DESC LIMIT ?"), (limit,)
        )
        return [
            RunEntry(
                id=str(r[0]),
                owner=r[1],
                actor=r[2],
                started_at=_time(r[3]),
                finished_at=_time(r[4]) if r[4] else None,
                created=r[5],
                updated=r[6],
                deleted=r[7],
                outcome=r[8],
                message=r[9],
            )
            for r in rows
        ]

    # -- helpers -------------------------------------------------------------------------
    def _insert(self, cur: Any, creates: list[NewRecord], actor: str, now: datetime) -> None:
        try:
            cur.executemany(
                self._sql(
                    "INSERT INTO sources (id, name, source_type, connection, description, tags, "
                    "managed_by, last_applied, registered_by, registered_at, updated_at, status, "
                    "version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', 1)"
                ),
                [(*self._values(r), actor, now, now) for r in creates],
            )
        except Exception as exc:
            if self._is_unique_violation(exc):
                raise RegistryError(
                    "a source with one of these names was registered concurrently; "
                    "nothing was written, run again to see the new plan"
                ) from None
            raise

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
        )

    def _check_count(self, cur: Any, expected: Sequence[RecordUpdate | RecordDelete]) -> None:
        if cur.rowcount != len(expected):
            # Leaving the `with` by exception rolls everything back.
            names = ", ".join(sorted(_name(e) for e in expected)[:5])
            raise StaleRecordError(
                "the registry changed since it was read (a record's version moved); "
                f"nothing was written. Affected among: {names}. Run again to see the new plan."
            )

    def _insert_run(self, cur: Any, run: RunEntry) -> None:
        cur.execute(
            self._sql(f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            (
                run.id,
                run.owner,
                run.actor,
                run.started_at,
                run.finished_at,
                run.created,
                run.updated,
                run.deleted,
                run.outcome,
                run.message,
            ),
        )

    def _record(self, row: tuple[Any, ...]) -> Record:
        return Record(
            id=str(row[0]),
            name=row[1],
            source_type=row[2],
            connection=self._unjson(row[3]),
            description=row[4],
            tags=tuple(self._unjson(row[5])),
            registered_by=row[6],
            registered_at=_time(row[7]),
            status=row[8],
            managed_by=row[9],
            version=row[10],
            last_applied=self._unjson(row[11]) if row[11] is not None else None,
        )


def _name(entry: RecordUpdate | RecordDelete) -> str:
    return entry.record.name if isinstance(entry, RecordUpdate) else entry.name


def _now() -> datetime:
    return datetime.now(UTC)


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
