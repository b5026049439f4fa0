"""Apply a plan through a backend: resolve secrets, build the writes, record the run.

The writes are derived from the very Plan that was shown, so a dry-run can never disagree
with what an apply does.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from .backends.base import NewRecord, RecordDelete, RecordUpdate, Registry, RunEntry, Writes
from .errors import PlanBlocked, ReconcilerError
from .models import ApplyResult, Change, Plan
from .secrets import resolve_connection


def actor() -> str:
    """Who is applying: RECONCILER_ACTOR (e.g. the CI job), else the OS user."""
    explicit = os.environ.get("RECONCILER_ACTOR")
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def build_writes(plan: Plan, env: Mapping[str, str] | None = None) -> Writes:
    """The backend writes for a plan; every secret is resolved here or the whole apply stops."""
    if plan.blocked:
        names = ", ".join(b.name for b in plan.blocked)
        raise PlanBlocked(
            f"cannot apply: {len(plan.blocked)} source(s) blocked ({names}); nothing was written"
        )
    writes = Writes()
    for change in plan.changes:
        if change.action == "create":
            writes.creates.append(_new_record(change, str(uuid.uuid4()), plan.owner, env))
        elif change.action == "update":
            assert change.record_id is not None and change.version is not None
            record = _new_record(change, change.record_id, plan.owner, env)
            writes.updates.append(RecordUpdate(record=record, expected_version=change.version))
        elif change.action == "delete":
            assert change.record_id is not None and change.version is not None
            writes.deletes.append(
                RecordDelete(id=change.record_id, name=change.name, expected_version=change.version)
            )
    return writes


def apply_plan(plan: Plan, registry: Registry, env: Mapping[str, str] | None = None) -> ApplyResult:
    """Apply all of the plan or none of it, and log the run either way."""
    run = RunEntry(
        id=str(uuid.uuid4()), owner=plan.owner, actor=actor(), started_at=datetime.now(UTC)
    )
    try:
        writes = build_writes(plan, env)
        run.created, run.updated, run.deleted = (
            len(writes.creates),
            len(writes.updates),
            len(writes.deletes),
        )
        registry.apply(writes, run)
    except ReconcilerError as exc:
        run.outcome, run.message, run.finished_at = "failed", str(exc), datetime.now(UTC)
        run.created = run.updated = run.deleted = 0
        with contextlib.suppress(ReconcilerError):  # the original error is what matters
            registry.record_run(run)
        raise
    return ApplyResult(
        plan=plan, run_id=run.id, created=run.created, updated=run.updated, deleted=run.deleted
    )


def _new_record(
    change: Change, record_id: str, owner: str, env: Mapping[str, str] | None
) -> NewRecord:
    doc = change.document
    assert doc is not None
    return NewRecord(
        id=record_id,
        name=doc["name"],
        source_type=doc["source_type"],
        connection=resolve_connection(doc["connection"], source=doc["name"], env=env),
        description=doc["description"],
        tags=list(doc["tags"]),
        managed_by=owner,
        last_applied=doc,
    )
