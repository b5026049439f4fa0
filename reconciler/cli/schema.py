"""`reconcile schema`: introspect the live tables and report their schema changes."""

from __future__ import annotations

import click

from reconciler.cli import options as o
from reconciler.cli.reconciling import schema_options, selected
from reconciler.cli.running import emit, run_settings, settings
from reconciler.cli.usage import Command
from reconciler.reporters import Report


@click.command(cls=Command)
@o.with_options(o.SOURCES, o.REGISTRY, o.OUTPUT, o.PROGRESS, *o.SCHEMA_TUNING, *o.SELECTION)
@click.option(
    "--name", "names", multiple=True, metavar="NAME", help="Check only NAME (repeatable)."
)
@click.option(
    "--accept",
    multiple=True,
    metavar="NAME",
    help="Accept NAME's live schema, breaking changes included, as its new baseline "
    "(repeatable; checks only the named sources unless --name is given).",
)
@o.flag("--no-record", help="Only look: record no snapshot; the registry is read-only.")
@o.flag(
    "--detailed-exitcode",
    help="Exit 2 when a breaking change or warning is reported (and nothing exits 3 or 1).",
)
@o.option(
    "--lock-timeout",
    name="lock_timeout",
    type=click.FloatRange(min=0),
    help="Seconds to wait for another run's lock before recording.",
)
@click.pass_context
def schema(
    ctx: click.Context, /, names: tuple[str, ...], accept: tuple[str, ...], **_: object
) -> None:
    """Introspect the live tables behind the sources and report their schema changes.

    Each table is compared with its `columns` contract and with its last accepted snapshot,
    and the observation is recorded in the registry. Non-breaking changes become the new
    baseline at once; breaking ones stay reported until accepted (--accept NAME) or
    written into the `columns` contract.

    \b
    Exit codes:
      0  no breaking change under schema_policy: fail, every source introspected
      1  a source could not be introspected (reported with all the others)
      2  with --detailed-exitcode: a breaking change or a warning was reported
      3  a breaking change not accepted under schema_policy: fail
    """
    s = settings(ctx)

    def action() -> int:
        from reconciler.manifests.loading import load_manifests
        from reconciler.tableschema.check import check_registry

        options = schema_options(s, record=not s.no_record, names=names, accept=accept)
        manifests = selected(s, load_manifests(s.sources_dir))
        display, found = check_registry(manifests, s.registry, options, connect=s.connect)
        emit(
            Report(
                kind="schema",
                registry=display,
                sources_dir=s.sources_dir.as_posix(),
                sources=len(manifests),
                schema=found,
            ),
            s.stdout,
        )
        return found.exit_code(detailed=s.detailed_exitcode)

    run_settings(action, s, kind="schema")
