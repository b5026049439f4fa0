"""Machine output: a stable, versioned object (see README, "JSON output")."""

from __future__ import annotations

import json
from typing import Any

from reconciler.models import Change
from reconciler.reporters.escaping import json_text
from reconciler.reporters.model import FORMAT_VERSION, Report
from reconciler.reporters.schema_section import report_dict as schema_dict


def report_dict(report: Report) -> dict[str, Any]:
    out: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "kind": report.kind,
        "registry": report.registry,
        "sources_dir": report.sources_dir,
        "valid": not report.problems,
    }
    if report.problems:
        out["problems"] = [
            {"file": p.file, "line": p.line, "message": p.message} for p in report.problems
        ]
        return out
    if report.kind == "validate":
        out["files"] = report.files
        out["sources"] = report.sources
        return out
    if report.kind == "schema" and report.schema is not None:
        out["schema"] = schema_dict(report.schema)
        return out
    plan = report.plan
    assert plan is not None
    out["owner"] = plan.owner
    out["prune"] = plan.prune
    out["summary"] = {
        "create": plan.count("create"),
        "update": plan.count("update"),
        "replace": plan.count("replace"),
        "delete": plan.count("delete"),
        "noop": plan.count("noop"),
        "unmanaged": len(plan.unmanaged),
        "orphaned": len(plan.orphans),
        "blocked": len(plan.blocked),
        "drifted": len(plan.drifted),
        "conflicts": sum(1 for c in plan.changes if c.conflicts),
    }
    out["changes"] = [_change(c) for c in plan.pending]
    if report.kind == "drift":
        out.pop("changes")
    out["unmanaged"] = [u.model_dump() for u in plan.unmanaged]
    out["orphans"] = [o.model_dump() for o in plan.orphans]
    out["blocked"] = [b.model_dump() for b in plan.blocked]
    out["guard"] = plan.guard
    out["drift"] = {
        "changed": [
            {"name": c.name, "record_id": c.record_id, "fields": [f.model_dump() for f in c.drift]}
            for c in plan.drifted
            if not c.recreate
        ],
        "deleted": [c.name for c in plan.drifted if c.recreate],
        "added": [u.name for u in plan.added_out_of_band],
    }
    r = report.result
    out["applied"] = (
        None
        if r is None
        else {
            "run_id": r.run_id,
            "created": r.created,
            "updated": r.updated,
            "replaced": r.replaced,
            "deleted": r.deleted,
            "refused": list(r.refused),
        }
    )
    if report.schema is not None:  # only when asked for (--schema): an additive key
        out["schema"] = schema_dict(report.schema)
    return out


def render_json(report: Report) -> str:
    dumped = json.dumps(report_dict(report), indent=2, ensure_ascii=False, default=str)
    return json_text(dumped) + "\n"


def _change(change: Change) -> dict[str, Any]:
    return {
        "action": change.action,
        "name": change.name,
        "source_type": change.source_type,
        "record_id": change.record_id,
        "file": change.file,
        "line": change.line,
        "fields": [f.model_dump() for f in change.fields],
        # A registry without updates replaces the record; these fields force it.
        "forces_replacement": [f.path for f in change.fields] if change.action == "replace" else [],
        "drift": [f.model_dump() for f in change.drift],
        "conflicts": list(change.conflicts),
        "unknown": list(change.unknown),
        "recreate": change.recreate,
    }
