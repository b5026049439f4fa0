"""The interface every registry backend implements, the capabilities some add, and the values
they exchange.

`Registry` is what every backend really does; a capability (`SnapshotStore`, `PlanReview`)
is a small Protocol of its own, which a backend declares by inheriting it (so mypy checks it)
and a caller asks for through a typed accessor (`snapshot_store`, `plan_review`), never by
probing attribute names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:  # pydantic is imported by the commands that read records, not by --help
    from reconciler.models import Plan, Record, Unreachable


@dataclass(frozen=True)
class NewRecord:
    """A record to register; `connection` holds resolved secrets and never leaves the backend."""

    id: str
    name: str
    source_type: str
    connection: dict[str, Any] = field(repr=False)
    description: str
    tags: list[str]
    managed_by: str
    last_applied: dict[str, Any]
    fingerprints: dict[str, str] = field(default_factory=dict)
    # What produced it (planning/fast_plan.py): the digest of its manifest document, and its
    # secret references with their fingerprints (JSON). None: the next plan reads it whole.
    digest: str | None = None
    secret_refs: str | None = None


@dataclass(frozen=True)
class RecordUpdate:
    record: NewRecord
    expected_version: int
    # The owner the row must have (None: unmanaged, being adopted); a SQL registry checks it
    # in the statement, so a write never touches another owner's row.
    expected_owner: str | None
    # The name the record had before this update (a rename through previous_names).
    renamed_from: str | None = None


@dataclass(frozen=True)
class RecordReplace:
    """Delete record `old_id`, then register `record` (a new id) in its place.

    For registries that cannot update in place (the Sources API has no update endpoint).
    """

    record: NewRecord
    old_id: str
    expected_version: int
    expected_owner: str | None


@dataclass(frozen=True)
class RecordDelete:
    id: str
    name: str
    expected_version: int
    expected_owner: str | None


@dataclass(frozen=True)
class Writes:
    creates: list[NewRecord] = field(default_factory=list)
    updates: list[RecordUpdate] = field(default_factory=list)
    replaces: list[RecordReplace] = field(default_factory=list)
    deletes: list[RecordDelete] = field(default_factory=list)


@dataclass(frozen=True)
class RunEntry:
    """One row of the run log: who applied what, when, and how it ended (a value: a backend
    records a finished copy, `dataclasses.replace(run, outcome=..., finished_at=...)`)."""

    id: str
    owner: str
    actor: str
    started_at: datetime
    finished_at: datetime | None = None
    created: int = 0
    updated: int = 0
    deleted: int = 0
    outcome: str = "running"
    message: str = ""
    replaced: int = 0
    # The remote registry this run was for, when the log lives in a state store ("" = the
    # database's own registry).
    registry: str = ""


def finished(run: RunEntry, at: datetime) -> RunEntry:
    """The run as a backend records it once its writes are committed: a run still
    "running" (nothing refused) succeeded."""
    outcome = "success" if run.outcome == "running" else run.outcome
    return replace(run, finished_at=at, outcome=outcome)


# How long a run waits for another run's write lock (--lock-timeout): the one default.
DEFAULT_LOCK_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ConnectOptions:
    """How to reach a registry beyond its URL; each backend uses what applies to it."""

    # Where a registry without fields for ownership and last-applied state (http) keeps them.
    state: str = "sqlite:///.reconciler/state.db"
    http_timeout: float = 10.0
    # Run-log retention: each recorded run prunes all but the newest N (0: keep every run).
    keep_runs: int = 1000
    # Whose applies `locked()` serialises: a registry that can lock per owner (PostgreSQL)
    # lets two owners apply at once; None is one lock for every writer.
    lock_owner: str | None = None


@dataclass(frozen=True)
class SchemaSnapshot:
    """One observation of a source's live columns, as the registry keeps it.

    `columns` are `{name, type, nullable, position}` mappings (what `schemachanges.compare`
    takes); `hash` identifies them, so an unchanged table adds no row. A snapshot with
    `accepted_at` is a baseline: later runs report changes relative to the newest one.
    """

    name: str
    columns: tuple[dict[str, Any], ...]
    hash: str
    observed_at: datetime
    accepted_at: datetime | None = None
    # Who accepted it: "auto" (first or non-breaking), "contract", or the actor of --accept.
    accepted_by: str = ""

    @property
    def accepted(self) -> bool:
        return self.accepted_at is not None


@dataclass(frozen=True)
class LiveSchema:
    """A source's live table as GET /v1/sources/{id}/schema reports it.

    `columns` are `{"name", "type"}` mappings, the shape `schemachanges.compare` accepts;
    the API reports neither nullability nor column positions (so no rename detection).
    """

    source_id: str
    source: str
    columns: tuple[dict[str, str], ...]
    inspected_at: datetime | None


@runtime_checkable
class Registry(Protocol):
    """A live registry. Writes are all-or-nothing and check each record's version."""

    display_url: str
    # False when a changed record must be deleted and registered again (plan: replace).
    updates_in_place: bool

    def list_records(self) -> list[Record]:
        """Every record, in one query; an uninitialised registry has none."""
        ...

    def exists(self) -> bool:
        """False before the registry's tables were created (a typo'd path, a database
        without them): read-only commands refuse it, a dry-run says so."""
        ...

    def init(self) -> int:
        """Create or migrate the registry's tables; returns how many migrations ran."""
        ...

    def locked(self, timeout: float = ...) -> AbstractContextManager[None]:
        """Hold the registry's write lock (one apply at a time); reads inside see a stable state.

        Waits up to `timeout` seconds, then raises LockTimeout naming the holder.
        """
        ...

    def fingerprint_key(self) -> bytes | None:
        """The per-registry key for secret fingerprints; None before the registry exists."""
        ...

    def known(self, owner: str) -> dict[str, str]:
        """Casefolded names this owner applied (and did not delete), with their record ids."""
        ...

    def apply(self, writes: Writes, run: RunEntry) -> None:
        """Write creates, updates, replaces, then deletes, and the run entry.

        SQL backends do it in one transaction and raise StaleRecordError (writing nothing)
        if any record's version moved. A remote registry cannot roll back: it stops at the
        first failure, keeps the state of what it did and says so in the error.
        """
        ...

    def record_run(self, run: RunEntry) -> None:
        """Log a run that did not apply (failed or refused)."""
        ...

    def list_runs(self, limit: int = 20) -> list[RunEntry]: ...

    def applied_times(self) -> dict[str, datetime]:
        """By record id, when a reconciler last applied it (for `list` and `show`)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class SnapshotStore(Protocol):
    """A registry that keeps each source's schema snapshot history (`reconcile schema`)."""

    def last_snapshots(
        self, names: Iterable[str], *, accepted: bool = False
    ) -> dict[str, SchemaSnapshot]:
        """By casefolded name, each named source's newest schema snapshot; with `accepted`,
        its newest accepted one (the baseline). Sources never observed are absent."""
        ...

    def record_snapshots(self, snapshots: Sequence[SchemaSnapshot], timeout: float = ...) -> int:
        """Append each snapshot to its source's history, unless it equals (same hash) the
        newest one, which is then only marked accepted if the new one is. One transaction
        under the write lock; returns how many snapshots were recorded (rows added, or
        marked accepted)."""
        ...


class SnapshotRegistry(Registry, SnapshotStore, Protocol):
    """A registry with a snapshot history: what `reconcile schema` needs."""


@runtime_checkable
class PlanReview(Protocol):
    """A registry that knows per field what its API can do (a provider): it turns the
    updates it cannot make in place into replaces and blocks the changes it cannot make."""

    def review_plan(self, plan: Plan) -> Plan: ...


@runtime_checkable
class LiveSchemas(Protocol):
    """A registry that reads its sources' live columns through its own API (the Sources
    API), so `reconcile schema` needs no database credentials."""

    def live_schemas(self, names: Sequence[str]) -> dict[str, LiveSchema | Unreachable]: ...


@runtime_checkable
class SharedState(Protocol):
    """A registry whose ownership lives in a state store of our own (an API registry): the
    store must be the one every run shares, or a run would think it owns nothing."""

    def declare_state(self) -> None:
        """`reconcile registry init`: this state store is the registry's from now on."""
        ...

    def refuse_blind(self, count: int) -> None:
        """Refuse to plan when the store never saw this registry and it holds `count`
        records the API cannot mark as ours."""
        ...


def shared_state(registry: Registry) -> SharedState | None:
    """The registry's state-store checks, or None when ownership lives in the registry."""
    return registry if isinstance(registry, SharedState) else None


def live_schemas(registry: Registry) -> LiveSchemas | None:
    """The registry's own reading of live columns, or None when the databases are read."""
    return registry if isinstance(registry, LiveSchemas) else None


def snapshot_store(registry: Registry) -> SnapshotRegistry | None:
    """The registry as a snapshot store, or None when it keeps no snapshot history."""
    return registry if isinstance(registry, SnapshotStore) else None


def plan_review(registry: Registry) -> PlanReview | None:
    """The registry's per-field review of a plan, or None when planning alone decides."""
    return registry if isinstance(registry, PlanReview) else None


class DigestRow(NamedTuple):
    """What a plan needs of a record whose document it does not read (a tuple: 100,000 of
    them are built per plan)."""

    id: str
    name: str
    source_type: str
    managed_by: str | None
    version: int
    # Both None unless the row was written by an apply that could vouch for them.
    applied_version: int | None
    digest: str | None
    secret_refs: str | None

    @property
    def untouched(self) -> bool:
        """Not written since the apply that stored its digest (the version trigger moves
        `version` on any other UPDATE)."""
        return self.digest is not None and self.applied_version == self.version


@dataclass(frozen=True, slots=True)
class Restamp:
    """A record the full plan found in sync, with no digest yet (or an outdated one)."""

    id: str
    version: int
    owner: str
    digest: str
    secret_refs: str | None


@runtime_checkable
class ContentDigests(Protocol):
    """A registry that keeps, with each record, the digest of the manifest document it was
    applied from and a row version the database moves on any outside write (SQL): a plan
    then reads and diffs only what changed (planning/fast_plan.py)."""

    def ready(self) -> bool:
        """The registry exists and its schema is current (a plan may trust its digests)."""
        ...

    def digest_rows(self) -> list[DigestRow]:
        """Every record, lightly (no JSON decoded), in one query."""
        ...

    def records_by_id(self, ids: Sequence[str]) -> Iterator[Record]:
        """The whole records with these ids."""
        ...

    def restamp(self, stamps: Sequence[Restamp]) -> None:
        """Store digests for records found in sync (each only at the version it was read)."""
        ...


def content_digests(registry: Registry) -> ContentDigests | None:
    """The registry's digests, or None: every plan is computed in full."""
    return registry if isinstance(registry, ContentDigests) else None
