"""One report model, several renderers: the engine builds a Report, a renderer prints it.

The model is `model.py`; each format is a module of its own, and this package only picks
one (`render`).
"""

from __future__ import annotations

from reconciler.reporters.model import (
    FORMAT_VERSION,
    FORMATS,
    Report,
    applied_counts,
    show,
    summary_line,
)

__all__ = [
    "FORMATS",
    "FORMAT_VERSION",
    "Report",
    "applied_counts",
    "render",
    "show",
    "summary_line",
]


def render(fmt: str, report: Report, *, color: bool = False) -> str:
    if fmt == "json":
        from reconciler.reporters.json_report import render_json

        return render_json(report)
    if fmt == "markdown":
        from reconciler.reporters.comment_limit import fit_comment
        from reconciler.reporters.markdown import render_markdown

        return fit_comment(render_markdown(report))
    if fmt == "junit":
        from reconciler.reporters.junit import render_junit

        return render_junit(report)
    from reconciler.reporters.text import render_text

    if fmt == "github":
        from reconciler.reporters.github import render_github

        return render_github(report, render_text(report))
    return render_text(report, color=color)
