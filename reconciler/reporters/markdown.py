"""The plan as a pull-request comment: a summary table, then collapsible details per source.

Every string from a manifest or a registry goes through `escaping` (`md_text`, `md_code`,
`html_text`, `fenced`): a name or value cannot open HTML, mention anyone, link, or break
out of a table, a code block or a `<details>` block.
"""

from __future__ import annotations

from reconciler.models import Change
from reconciler.reporters.escaping import fenced, html_text, md_code, md_text
from reconciler.reporters.model import Report, applied_counts, show, summary_line
from reconciler.reporters.schema_section import render_markdown as schema_markdown

_ICON = {
    "create": "➕ create",
    "update": "✏️ update",
    "replace": "♻️ -/+ replace",
    "delete": "🗑️ delete",
}


def render_markdown(report: Report) -> str:
    out = [f"### reconciler {md_text(report.kind)}", ""]
    if report.problems:
        out.append(f"**{len(report.problems)} problem(s) in manifests; nothing was written.**")
        out.append("")
        out.extend(
            f"- {md_code(f'{p.file}:{p.line}')}: {md_text(p.message)}" for p in report.problems
        )
        return "\n".join(out) + "\n"
    if report.kind == "validate":
        out.append(f"**{report.sources} source(s) in {report.files} file(s): all valid.**")
        return "\n".join(out) + "\n"
    if report.kind == "schema" and report.schema is not None:
        return "\n".join(out + schema_markdown(report.schema)) + "\n"
    plan = report.plan
    assert plan is not None
    result = report.result
    if result is not None:
        head = (
            "Applied: "
            + applied_counts(result.created, result.updated, result.replaced, result.deleted)
            + "."
        )
    elif not plan.has_changes and not plan.blocked:
        head = "No changes. The registry matches the manifests."
    else:
        head = summary_line(plan)
    out.append(f"**{head}** Owner {md_code(plan.owner)}, registry {md_code(report.registry)}.")
    out.append("")
    if plan.pending or plan.blocked:
        out += ["| Action | Source | Type | Fields |", "|---|---|---|---|"]
        out += [
            f"| {_ICON[c.action]} | {md_code(c.name)} | {md_text(c.source_type)} | "
            f"{len(c.fields)} |"
            for c in plan.pending
        ]
        out += [f"| ⛔ blocked | {md_code(b.name)} | | {md_text(b.reason)} |" for b in plan.blocked]
        out.append("")
    if plan.guard:
        out += [f"> ⛔ {md_text(plan.guard)}", ""]
    for change in plan.drifted:
        what = "deleted outside git" if change.recreate else ", ".join(f.path for f in change.drift)
        out.append(f"- ⚠️ drift {md_code(change.name)}: {md_text(what)}")
        out.extend(f"- ❌ conflict {md_code(change.name)}: {md_code(p)}" for p in change.conflicts)
    if plan.drifted:
        out.append("")
    for change in plan.pending:
        out.extend(_details(change))
    if plan.unmanaged:
        names = ", ".join(md_code(u.name) for u in plan.unmanaged)
        out.append(f"Unmanaged (not owned by {md_code(plan.owner)}, never touched): {names}")
        out.append("")
    if plan.orphans:
        names = ", ".join(md_code(o.name) for o in plan.orphans)
        out.append(f"Owned records without a manifest (deleted only with `--prune`): {names}")
        out.append("")
    if report.schema is not None:
        out += schema_markdown(report.schema)
    return "\n".join(out) + "\n"


def _details(change: Change) -> list[str]:
    if not change.fields and change.action != "delete":
        return []
    lines = [
        f"<details><summary><code>{html_text(change.name)}</code> — {change.action}</summary>",
        "",
        "```diff",
    ]
    if change.action == "delete":
        lines.append(fenced(f"- {change.name} (id {change.record_id})"))
    if change.action == "replace":
        forced = ", ".join(f.path for f in change.fields)
        lines.append(
            fenced(
                f"-/+ {change.name} (id {change.record_id}, new id on apply) forced by: {forced}"
            )
        )
    for field in change.fields:
        if change.action == "create":
            lines.append(fenced(f"+ {field.path}: {show(field.new)}"))
        elif field.sensitive:
            lines.append(fenced(f"! {field.path}: {field.new}"))
        else:
            lines.append(fenced(f"- {field.path}: {show(field.old)}"))
            lines.append(fenced(f"+ {field.path}: {show(field.new)}"))
    lines += ["```", "", "</details>", ""]
    return lines
