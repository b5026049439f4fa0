"""The terminal plan, shaped like `terraform plan` so our users read it without learning."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ..models import Change
from . import Report, show, summary_line

_STYLE: dict[str, tuple[str, str]] = {
    "create": ("+", "green"),
    "update": ("~", "yellow"),
    "delete": ("-", "red"),
}


def render_text(report: Report, *, color: bool = False) -> str:
    def style(text: str, fg: str | None = None, bold: bool = False) -> str:
        return click.style(text, fg=fg, bold=bold) if color else text

    lines: list[str] = []
    if report.problems:
        lines.extend(str(p) for p in report.problems)
        count = len(report.problems)
        lines.append(
            style(f"{count} problem{'s' if count != 1 else ''} found; nothing was written.", "red")
        )
        return "\n".join(lines) + "\n"
    plan = report.plan
    assert plan is not None
    for change in plan.pending:
        lines.extend(_change_lines(change, style))
    for blocked in plan.blocked:
        where = f"  ({blocked.file}:{blocked.line})" if blocked.file else ""
        lines.append(style(f"  ✗ {blocked.name}: {blocked.reason}", "red") + where)
    if plan.unmanaged:
        lines.append("")
        lines.append(
            style(f"Unmanaged records (not owned by '{plan.owner}', never touched):", bold=True)
        )
        for item in plan.unmanaged:
            owner = item.managed_by or "no owner"
            lines.append(style(f"  ? {item.name}", "cyan") + f"  ({owner})")
    if plan.orphans:
        lines.append("")
        lines.append(
            style("Owned records without a manifest (deleted only with --prune):", bold=True)
        )
        lines.extend(f"  · {o.name}" for o in plan.orphans)
    if lines:
        lines.append("")
    in_sync = plan.count("noop")
    if report.result is not None:
        r = report.result
        lines.append(
            style(
                f"Apply complete: {r.created} created, {r.updated} updated, {r.deleted} deleted",
                "green",
                bold=True,
            )
            + f" ({in_sync} unchanged)."
        )
    elif not plan.has_changes and not plan.blocked:
        lines.append(
            style("No changes.", "green", bold=True)
            + f" The registry matches {report.sources_dir} ({_sources(in_sync)} in sync)."
        )
    else:
        lines.append(style(summary_line(plan), bold=True) + f" {in_sync} unchanged.")
        if plan.blocked:
            lines.append(style(f"{len(plan.blocked)} source(s) blocked: apply will refuse.", "red"))
    return "\n".join(lines) + "\n"


def _change_lines(change: Change, style: Callable[..., str]) -> list[str]:
    mark, fg = _STYLE[change.action]
    where = f"  {change.file}:{change.line}" if change.file else ""
    lines = [
        style(f"  {mark} {change.action} {change.name}", fg, bold=True)
        + f" ({change.source_type}){where}"
    ]
    for field in change.fields:
        if change.action == "create":
            lines.append(style(f"      + {field.path}: {_v(field.new)}", fg))
        else:
            old = "(none)" if field.old is None else _v(field.old)
            new = "(none)" if field.new is None else _v(field.new)
            lines.append(style(f"      ~ {field.path}: {old} → {new}", fg))
    if change.action == "delete" and change.record_id:
        lines.append(style(f"      id: {change.record_id}", fg))
    return lines


def _v(value: Any) -> str:
    return show(value)


def _sources(count: int) -> str:
    return f"{count} source{'s' if count != 1 else ''}"
