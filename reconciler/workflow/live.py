"""What is live: the registry's records with owner, last apply and drift state (`show`, `list`).

Read-only: the registry is opened without creating anything, the manifests (when a sources
directory is there) only to say whether each record is in sync. Secrets never leave: a
sensitive connection field is a marker, and every other string has its URLs redacted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler.backends import open_registry
from reconciler.backends.base import ConnectOptions, Registry, RunEntry
from reconciler.errors import RegistryMissing
from reconciler.manifests.documents import REDACTED
from reconciler.manifests.json_schemas import is_sensitive
from reconciler.models import Plan, Record
from reconciler.redaction import REDACTOR, is_sensitive_name

# Drift states, against the manifests of --sources-dir for the records of --owner.
IN_SYNC = "in sync"
DRIFTED = "drifted"
CONFLICT = "conflict"
NO_MANIFEST = "no manifest"
PENDING = "pending"  # git differs from the registry (not outside git): apply would change it
NOT_CHECKED = "-"  # no sources directory, or a record this owner does not manage

# How many runs are read to find the one that last applied each record.
_RUNS = 10_000


@dataclass(frozen=True)
class LiveRecord:
    """One record as `show`/`list` present it: display-safe values only."""

    name: str
    id: str
    source_type: str
    owner: str | None
    managed: bool
    state: str
    applied_at: datetime | None
    run_id: str | None
    version: int
    description: str
    tags: tuple[str, ...]
    connection: dict[str, Any]
    registered_by: str
    registered_at: datetime | None
    file: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Live:
    registry: str
    owner: str
    checked: bool  # drift states were computed against manifests
    records: tuple[LiveRecord, ...]


def read_live(
    registry_url: str,
    *,
    owner: str,
    plan_of: Callable[[], Plan] | None,
    connect: ConnectOptions | None = None,
) -> Live:
    """Every live record (by name), with its drift state when `plan_of` gives the plan.

    Raises RegistryMissing when the registry does not exist (a read-only command never
    creates it).
    """
    store = open_registry(registry_url, writable=False, options=connect)
    try:
        if not store.exists():
            raise RegistryMissing(store.display_url)
        records = store.list_records()
        applied = _applied_times(store)
        runs = store.list_runs(limit=_RUNS)
        display = store.display_url
    finally:
        store.close()
    plan = plan_of() if plan_of is not None else None
    states, where = _states(plan) if plan is not None else ({}, {})
    rows = []
    for record in sorted(records, key=lambda r: r.name.casefold()):
        key = record.name.casefold()
        when = applied.get(record.id)
        mine = record.managed_by == owner
        rows.append(
            LiveRecord(
                name=record.name,
                id=record.id,
                source_type=record.source_type,
                owner=record.managed_by,
                managed=record.managed_by is not None,
                state=states.get(key, NOT_CHECKED) if mine else NOT_CHECKED,
                applied_at=_utc(when) if when else None,
                run_id=_run_of(when, record.managed_by, runs),
                version=record.version,
                description=record.description,
                tags=tuple(record.tags),
                connection=safe_connection(record),
                registered_by=record.registered_by,
                registered_at=_utc(record.registered_at) if record.registered_at else None,
                file=where.get(key, (None, None))[0],
                line=where.get(key, (None, None))[1],
            )
        )
    return Live(display, owner, plan is not None, tuple(rows))


def find(live: Live, name: str) -> LiveRecord | None:
    key = name.casefold()
    return next((r for r in live.records if r.name.casefold() == key), None)


def _states(plan: Plan) -> tuple[dict[str, str], dict[str, tuple[str | None, int | None]]]:
    states: dict[str, str] = {}
    where: dict[str, tuple[str | None, int | None]] = {}
    for change in plan.changes:
        key = change.name.casefold()
        where[key] = (change.file, change.line)
        if change.conflicts:
            states[key] = CONFLICT
        elif change.drift or change.recreate:
            states[key] = DRIFTED
        elif change.action != "noop":
            states[key] = PENDING
        else:
            states[key] = IN_SYNC
    for orphan in plan.orphans:
        states[orphan.name.casefold()] = NO_MANIFEST
    return states, where


def _applied_times(store: Registry) -> Mapping[str, datetime]:
    """By record id, when a reconciler last applied it (a backend without the answer: none)."""
    return store.applied_times()


def _run_of(when: datetime | None, owner: str | None, runs: Sequence[RunEntry]) -> str | None:
    """The run that applied at `when`: its owner's run whose span contains the moment (the
    write's time is taken inside the run). None once the run log no longer holds it."""
    if when is None or owner is None:
        return None
    moment = _utc(when)
    for run in runs:
        if run.owner != owner or run.finished_at is None:
            continue
        if _utc(run.started_at) <= moment <= _utc(run.finished_at):
            return run.id
    return None


def safe_connection(record: Record) -> dict[str, Any]:
    """The connection with every secret as a marker: a field sensitive by schema or name (at
    any depth) is `(sensitive)`; other strings have URLs and `password=` pairs redacted."""
    out: dict[str, Any] = {}
    for key, value in record.connection.items():
        if is_sensitive(record.source_type, key):
            out[key] = REDACTED
        else:
            out[key] = _safe(value)
    return out


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return REDACTOR.scrub(value)
    if isinstance(value, Mapping):
        return {k: REDACTED if is_sensitive_name(str(k)) else _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_safe(v) for v in value]
    return value


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
