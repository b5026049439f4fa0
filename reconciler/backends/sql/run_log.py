"""The run log of a SQL registry (the `runs` table): who applied what, when, how it ended.

Mixed into SqlRegistry, like the snapshot history: SQLite, PostgreSQL and the state store of
API registries (one log per registry URL there) all keep it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from reconciler.backends.base import RunEntry
from reconciler.backends.sql.rows import as_time
from reconciler.redaction import REDACTOR

RUN_COLUMNS = (
    "id, owner, actor, started_at, finished_at, created, updated, deleted, outcome, message, "
    "replaced, registry"
)


class _SqlParts(Protocol):
    """What the mixin uses of sql.SqlRegistry, the class it is mixed into."""

    keep_runs: int

    def _transaction(self, timeout: float = ...) -> AbstractContextManager[Any]: ...
    def _read(self, sql: str, params: Sequence[Any] = ...) -> list[tuple[Any, ...]]: ...
    def _sql(self, sql: str) -> str: ...
    def _initialised(self) -> bool: ...


class RunLogMixin:
    """`record_run` and `list_runs` of the Registry interface, for SQL registries."""

    def record_run(self: _SqlParts, run: RunEntry) -> None:
        with self._transaction() as cur:
            insert_run(self, cur, run)

    def list_runs(self: _SqlParts, limit: int = 20, registry: str = "") -> list[RunEntry]:
        """The newest runs first; `registry` picks a remote registry's runs in a state store."""
        if not self._initialised():
            return []
        rows = self._read(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE registry = ? ORDER BY started_at DESC LIMIT ?",
            (registry, limit),
        )
        return [
            RunEntry(
                id=str(r[0]),
                owner=r[1],
                actor=r[2],
                started_at=as_time(r[3]),
                finished_at=as_time(r[4]) if r[4] else None,
                created=r[5],
                updated=r[6],
                deleted=r[7],
                outcome=r[8],
                message=r[9],
                replaced=r[10],
                registry=r[11],
            )
            for r in rows
        ]


def insert_run(registry: _SqlParts, cur: Any, run: RunEntry) -> None:
    """Log `run` in the transaction of `cur` (the one way into the run log)."""
    cur.execute(
        registry._sql(
            f"INSERT INTO runs ({RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
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
            # The one way into the run log: server and driver messages may echo a secret.
            REDACTOR.scrub(run.message),
            run.replaced,
            run.registry,
        ),
    )
    _prune_runs(registry, cur, run.registry)


def _prune_runs(db: _SqlParts, cur: Any, registry: str) -> None:
    """Keep the newest `keep_runs` runs (of this registry, in a shared state store), in the
    transaction that records a run: a cron job every minute does not grow the log forever."""
    if db.keep_runs <= 0:
        return
    cur.execute(
        db._sql(
            "DELETE FROM runs WHERE registry = ? AND started_at < (SELECT started_at FROM runs "
            "WHERE registry = ? ORDER BY started_at DESC LIMIT 1 OFFSET ?)"
        ),
        (registry, registry, db.keep_runs - 1),
    )
