"""`reconcile plan`: show what apply would change; write nothing."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli import options as o
from reconciler.cli.reconciling import reconcile
from reconciler.cli.running import settings
from reconciler.cli.usage import Command


@click.command(cls=Command)
@o.with_options(o.SOURCES, o.REGISTRY, o.OWNER, o.OUTPUT, *o.PLAN_OPTIONS, *o.RUN_OPTIONS)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Save the plan to FILE; `reconcile apply FILE` applies exactly it.",
)
@o.flag("--dry-run", help="A plan is a dry run already.", hidden=True)
@click.pass_context
def plan(ctx: click.Context, /, out: Path | None, **_: object) -> None:
    """Show what apply would change; write nothing (same as --dry-run)."""
    reconcile(settings(ctx), dry_run=True, out=out)
