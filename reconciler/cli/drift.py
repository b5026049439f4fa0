"""`reconcile drift`: records changed, deleted or added outside git; exit 2 on drift."""

from __future__ import annotations

import click

from reconciler import exit_codes
from reconciler.cli.options import (
    NOTIFY,
    OUTPUT,
    OWNER,
    REGISTRY,
    REPORT_OPTIONS,
    SELECTION,
    SOURCES,
    VARIABLES,
    with_options,
)
from reconciler.cli.reconciling import notify, partial_note, report, run_options
from reconciler.cli.running import emit, run_settings, settings
from reconciler.cli.usage import Command


@click.command(cls=Command)
@with_options(SOURCES, *VARIABLES, REGISTRY, OWNER, OUTPUT, *REPORT_OPTIONS, *SELECTION, NOTIFY)
@click.option(
    "--write",
    is_flag=True,
    help="Write the live values of drifted fields into their manifests (comments and "
    "formatting kept; never a secret); exit 0 when all drift was written, 2 when some "
    "needs a human.",
)
@click.pass_context
def drift(ctx: click.Context, /, write: bool, **_: object) -> None:
    """Report records changed, deleted or added outside git. Writes nothing; exit 2 on drift.

    With --write, the drift goes into git instead: the manifests of this owner's records
    are edited to say what the registry says (the registry is not written).
    """
    s = settings(ctx)

    def action() -> int:
        from reconciler.workflow import run as workflow

        outcome = workflow.dry_run(run_options(s), must_exist=True)
        emit(report("drift", s, outcome), s.stdout)
        partial_note(s, outcome)
        notify(s, outcome.plan)
        if write:
            from reconciler.workflow import drift_writeback

            done = drift_writeback.write_back(drift_writeback.plan_writeback(outcome.plan))
            click.echo(drift_writeback.render(done), nl=False, err=s.stdout != "text")
            return exit_codes.EXIT_CHANGES if done.not_written else exit_codes.EXIT_OK
        return exit_codes.for_drift(outcome.plan)

    run_settings(action, s, kind="drift")
