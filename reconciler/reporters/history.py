"""`reconcile history`: the registry's run log, newest first, as a table or as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from reconciler.backends.base import RunEntry
from reconciler.reporters.escaping import json_text, visible
from reconciler.reporters.model import FORMAT_VERSION

_COLUMNS = ("STARTED (UTC)", "OWNER", "ACTOR", "CHANGES", "OUTCOME", "DURATION", "MESSAGE")


def duration(run: RunEntry) -> float | None:
    if run.finished_at is None:
        return None
    return max((run.finished_at - run.started_at).total_seconds(), 0.0)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def run_dict(run: RunEntry) -> dict[str, Any]:
    seconds = duration(run)
    return {
        "id": run.id,
        "started_at": _utc(run.started_at).isoformat(),
        "finished_at": _utc(run.finished_at).isoformat() if run.finished_at else None,
        "duration_seconds": None if seconds is None else round(seconds, 3),
        "owner": run.owner,
        "actor": run.actor,
        "created": run.created,
        "updated": run.updated,
        "replaced": run.replaced,
        "deleted": run.deleted,
        "outcome": run.outcome,
        "message": run.message,
    }


def render_history(runs: Sequence[RunEntry], fmt: str, *, registry: str) -> str:
    if fmt == "json":
        data = {
            "format_version": FORMAT_VERSION,
            "kind": "history",
            "registry": registry,
            "runs": [run_dict(r) for r in runs],
        }
        return json_text(json.dumps(data, indent=2, ensure_ascii=False)) + "\n"
    if not runs:
        return f"No runs recorded in {registry} yet.\n"
    # Owners, actors and messages come from the registry (and servers' errors): shown escaped.
    rows = [_COLUMNS, *(tuple(visible(cell) for cell in _row(r)) for r in runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _row(run: RunEntry) -> tuple[str, ...]:
    changes = f"+{run.created} ~{run.updated} -{run.deleted}"
    replaced = run.replaced
    if replaced:
        changes += f" ±{replaced}"
    seconds = duration(run)
    return (
        _utc(run.started_at).strftime("%Y-%m-%d %H:%M:%S"),
        run.owner,
        run.actor,
        changes,
        run.outcome,
        "-" if seconds is None else f"{seconds:.2f}s",
        run.message,
    )
