"""The report for a GitHub Actions log: the text report folded in a group, then annotations.

Annotations are workflow commands (`::error file=F,line=N,title=T::message`) that GitHub
shows on the pull request's changed lines and in the run summary: errors for what blocks
convergence (invalid manifests, conflicts, blocked sources, refused deletions, breaking
schema changes), warnings for what someone should look at (drift, other schema findings,
unreachable databases), and one notice with the summary. The Markdown job summary
(`$GITHUB_STEP_SUMMARY`) is written by the output layer, not here: renderers only render.
"""

from __future__ import annotations

from reconciler.models import Change
from reconciler.reporters.ci_findings import (
    breaking,
    conflicted,
    drift_summary,
    schema_findings,
    unreachable,
    where,
)
from reconciler.reporters.escaping import gh_data, gh_log_line, gh_property, stop_commands_token
from reconciler.reporters.model import Report, summary_line


def render_github(report: Report, text: str) -> str:
    """`text`, the text report (the dispatcher renders it: renderers never import each
    other; values from manifests and registries in it), is fenced by
    `::stop-commands::` with a fresh token, so the runner runs none of its lines; each line
    that would look like a command is also defused, for log viewers that parse the output."""
    token = stop_commands_token()
    lines = [f"::group::reconciler {gh_data(report.kind)}", f"::stop-commands::{token}"]
    lines += [gh_log_line(t) for t in text.splitlines()]
    lines += [f"::{token}::", "::endgroup::"]
    lines += _annotations(report)
    return "\n".join(lines) + "\n"


def _annotations(report: Report) -> list[str]:
    out = [
        annotation("error", p.message, file=p.file, line=p.line, title="invalid manifest")
        for p in report.problems
    ]
    if report.problems:
        return out
    plan = report.plan
    changes: dict[str, Change] = {c.name: c for c in plan.changes} if plan else {}
    if plan is not None:
        refused = set(report.result.refused) if report.result else None
        for change in conflicted(plan):
            if refused is not None and change.name not in refused:
                continue  # forced: git won, nothing left to fix
            file, line = where(change)
            message = (
                f"{change.name}: {', '.join(change.conflicts)} changed in git and outside git; "
                "apply refuses this source unless --force-conflicts"
            )
            out.append(annotation("error", message, file=file, line=line, title="conflict"))
        for blocked in plan.blocked:
            message = f"{blocked.name}: {blocked.reason}"
            out.append(
                annotation("error", message, file=blocked.file, line=blocked.line, title="blocked")
            )
        if plan.guard:
            out.append(annotation("error", plan.guard, title="prune refused"))
        level = "error" if report.kind == "drift" else "warning"
        for change in plan.drifted:
            file, line = where(change)
            out.append(
                annotation(level, drift_summary(change), file=file, line=line, title="drift")
            )
        for item in plan.added_out_of_band:
            out.append(
                annotation(level, f"{item.name}: added outside git (no owner)", title="drift")
            )
    for source, finding in schema_findings(report):
        file, line = where(changes.get(source.name))
        if file is None:
            file, line = source.file or None, source.line or None
        message = f"{source.name}: {finding.message}"
        if unreachable(finding):
            out.append(annotation("warning", message, file=file, line=line, title="unreachable"))
        elif breaking((source, finding)):
            out.append(
                annotation("error", message, file=file, line=line, title="breaking schema change")
            )
        elif finding.severity == "warning":
            out.append(annotation("warning", message, file=file, line=line, title="schema change"))
    out.append(annotation("notice", _summary(report), title=f"reconciler {report.kind}"))
    return out


def _summary(report: Report) -> str:
    if report.plan is None:
        return f"{report.sources} source(s) in {report.files} file(s): all valid."
    if report.result is not None:
        r = report.result
        return f"Applied: {r.created} created, {r.updated} updated, {r.deleted} deleted."
    if report.kind == "drift":
        drifted = len(report.plan.drifted) + len(report.plan.added_out_of_band)
        return f"Drift: {drifted} record(s) changed, deleted or added outside git."
    return summary_line(report.plan)


def annotation(
    level: str,
    message: str,
    *,
    file: str | None = None,
    line: int | None = None,
    title: str | None = None,
) -> str:
    """One workflow command, escaped as GitHub's toolkit does (`escapeData`,
    `escapeProperty`): whatever the values, it stays one line and one command."""
    props = []
    if file:
        props.append(f"file={gh_property(file)}")
        if line:
            props.append(f"line={int(line)}")
    if title:
        props.append(f"title={gh_property(title)}")
    head = f"::{level} {','.join(props)}" if props else f"::{level}"
    return f"{head}::{gh_data(message)}"
