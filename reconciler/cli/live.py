"""`reconcile list` and `reconcile show NAME`: what is live in the registry, read-only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from reconciler.cli import options as o
from reconciler.cli.running import run, settings
from reconciler.cli.settings import Settings
from reconciler.cli.usage import Command, UsageError
from reconciler.errors import ReconcilerError
from reconciler.exit_codes import EXIT_OK

if TYPE_CHECKING:
    from collections.abc import Callable

    from reconciler.models import Plan
    from reconciler.workflow.live import Live

_FORMAT = o.TEXT_OR_JSON


def _check(ctx: click.Context, s: Settings) -> None:
    if s.files:  # `reconcile -o json=FILE list`: the group's form, not silently dropped
        raise UsageError("list and show print to stdout only (--output text or json)", ctx)
    if s.stdout not in ("text", "json"):
        raise UsageError(f"no '{s.stdout}' output here; use text or json", ctx)


def _live(s: Settings) -> Live:
    """The live records; their drift states when the sources directory is there."""
    from reconciler.workflow.live import read_live

    plan_of: Callable[[], Plan] | None = None
    if s.sources_dir.is_dir():
        from reconciler.cli.reconciling import run_options
        from reconciler.workflow import run as workflow

        def plan_of() -> Plan:
            return workflow.dry_run(run_options(s), must_exist=True).plan

    return read_live(s.registry, owner=s.owner, plan_of=plan_of, connect=s.connect)


@click.command("list", cls=Command)
@o.with_options(o.SOURCES, *o.VARIABLES, o.REGISTRY, o.OWNER, _FORMAT)
@click.pass_context
def list_(ctx: click.Context, /, **_: object) -> None:
    """List the registry's records: owner, state, when and by which run last applied.

    STATE compares each of this owner's records with its manifest in --sources-dir (when the
    directory is there): in sync, drifted, conflict, pending (git changed) or no manifest.
    Secrets are never shown.
    """
    s = settings(ctx)
    _check(ctx, s)

    def action() -> int:
        from reconciler.reporters.live import render_list

        click.echo(render_list(_live(s), s.stdout), nl=False)
        return EXIT_OK

    run(action, registry=s.registry, kind="list")


@click.command(cls=Command)
@click.argument("name")
@o.with_options(o.SOURCES, *o.VARIABLES, o.REGISTRY, o.OWNER, _FORMAT)
@click.pass_context
def show(ctx: click.Context, /, name: str, **_: object) -> None:
    """Show one record: owner, state, last apply, and its fields (secrets as markers)."""
    s = settings(ctx)
    _check(ctx, s)

    def action() -> int:
        from reconciler.reporters.live import render_show
        from reconciler.workflow.live import find

        live = _live(s)
        record = find(live, name)
        if record is None:
            raise ReconcilerError(f"no record named '{name}' in {live.registry}")
        click.echo(render_show(live, record, s.stdout), nl=False)
        return EXIT_OK

    run(action, registry=s.registry, kind="show")
