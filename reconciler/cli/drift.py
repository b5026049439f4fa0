"""`reconcile drift`: records changed, deleted or added outside git; exit 2 on drift."""

from __future__ import annotations

import click

from reconciler import exit_codes
from reconciler.cli.options import OUTPUT, OWNER, REGISTRY, REPORT_OPTIONS, SOURCES, with_options
from reconciler.cli.reconciling import report, run_options
from reconciler.cli.running import emit, run_settings, settings
from reconciler.cli.usage import Command


@click.command(cls=Command)
@with_options(SOURCES, REGISTRY, OWNER, OUTPUT, *REPORT_OPTIONS)
@click.pass_context
def drift(ctx: click.Context, /, **_: object) -> None:
    """Report records changed, deleted or added outside git. Writes nothing; exit 2 on drift."""
    s = settings(ctx)

    def action() -> int:
        from reconciler.workflow import run as workflow

        outcome = workflow.dry_run(run_options(s), must_exist=True)
        emit(report("drift", s, outcome), s.stdout)
        return exit_codes.for_drift(outcome.plan)

    run_settings(action, s, kind="drift")
