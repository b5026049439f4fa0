"""Schema snapshot history in a SQL registry (the `schema_snapshots` table).

It lives in the registry, next to the records, because acceptance is shared state: a
breaking change accepted from a laptop must not be reported again by the cron job. Mixed
into SqlRegistry, so SQLite, PostgreSQL and the state store of API registries all have it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from reconciler.backends.base import DEFAULT_LOCK_TIMEOUT_S, SchemaSnapshot
from reconciler.backends.sql.migrations import SCHEMA_SNAPSHOTS_VERSION
from reconciler.backends.sql.rows import as_time


class _SqlParts(Protocol):
    """What the mixin uses of sql.SqlRegistry, the class it is mixed into."""

    def _transaction(self, timeout: float = ...) -> AbstractContextManager[Any]: ...
    def _read(self, sql: str, params: Sequence[Any] = ...) -> list[tuple[Any, ...]]: ...
    def _sql(self, sql: str) -> str: ...
    def _json(self, value: Any) -> Any: ...
    def _unjson(self, value: Any) -> Any: ...
    def _schema_version(self) -> int: ...


_COLUMNS = (
    "s.name_key, s.seq, s.name, s.observed_at, s.hash, s.columns, s.accepted_at, s.accepted_by"
)


class SnapshotsMixin:
    """`last_snapshots` and `record_snapshots` of the Registry interface, for SQL registries.

    `registry` is '' for the database's own sources; a state store keeps those of each API
    registry it serves under that registry's key (`remote/state_store.py`).
    """

    def last_snapshots(
        self: _SqlParts, names: Iterable[str], *, accepted: bool = False, registry: str = ""
    ) -> dict[str, SchemaSnapshot]:
        wanted = {name.casefold() for name in names}
        if not wanted or not _has_table(self):
            return {}
        latest = _latest(self, accepted=accepted, registry=registry)
        return {key: snapshot for key, (_, snapshot) in latest.items() if key in wanted}

    def record_snapshots(
        self: _SqlParts,
        snapshots: Sequence[SchemaSnapshot],
        timeout: float = DEFAULT_LOCK_TIMEOUT_S,
        *,
        registry: str = "",
    ) -> int:
        if not snapshots:
            return 0
        added = 0
        with self._transaction(timeout) as cur:
            # Read the newest rows inside the lock: a concurrent run may have just added one.
            latest = _latest(self, accepted=False, registry=registry)
            for snapshot in snapshots:
                key = snapshot.name.casefold()
                seq, newest = latest.get(key, (0, None))
                if newest is not None and newest.hash == snapshot.hash:
                    if snapshot.accepted and not newest.accepted:
                        cur.execute(
                            self._sql(
                                "UPDATE schema_snapshots SET accepted_at = ?, accepted_by = ? "
                                "WHERE registry = ? AND name_key = ? AND seq = ?"
                            ),
                            (snapshot.accepted_at, snapshot.accepted_by, registry, key, seq),
                        )
                        added += 1  # an acceptance recorded: `schema --accept` counts it
                    continue
                cur.execute(
                    self._sql(
                        "INSERT INTO schema_snapshots (registry, name_key, seq, name, "
                        "observed_at, hash, columns, accepted_at, accepted_by) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    ),
                    (
                        registry,
                        key,
                        seq + 1,
                        snapshot.name,
                        snapshot.observed_at,
                        snapshot.hash,
                        self._json(list(snapshot.columns)),
                        snapshot.accepted_at,
                        snapshot.accepted_by,
                    ),
                )
                latest[key] = (seq + 1, snapshot)
                added += 1
        return added


def _has_table(registry: _SqlParts) -> bool:
    """False for a registry created by an older reconciler and opened read-only (not
    migrated to the table's current shape)."""
    return registry._schema_version() >= SCHEMA_SNAPSHOTS_VERSION


def _latest(
    store: _SqlParts, *, accepted: bool, registry: str
) -> dict[str, tuple[int, SchemaSnapshot]]:
    """Every source's newest row (or newest accepted row) of `registry`, with its seq, in
    one query."""
    where = "AND accepted_at IS NOT NULL " if accepted else ""
    rows = store._read(
        f"SELECT {_COLUMNS} FROM schema_snapshots s JOIN (SELECT name_key, MAX(seq) AS seq "
        f"FROM schema_snapshots WHERE registry = ? {where}GROUP BY name_key) m "
        "ON m.name_key = s.name_key AND m.seq = s.seq WHERE s.registry = ?",
        (registry, registry),
    )
    return {str(r[0]): (int(r[1]), _snapshot(store, r)) for r in rows}


def _snapshot(registry: _SqlParts, row: tuple[Any, ...]) -> SchemaSnapshot:
    return SchemaSnapshot(
        name=row[2],
        observed_at=as_time(row[3]),
        hash=row[4],
        columns=tuple(registry._unjson(row[5])),
        accepted_at=as_time(row[6]) if row[6] is not None else None,
        accepted_by=row[7],
    )
