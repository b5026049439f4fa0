"""What the CI renderers (JUnit, GitHub) and the metrics read from a Report, in one place.

A report's schema section (`Report.schema`, filled only when schema changes were checked)
holds per-source verdicts, each with its findings (`tableschema.report.SchemaFinding`, the
one finding type); the renderers read them as (source, finding) pairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.models import Change, Plan
from reconciler.reporters.model import Report

if TYPE_CHECKING:
    from reconciler.tableschema.report import SchemaFinding, SourceSchema

# Source statuses under which a breaking finding no longer needs anyone (accepted, or a
# baseline that was just taken).
_SETTLED = frozenset({"accepted", "changed", "first", "unchanged"})

Located = tuple["SourceSchema", "SchemaFinding"]


def schema_findings(report: Report) -> list[Located]:
    """Every schema finding the report carries, with its source, in order; [] when none."""
    if report.schema is None:
        return []
    return [(source, finding) for source in report.schema.sources for finding in source.findings]


def accepted(source: SourceSchema) -> bool:
    """The source's breaking findings were accepted (or there was nothing to accept)."""
    return source.status in _SETTLED


def breaking(located: Located) -> bool:
    """A breaking change nobody accepted yet."""
    source, finding = located
    return finding.severity == "breaking" and not accepted(source)


def unreachable(finding: SchemaFinding) -> bool:
    return finding.kind == "unreachable" or finding.severity == "error"


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
