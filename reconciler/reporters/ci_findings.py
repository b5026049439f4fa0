"""What the CI renderers (JUnit, GitHub) and the metrics read from a Report, in one place.

The schema section of a Report is optional (`Report.schema`, filled only when schema changes
were checked); these helpers read it by duck typing, so a renderer works with or without it:
an entry names its source (`source` or `name`) and carries its findings (`changes` or
`findings`), each with a `severity`, a `kind` and a `message`. An entry's `status`
(`accepted`, `changed`, ...) says whether its breaking findings were accepted; only
unaccepted ones count as breaking.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.models import Change, Plan
from reconciler.reporters.model import Report

# Entry statuses under which a breaking finding no longer needs anyone (accepted, or a
# baseline that was just taken).
_SETTLED = frozenset({"accepted", "changed", "first", "unchanged"})


@dataclass(frozen=True)
class SchemaFinding:
    source: str
    severity: str  # breaking, warning, info or error
    kind: str
    message: str
    column: str | None = None
    accepted: bool = False
    policy: str = "warn"
    file: str | None = None
    line: int | None = None

    @property
    def breaking(self) -> bool:
        """A breaking change nobody accepted yet."""
        return self.severity == "breaking" and not self.accepted

    @property
    def unreachable(self) -> bool:
        return self.kind == "unreachable" or self.severity == "error"


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _entries(schema: Any) -> Iterable[tuple[str | None, Any]]:
    if not isinstance(schema, Mapping | list | tuple):  # a section object wrapping its entries
        for key in ("sources", "results", "findings", "entries"):
            inner = getattr(schema, key, None)
            if inner is not None:
                schema = inner
                break
    if isinstance(schema, Mapping):
        return schema.items()
    if isinstance(schema, Iterable) and not isinstance(schema, str | bytes):
        return ((None, entry) for entry in schema)
    return ()


def schema_findings(report: Report) -> list[SchemaFinding]:
    """Every schema finding the report carries, in order; [] when it carries none."""
    schema = getattr(report, "schema", None)
    if schema is None:
        return []
    out: list[SchemaFinding] = []
    for key, entry in _entries(schema):
        source = str(key or _get(entry, "source") or _get(entry, "name") or "")
        if _get(entry, "severity") is not None:  # a flat list of findings
            out.append(_finding(source, entry, entry))
            continue
        changes = _get(entry, "changes") or _get(entry, "findings")
        if changes is None and isinstance(entry, list | tuple):
            changes = entry
        status = _get(entry, "status")
        if not changes and status in ("unreachable", "missing"):
            severity = "error" if status == "unreachable" else "breaking"
            changes = [{"kind": status, "severity": severity, "message": f"table {status}"}]
        out.extend(_finding(source, change, entry) for change in changes or ())
    return out


def _finding(source: str, change: Any, entry: Any) -> SchemaFinding:
    column = _get(change, "column")
    line = _get(entry, "line")
    return SchemaFinding(
        source=source or str(_get(change, "source") or ""),
        severity=str(_get(change, "severity") or "info"),
        kind=str(_get(change, "kind") or ""),
        message=str(_get(change, "message") or ""),
        column=None if column is None else str(column),
        accepted=bool(_get(change, "accepted")) or _get(entry, "status") in _SETTLED,
        policy=str(_get(entry, "policy") or "warn"),
        file=str(_get(entry, "file") or "") or None,
        line=int(line) if isinstance(line, int) and line > 0 else None,
    )


def conflicted(plan: Plan) -> tuple[Change, ...]:
    return tuple(c for c in plan.changes if c.conflicts)


def where(change: Change | None) -> tuple[str | None, int | None]:
    if change is None or not change.file:
        return None, None
    return change.file, change.line


def drift_summary(change: Change) -> str:
    if change.recreate:
        return f"{change.name}: deleted outside git"
    paths = ", ".join(f.path for f in change.drift)
    return f"{change.name}: {paths} changed outside git"
