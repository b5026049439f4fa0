"""What a registry reached over an API cannot hold, kept in a SQL database of our own.

The Sources API has no field for the owner marker, the last-applied document or the
secret fingerprints, so the reconciler keeps them in a state store: the embedded SQLite
by default, PostgreSQL when CI and cron run on different machines (they must share it,
like Terraform's remote state). It is an ordinary SQL registry database (same migrations,
lock, fingerprint key and run log); the rows about remote records live in
`remote_records`, keyed by registry URL and record id.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler.backends.base import ConnectOptions, NewRecord, RunEntry
from reconciler.backends.sql import SQL_SCHEMES, open_sql
from reconciler.errors import RegistryError
from reconciler.redaction import redact_url

STATE_SCHEMES = SQL_SCHEMES


@dataclass(frozen=True)
class RemoteRecordState:
    """What this reconciler applied to one remote record."""

    owner: str
    last_applied: dict[str, Any]
    fingerprints: dict[str, str]


class StateStore:
    """The state of one remote registry (`registry`, a URL without credentials) in `store`.

    Uses the SQL registry's public statements API (`read`, `transaction`, `to_json`,
    `from_json`), so its writes join the transaction of `locked()` and commit or roll back
    with it.
    """

    def __init__(self, url: str, registry: str, *, writable: bool, keep_runs: int = 1000) -> None:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme not in STATE_SCHEMES:
            raise RegistryError(
                f"invalid state store URL '{redact_url(url)}' (expected sqlite:///PATH or "
                "postgresql://...)"
            )
        self.store = open_sql(url, writable=writable, options=ConnectOptions(keep_runs=keep_runs))
        self.registry = registry

    def init(self) -> int:
        return self.store.init()

    def locked(self, timeout: float) -> AbstractContextManager[None]:
        return self.store.locked(timeout)

    def fingerprint_key(self) -> bytes | None:
        return self.store.fingerprint_key()

    def records(self) -> dict[str, RemoteRecordState]:
        """By record id, every record this store knows an owner for."""
        if not self.store.initialised():
            return {}
        store = self.store
        rows = store.read(
            "SELECT record_id, owner, last_applied, fingerprints FROM remote_records "
            "WHERE registry = ?",
            (self.registry,),
        )
        return {
            r[0]: RemoteRecordState(r[1], store.from_json(r[2]), store.from_json(r[3]))
            for r in rows
        }

    def get(self, record_id: str) -> RemoteRecordState | None:
        """What this store knows of one record; None when nobody applied it here. (A write
        checks one record: reading them all for each would make an apply quadratic.)"""
        if not self.store.initialised():
            return None
        store = self.store
        rows = store.read(
            "SELECT owner, last_applied, fingerprints FROM remote_records "
            "WHERE registry = ? AND record_id = ?",
            (self.registry, record_id),
        )
        if not rows:
            return None
        owner, last_applied, fingerprints = rows[0]
        return RemoteRecordState(
            owner, store.from_json(last_applied), store.from_json(fingerprints)
        )

    def known(self, owner: str) -> dict[str, str]:
        """Casefolded names `owner` applied and did not delete, with their record ids."""
        if not self.store.initialised():
            return {}
        rows = self.store.read(
            "SELECT name_key, record_id FROM remote_records WHERE registry = ? AND owner = ?",
            (self.registry, owner),
        )
        return {r[0]: r[1] for r in rows}

    def remember(self, record_id: str, record: NewRecord) -> None:
        """`record` was registered as `record_id`; an older row for its name is history."""
        store, now = self.store, datetime.now(UTC)
        with store.transaction() as tx:
            tx.execute(
                "DELETE FROM remote_records WHERE registry = ? AND owner = ? AND name_key = ?",
                (self.registry, record.managed_by, record.name.casefold()),
            )
            tx.execute(
                "INSERT INTO remote_records (registry, record_id, owner, name_key, "
                "last_applied, fingerprints, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    self.registry,
                    record_id,
                    record.managed_by,
                    record.name.casefold(),
                    store.to_json(record.last_applied),
                    store.to_json(record.fingerprints),
                    now,
                ),
            )

    def forget(self, record_id: str) -> None:
        """The record was deleted by this reconciler: nothing to remember about it."""
        with self.store.transaction() as tx:
            tx.execute(
                "DELETE FROM remote_records WHERE registry = ? AND record_id = ?",
                (self.registry, record_id),
            )

    def record_run(self, run: RunEntry) -> None:
        run.registry = self.registry
        self.store.record_run(run)

    def list_runs(self, limit: int) -> list[RunEntry]:
        return self.store.list_runs(limit, registry=self.registry)

    def close(self) -> None:
        self.store.close()
