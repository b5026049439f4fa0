"""Running a command: its settings, printing its report, and the one error handler."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import click

from reconciler.backends import redact_url
from reconciler.cli import delivery
from reconciler.cli.settings import Settings, from_context
from reconciler.errors import InvalidManifests, ReconcilerError
from reconciler.redaction import REDACTOR
from reconciler.reporters import Report
from reconciler.reporters.escaping import terminal_lines, visible


def settings(ctx: click.Context) -> Settings:
    """The command's settings, its delivery options attached to the context."""
    s = from_context(ctx)
    delivery.attach(ctx, s)
    return s


def _color(output: str) -> bool:
    """Text on a terminal, unless NO_COLOR is set to something (no-color.org: an empty
    NO_COLOR does not count)."""
    return output == "text" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def emit(report: Report, output: str, *, stdout: bool = True) -> None:
    """Print the report in the stdout format; write it to every --output file."""
    color = _color(output)
    if stdout:
        click.echo(delivery.rendered(output, report, color=color), nl=False, color=color)
    delivery.deliver(report)


def run(
    action: Callable[[], int],
    *,
    output: str = "text",
    kind: str = "plan",
    sources_dir: Path | None = None,
    registry: str = "",
) -> None:
    """The one place exceptions become a message and an exit code."""
    error = ""
    try:
        delivery.preflight()
        code = action()
    except InvalidManifests as exc:
        error = str(exc)
        emit(
            Report(
                kind=kind,
                registry=redact_url(registry),
                sources_dir=(sources_dir or Path()).as_posix(),
                problems=exc.problems,
            ),
            output,
            stdout=output != "text",  # text goes to stderr below; files get the report
        )
        for problem in exc.problems:
            click.echo(visible(str(problem)), err=True)  # a report value: never scrubbed as text
        message = str(exc) if kind != "validate" else str(exc).split(";")[0]
        click.echo(f"error: {terminal_lines(message)}", err=True)
        code = exc.exit_code
    except ReconcilerError as exc:
        error = str(exc)
        click.echo(f"error: {terminal_lines(str(exc))}", err=True)
        code = exc.exit_code
    sys.exit(delivery.finish(code, kind=kind, error=REDACTOR.scrub(error)))


def run_settings(action: Callable[[], int], s: Settings, *, kind: str) -> None:
    """`run` for a command that reports on manifests and a registry."""
    run(action, output=s.stdout, kind=kind, sources_dir=s.sources_dir, registry=s.registry)
