"""The terminal plan, shaped like `terraform plan` so our users read it without learning."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import click

from reconciler.models import Change, Plan
from reconciler.reporters.escaping import escape_strings, visible
from reconciler.reporters.model import Report, applied_counts, show, summary_line
from reconciler.reporters.schema_section import render_text as schema_lines

Style = Callable[..., str]
_STYLE: dict[str, tuple[str, str]] = {
    "create": ("+", "green"),
    "update": ("~", "yellow"),
    "replace": ("-/+", "yellow"),
    "delete": ("-", "red"),
    "noop": (" ", "white"),
}


def render_text(report: Report, *, color: bool = False) -> str:
    """The report for a terminal; never starting with a blank line (a plan with only
    unmanaged records or orphans has no change lines above their section)."""
    return _render(report, color=color).lstrip("\n")


def _render(report: Report, *, color: bool = False) -> str:
    def style(text: str, fg: str | None = None, bold: bool = False) -> str:
        return click.style(text, fg=fg, bold=bold) if color else text

    # Every string from a manifest or a registry, with control characters shown escaped:
    # the only escape sequences on the terminal are this renderer's colours. What is never
    # shown here is not walked: a change's canonical document (its fields are shown), and
    # the sources in sync without drift (only their count is: 100,000 in a big no-op).
    in_sync = report.plan.count("noop") if report.plan is not None else 0
    report = escape_strings(_shown(report), visible, unshown=frozenset({"document"}))
    if report.problems:
        count = len(report.problems)
        found = [str(p) for p in report.problems]
        found.append(style(f"{count} problem{'s' if count != 1 else ''} found.", "red"))
        return "\n".join(found) + "\n"
    if report.kind == "validate":
        return (
            f"{_plural(report.sources, 'source')} in {_plural(report.files, 'file')}: all valid.\n"
        )
    if report.kind == "schema" and report.schema is not None:
        return "\n".join(schema_lines(report.schema, style)) + "\n"
    plan = report.plan
    assert plan is not None
    if report.kind == "drift":
        return _drift(plan, style)
    lines: list[str] = []
    for change in plan.pending:
        lines.extend(_change_lines(change, style, forced=plan.force_conflicts))
    for change in plan.changes:
        if change.action == "noop" and change.drift:  # drift that needs no write: converged
            lines.extend(_change_lines(change, style, forced=plan.force_conflicts))
    lines.extend(_refusals(plan, style))
    lines.extend(_others(plan, style))
    if lines:
        lines.append("")
    lines.append(_summary(report, plan, style, in_sync))
    if report.schema is not None:
        lines += ["", *schema_lines(report.schema, style)]
    return "\n".join(lines) + "\n"


def _shown(report: Report) -> Report:
    """The report without the plain no-ops: nothing of them but their count is printed."""
    plan = report.plan
    if plan is None:
        return report
    changes = tuple(c for c in plan.changes if c.action != "noop" or c.drift or c.recreate)
    if len(changes) == len(plan.changes):
        return report
    return replace(report, plan=plan.model_copy(update={"changes": changes}))


def _summary(report: Report, plan: Plan, style: Style, in_sync: int) -> str:
    if report.result is not None:
        r = report.result
        text = (
            style(
                "Apply complete: " + applied_counts(r.created, r.updated, r.replaced, r.deleted),
                "green",
                bold=True,
            )
            + f" ({in_sync} unchanged)."
        )
        if r.refused:
            text += "\n" + style(
                f"Refused because of conflicts: {', '.join(r.refused)} "
                "(re-run with --force-conflicts to let git win).",
                "red",
            )
        return text
    if not plan.has_changes and not plan.blocked and not plan.guard:
        return style("No changes.", "green", bold=True) + (
            f" The registry matches {report.sources_dir} ({_plural(in_sync, 'source')} in sync)."
        )
    return style(summary_line(plan), bold=True) + f" {in_sync} unchanged."


def _change_lines(change: Change, style: Style, *, forced: bool = False) -> list[str]:
    mark, fg = _STYLE[change.action]
    where = f"  {change.file}:{change.line}" if change.file else ""
    note = "  (deleted outside git; recreating)" if change.recreate else ""
    head = (
        f"  {mark} {change.action} {change.name}"
        if change.action != "noop"
        else (f"  ! {change.name}")
    )
    lines = [style(head, fg, bold=True) + f" ({change.source_type}){where}{note}"]
    forces = " (forces replacement)" if change.action == "replace" else ""
    for field in change.fields:
        unknown = " (unknown until apply)" if field.path in change.unknown else ""
        if change.action == "create":
            lines.append(style(f"      + {field.path}: {show(field.new)}{unknown}", fg))
        elif field.sensitive:
            lines.append(style(f"      ~ {field.path}: {field.new}{forces}", fg))
        else:
            old = "(none)" if field.old is None else show(field.old)
            new = "(none)" if field.new is None else show(field.new)
            lines.append(style(f"      ~ {field.path}: {old} → {new}{unknown}{forces}", fg))
    lines.extend(_drift_lines(change, style, forced=forced))
    if change.action == "delete" and change.record_id:
        lines.append(style(f"      id: {change.record_id}", fg))
    if change.action == "replace":
        lines.append(
            style(f"      id: {change.record_id} → (new; deleted, then registered again)", fg)
        )
    return lines


def _drift_lines(change: Change, style: Style, *, forced: bool = False) -> list[str]:
    lines = []
    for field in change.drift:
        if field.sensitive:
            lines.append(style(f"      ! drift {field.path}: {field.new}", "magenta"))
        else:
            old = "(none)" if field.old is None else show(field.old)
            new = "(none)" if field.new is None else show(field.new)
            lines.append(
                style(f"      ! drift {field.path}: {old} → {new} (changed outside git)", "magenta")
            )
    outcome = (
        "git wins (--force-conflicts)"
        if forced
        else "apply refuses this source unless --force-conflicts"
    )
    for path in change.conflicts:
        lines.append(
            style(f"      ✗ conflict {path}: changed in git and outside git; {outcome}", "red")
        )
    return lines


def _refusals(plan: Plan, style: Style) -> list[str]:
    lines = []
    for blocked in plan.blocked:
        where = f"  ({blocked.file}:{blocked.line})" if blocked.file else ""
        lines.append(style(f"  ✗ {blocked.name}: {blocked.reason}", "red") + where)
    if plan.guard:
        lines.append(style(f"  ✗ {plan.guard}", "red"))
    return lines


def _others(plan: Plan, style: Style) -> list[str]:
    lines = []
    if plan.unmanaged:
        lines += [
            "",
            style(f"Unmanaged records (not owned by '{plan.owner}', never touched):", bold=True),
        ]
        for item in plan.unmanaged:
            owner = item.managed_by or "no owner"
            lines.append(style(f"  ? {item.name}", "cyan") + f"  ({owner})")
    if plan.orphans:
        lines += [
            "",
            style("Owned records without a manifest (deleted only with --prune):", bold=True),
        ]
        lines.extend(f"  · {o.name}" for o in plan.orphans)
    return lines


def _drift(plan: Plan, style: Style) -> str:
    """`reconcile drift`: only what changed outside git."""
    lines: list[str] = []
    for change in plan.drifted:
        if change.recreate:
            lines.append(style(f"  - {change.name}: deleted outside git", "red", bold=True))
            continue
        lines.append(
            style(
                f"  ~ {change.name} ({change.source_type}): changed outside git",
                "magenta",
                bold=True,
            )
        )
        lines.extend(_drift_lines(change, style))
    for item in plan.added_out_of_band:
        lines.append(style(f"  + {item.name}: added outside git (no owner)", "cyan", bold=True))
    changed = sum(1 for c in plan.drifted if not c.recreate)
    deleted = sum(1 for c in plan.drifted if c.recreate)
    added = len(plan.added_out_of_band)
    if not (changed or deleted or added):
        return (
            style("No drift.", "green", bold=True)
            + " The registry matches what was last applied.\n"
        )
    lines += [
        "",
        style(
            f"Drift: {changed} changed, {deleted} deleted, {added} added outside git.", bold=True
        ),
    ]
    return "\n".join(lines) + "\n"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"
