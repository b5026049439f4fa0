"""What a registry reached over an API cannot hold, kept in a SQL database of our own.

The Sources API has no field for the owner marker, the last-applied document or the
secret fingerprints, so the reconciler keeps them in a state store: the embedded SQLite
by default, PostgreSQL when CI and cron run on different machines (they must share it,
like Terraform's remote state). It is an ordinary SQL registry database (same migrations,
lock, fingerprint key and run log); the rows about remote records live in
`remote_records`, keyed by registry URL and record id.

An apply holds the store's apply lock (`apply_lock.py`) and commits each write as it is
made. Before each create it commits an intent (a row whose record id is `intent:` and a
uuid, holding what is about to be sent): if the run dies before it records the new id, or
the answer leaves it unknown whether the object was created (a timeout, a 502), the next
run finds the object by name and content and takes it as created (`shell.py`).
"""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from reconciler.backends.base import ConnectOptions, NewRecord, RunEntry
from reconciler.backends.remote.apply_lock import apply_lock
from reconciler.backends.sql import SQL_SCHEMES, open_sql
from reconciler.errors import RegistryError
from reconciler.redaction import redact_url

STATE_SCHEMES = SQL_SCHEMES
# The record id of an intent row: no remote id ever starts with it.
INTENT = "intent:"
# The registry_meta key that says a registry's state lives here (`declare`).
_DECLARED = "state-of:"
_PATTERN = INTENT + "%"  # a parameter: a literal % would be a placeholder to psycopg


@dataclass(frozen=True)
class RemoteRecordState:
    """What this reconciler applied to one remote record."""

    owner: str
    last_applied: dict[str, Any]
    fingerprints: dict[str, str]


@dataclass(frozen=True)
class Intent:
    """A create about to be sent (or sent, with no id recorded yet): what it holds."""

    name_key: str
    state: RemoteRecordState


class StateStore:
    """The state of one remote registry (`registry`, a URL without credentials) in `store`.

    Uses the SQL registry's public statements API (`read`, `transaction`, `to_json`,
    `from_json`), so its writes join the transaction of `locked()` and commit or roll back
    with it.
    """

    def __init__(self, url: str, registry: str, *, writable: bool, keep_runs: int = 1000) -> None:
        self.url = url
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
        """The apply lock; each write inside commits on its own (see apply_lock.py)."""
        return apply_lock(self.store, timeout)

    def fingerprint_key(self) -> bytes | None:
        return self.store.fingerprint_key()

    def records(self) -> dict[str, RemoteRecordState]:
        """By record id, every record this store knows an owner for."""
        if not self.store.initialised():
            return {}
        store = self.store
        rows = store.read(
            "SELECT record_id, owner, last_applied, fingerprints FROM remote_records "
            "WHERE registry = ? AND record_id NOT LIKE ?",
            (self.registry, _PATTERN),
        )
        return {
            r[0]: RemoteRecordState(r[1], store.from_json(r[2]), store.from_json(r[3]))
            for r in rows
        }

    def knows_registry(self) -> bool:
        """Whether this store has kept anything of this registry: a record or an intent, a
        run that was not refused, or `reconcile registry init` naming it (`declare`). A
        store that has not is blind to which of the registry's records are whose."""
        if not self.store.initialised():
            return False
        checks = (
            ("SELECT 1 FROM remote_records WHERE registry = ?", self.registry),
            ("SELECT 1 FROM runs WHERE registry = ? AND outcome <> 'failed'", self.registry),
            ("SELECT 1 FROM registry_meta WHERE key = ?", _DECLARED + self.registry),
        )
        return any(self.store.read(sql, (param,)) for sql, param in checks)

    def declare(self) -> None:
        """Make this store the state of this registry from now on (`registry init`)."""
        store = self.store
        if store.read("SELECT 1 FROM registry_meta WHERE key = ?", (_DECLARED + self.registry,)):
            return
        with store.transaction() as tx:
            tx.execute(
                "INSERT INTO registry_meta (key, value) VALUES (?, ?)",
                (_DECLARED + self.registry, datetime.now(UTC).isoformat()),
            )

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
            "SELECT name_key, record_id FROM remote_records WHERE registry = ? AND owner = ? "
            "AND record_id NOT LIKE ?",
            (self.registry, owner, _PATTERN),
        )
        return {r[0]: r[1] for r in rows}

    def applied_times(self) -> dict[str, datetime]:
        """By record id, when it was last applied to this registry (for `show`/`list`)."""
        if not self.store.initialised():
            return {}
        rows = self.store.read(
            "SELECT record_id, applied_at FROM remote_records WHERE registry = ?",
            (self.registry,),
        )
        return {str(r[0]): _moment(r[1]) for r in rows}

    def remember(self, record_id: str, record: NewRecord) -> None:
        """`record` was registered as `record_id`; an older row for its name is history."""
        state = RemoteRecordState(record.managed_by, record.last_applied, record.fingerprints)
        self._row(record_id, record.name.casefold(), state)

    def _row(self, record_id: str, name_key: str, state: RemoteRecordState) -> None:
        store, now = self.store, datetime.now(UTC)
        with store.transaction() as tx:
            tx.execute(
                "DELETE FROM remote_records WHERE registry = ? AND owner = ? AND name_key = ?",
                (self.registry, state.owner, name_key),
            )
            tx.execute(
                "INSERT INTO remote_records (registry, record_id, owner, name_key, "
                "last_applied, fingerprints, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    self.registry,
                    record_id,
                    state.owner,
                    name_key,
                    store.to_json(state.last_applied),
                    store.to_json(state.fingerprints),
                    now,
                ),
            )

    def intend(self, record: NewRecord) -> None:
        """Commit that `record` is about to be created (replacing an older intent for its
        name), before the call that creates it."""
        store, now = self.store, datetime.now(UTC)
        with store.transaction() as tx:
            tx.execute(
                "DELETE FROM remote_records WHERE registry = ? AND owner = ? AND name_key = ? "
                "AND record_id LIKE ?",
                (self.registry, record.managed_by, record.name.casefold(), _PATTERN),
            )
            tx.execute(
                "INSERT INTO remote_records (registry, record_id, owner, name_key, "
                "last_applied, fingerprints, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    self.registry,
                    f"{INTENT}{uuid.uuid4()}",
                    record.managed_by,
                    record.name.casefold(),
                    store.to_json(record.last_applied),
                    store.to_json(record.fingerprints),
                    now,
                ),
            )

    def intents(self) -> list[Intent]:
        """Every create begun and not recorded as done (nor as certainly failed)."""
        if not self.store.initialised():
            return []
        store = self.store
        rows = store.read(
            "SELECT name_key, owner, last_applied, fingerprints FROM remote_records "
            "WHERE registry = ? AND record_id LIKE ?",
            (self.registry, _PATTERN),
        )
        return [
            Intent(r[0], RemoteRecordState(r[1], store.from_json(r[2]), store.from_json(r[3])))
            for r in rows
        ]

    def drop_intent(self, record: NewRecord) -> None:
        """The create certainly failed (the server refused it): nothing to find later."""
        with self.store.transaction() as tx:
            tx.execute(
                "DELETE FROM remote_records WHERE registry = ? AND owner = ? AND name_key = ? "
                "AND record_id LIKE ?",
                (self.registry, record.managed_by, record.name.casefold(), _PATTERN),
            )

    def claim(self, record_id: str, intent: Intent) -> None:
        """The object an interrupted create left behind is `record_id`: record it as created
        (which also retires the intent, as `remember` does)."""
        self._row(record_id, intent.name_key, intent.state)

    def forget(self, record_id: str) -> None:
        """The record was deleted by this reconciler: nothing to remember about it."""
        with self.store.transaction() as tx:
            tx.execute(
                "DELETE FROM remote_records WHERE registry = ? AND record_id = ?",
                (self.registry, record_id),
            )

    def record_run(self, run: RunEntry) -> None:
        self.store.record_run(replace(run, registry=self.registry))

    def list_runs(self, limit: int) -> list[RunEntry]:
        return self.store.list_runs(limit, registry=self.registry)

    def close(self) -> None:
        self.store.close()


def _moment(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
