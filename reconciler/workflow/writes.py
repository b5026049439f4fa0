"""Apply a plan through a backend: build the writes, record the run.

The writes are derived from the very Plan that was shown (or saved), so a dry-run can never
disagree with what an apply does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from reconciler import progress
from reconciler.actor import actor
from reconciler.backends import base
from reconciler.backends.base import Registry, RunEntry
from reconciler.errors import PlanBlocked
from reconciler.models import ApplyResult, Change, Plan, Record
from reconciler.secret_refs import ResolvedSecrets, fingerprint


def build_writes(
    plan: Plan,
    secrets: ResolvedSecrets,
    key: bytes | None,
    records: Sequence[Record] = (),
    *,
    force_conflicts: bool = False,
    stamp: Callable[[base.NewRecord], base.NewRecord] | None = None,
) -> tuple[base.Writes, list[str]]:
    """The backend writes for a plan, and the names refused because of a conflict.

    `stamp` adds what content-addressed planning stores with a record (planning/fast_plan.py).
    """
    if plan.blocked:
        reasons = "; ".join(f"{b.name}: {b.reason}" for b in plan.blocked)
        raise PlanBlocked(f"cannot apply: {reasons}. Nothing was written.")
    if plan.guard:
        raise PlanBlocked(plan.guard + " Nothing was written.")
    live = {r.id: r for r in records}

    def written(change: Change, record_id: str) -> base.NewRecord:
        """The record to write: ignored fields keep their live values; otherwise it carries
        what content-addressed planning stores."""
        record = _new_record(change, record_id, plan.owner, secrets, key)
        if change.keep:
            return _keep_live(record, live.get(change.record_id or ""), change.keep)
        return stamp(record) if stamp else record

    writes = base.Writes()
    refused: list[str] = []
    for change in plan.changes:
        if change.conflicts and not force_conflicts:
            refused.append(change.name)
        elif change.action == "create":
            writes.creates.append(written(change, str(uuid.uuid4())))
        elif change.action == "update":
            assert change.record_id is not None and change.version is not None
            writes.updates.append(
                base.RecordUpdate(
                    record=written(change, change.record_id),
                    expected_version=change.version,
                    expected_owner=plan.owner,
                    renamed_from=next(
                        (str(f.old) for f in change.fields if f.path == "name"), None
                    ),
                )
            )
        elif change.action == "replace":
            assert change.record_id is not None and change.version is not None
            writes.replaces.append(
                base.RecordReplace(
                    record=written(change, str(uuid.uuid4())),
                    old_id=change.record_id,
                    expected_version=change.version,
                    expected_owner=plan.owner,
                )
            )
        elif change.action == "delete":
            assert change.record_id is not None and change.version is not None
            writes.deletes.append(
                base.RecordDelete(
                    id=change.record_id,
                    name=change.name,
                    expected_version=change.version,
                    expected_owner=plan.owner,
                )
            )
    return writes, refused


def apply_plan(
    plan: Plan,
    registry: Registry,
    secrets: ResolvedSecrets | None = None,
    *,
    records: Sequence[Record] = (),
    force_conflicts: bool = False,
    started_at: datetime | None = None,
    stamp: Callable[[base.NewRecord], base.NewRecord] | None = None,
) -> ApplyResult:
    """Apply all of the plan or none of it, logging the run with it.

    `records` are the live records the plan was computed from (needed to keep the values of
    lifecycle.ignore_changes fields). Conflicted records are refused unless forced.
    `started_at` is when the run began (the run log's duration runs from it).
    """
    secrets = secrets or ResolvedSecrets()
    writes, refused = build_writes(
        plan,
        secrets,
        registry.fingerprint_key(),
        records,
        force_conflicts=force_conflicts,
        stamp=stamp,
    )
    run = RunEntry(
        id=str(uuid.uuid4()),
        owner=plan.owner,
        actor=actor(),
        started_at=started_at or datetime.now(UTC),
        created=len(writes.creates),
        updated=len(writes.updates),
        replaced=len(writes.replaces),
        deleted=len(writes.deletes),
        outcome="partial" if refused else "running",
        message="refused (conflict): " + ", ".join(refused) if refused else "",
    )
    total = run.created + run.updated + run.replaced + run.deleted
    with progress.task("Applying changes", total):  # backends report through progress.advance
        registry.apply(writes, run)
    return ApplyResult(
        plan=plan,
        run_id=run.id,
        created=run.created,
        updated=run.updated,
        deleted=run.deleted,
        refused=tuple(refused),
        replaced=run.replaced,
    )


def _new_record(
    change: Change, record_id: str, owner: str, secrets: ResolvedSecrets, key: bytes | None
) -> base.NewRecord:
    doc = change.document
    assert doc is not None
    connection = secrets.connection(doc["name"], doc["connection"])
    resolved = secrets.values.get(doc["name"].casefold(), {})
    return base.NewRecord(
        id=record_id,
        name=doc["name"],
        source_type=doc["source_type"],
        connection=connection,
        description=doc["description"],
        tags=list(doc["tags"]),
        managed_by=owner,
        last_applied=doc,
        fingerprints={
            path: fingerprint(key, value)
            for path, value in resolved.items()
            if key is not None and value is not None
        },
    )


def _keep_live(record: base.NewRecord, live: Record | None, paths: Sequence[str]) -> base.NewRecord:
    """lifecycle.ignore_changes: the registry's current values win for these fields."""
    if live is None:
        return record
    fields: dict[str, Any] = {
        "description": record.description,
        "tags": record.tags,
        "connection": dict(record.connection),
    }
    for path in paths:
        head, _, tail = path.partition(".")
        if head == "connection" and tail:
            if tail in live.connection and live.connection[tail] is None:
                continue  # masked by the registry: unknown, so the manifest's value is written
            if tail in live.connection:
                fields["connection"][tail] = live.connection[tail]
            else:
                fields["connection"].pop(tail, None)
        elif head == "description":
            fields["description"] = live.description
        elif head == "tags":
            fields["tags"] = list(live.tags)
    return replace(record, **fields)


def record_failure(registry: Registry, owner: str, started: datetime, exc: Exception) -> None:
    """An apply that failed: its transaction rolled back, the run log gets its own entry."""
    registry.record_run(
        RunEntry(
            id=str(uuid.uuid4()),
            owner=owner,
            actor=actor(),
            started_at=started,
            finished_at=datetime.now(UTC),
            outcome="failed",
            message=str(exc),  # scrubbed where the run log is written
        )
    )
