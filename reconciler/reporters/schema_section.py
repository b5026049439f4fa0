"""The schema section of a report, in each format.

`reconcile schema` shows only this section; a plan or apply run with `--schema` appends it.
Unchanged sources are counted, not listed, so a registry of thousands stays readable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from reconciler.reporters.escaping import md_code, md_text

if TYPE_CHECKING:
    from reconciler.tableschema.report import SchemaFinding, SchemaReport, SourceSchema, Status

Style = Callable[..., str]
_ORDER: tuple[Status, ...] = (
    "breaking",
    "missing",
    "unreachable",
    "accepted",
    "changed",
    "first",
    "unchanged",
)
_LABEL = {
    "breaking": "breaking",
    "missing": "table missing",
    "unreachable": "unreachable",
    "accepted": "accepted",
    "changed": "changed",
    "first": "first seen",
    "unchanged": "unchanged",
}
_HEAD: dict[str, tuple[str, str]] = {
    "breaking": ("✗", "red"),
    "missing": ("✗", "red"),
    "unreachable": ("?", "magenta"),
    "accepted": ("✓", "green"),
    "changed": ("~", "yellow"),
    "first": ("+", "green"),
}
_MARK: dict[str, tuple[str, str]] = {
    "breaking": ("✗", "red"),
    "warning": ("!", "yellow"),
    "info": ("~", "green"),
    "error": ("?", "magenta"),
}


def _listed(report: SchemaReport) -> list[SourceSchema]:
    shown = [
        s
        for s in report.sources
        if s.status != "unchanged" and not (s.status == "first" and not s.findings)
    ]
    return sorted(shown, key=lambda s: (_ORDER.index(s.status), s.name.casefold()))


def summary(report: SchemaReport) -> str:
    counts = [f"{report.count(st)} {_LABEL[st]}" for st in _ORDER if report.count(st)]
    total = len(report.sources)
    what = ", ".join(counts) if counts else "nothing to check"
    work = f"{total} source{'s' if total != 1 else ''}, {report.queries} database quer"
    work += "y" if report.queries == 1 else "ies"
    return f"Schema: {what} ({work}, {report.seconds:.2f} s)."


def _recorded(report: SchemaReport) -> str:
    if not report.record:
        return "Snapshots not recorded (read-only run)."
    count = report.recorded
    return f"{count} snapshot{'s' if count != 1 else ''} recorded."


def _finding_text(finding: SchemaFinding) -> str:
    prefix = "contract: " if finding.against == "contract" else ""
    return f"{prefix}{finding.message}"


def _hint(source: SourceSchema) -> str | None:
    if source.status == "missing":
        what = "file" if source.source_type == "csv" else "table"
        return f"stays reported until the {what} exists again (or the manifest is removed)"
    if source.status != "breaking":
        return None
    ways = []
    if any(f.severity == "breaking" and f.against == "snapshot" for f in source.findings):
        ways.append(f"accepted (reconcile schema --accept {source.name})")
    if any(f.severity == "breaking" and f.against == "contract" for f in source.findings):
        ways.append("written into its columns contract")
    return "stays reported until " + " or ".join(ways) if ways else None


def render_text(report: SchemaReport, style: Style) -> list[str]:
    lines: list[str] = []
    for source in _listed(report):
        mark, fg = _HEAD.get(source.status, (" ", "white"))
        where = f"  {source.file}:{source.line}" if source.file else ""
        policy = "  [schema_policy: fail]" if source.failing else ""
        head = style(f"  {mark} {source.name}", fg, bold=True) + f" ({source.source_type})"
        if source.status == "accepted":
            head += style(f": breaking change accepted by {source.accepted_by}", fg)
        lines.append(head + where + style(policy, "red"))
        for finding in source.findings:
            sign, color = _MARK[finding.severity]
            if finding.kind == "column_added" and finding.severity == "info":
                sign = "+"
            lines.append(style(f"      {sign} {_finding_text(finding)}", color))
        hint = _hint(source)
        if hint:
            lines.append(f"      {hint}")
    if lines:
        lines.append("")
    lines.append(style(summary(report), bold=True) + " " + _recorded(report))
    failing = report.failing
    if failing:
        names = ", ".join(s.name for s in failing)
        lines.append(style(f"Breaking under schema_policy: fail (exit 3): {names}.", "red"))
    return lines


def render_markdown(report: SchemaReport) -> list[str]:
    out = ["#### Schema changes", "", f"**{summary(report)}** {_recorded(report)}", ""]
    listed = _listed(report)
    if listed:
        out += ["| Source | Status | Change | Compared with |", "|---|---|---|---|"]
    for source in listed:
        status = {"breaking": "❌ breaking", "missing": "❌ table missing"}.get(
            source.status, _LABEL[source.status]
        )
        if source.failing:
            status += " (fails the run)"
        for finding in source.findings or ():
            against = {"source": "", "snapshot": "last accepted snapshot"}.get(
                finding.against, finding.against
            )
            message = md_text(finding.message)
            out.append(f"| {md_code(source.name)} | {status} | {message} | {md_text(against)} |")
    if listed:
        out.append("")
    hints = [f"{md_code(s.name)} {md_text(hint)}" for s in listed if (hint := _hint(s))]
    out += [f"- {h}" for h in hints]
    if hints:
        out.append("")
    return out


def report_dict(report: SchemaReport) -> dict[str, Any]:
    return {
        "recorded": report.recorded if report.record else None,
        "databases": report.databases,
        "queries": report.queries,
        "seconds": report.seconds,
        "summary": {status: report.count(status) for status in _ORDER},
        "failing": [s.name for s in report.failing],
        "sources": [
            {
                **source.model_dump(mode="json", exclude={"findings"}),
                "failing": source.failing,
                "findings": [f.model_dump(mode="json") for f in source.findings],
            }
            for source in report.sources
        ],
    }
