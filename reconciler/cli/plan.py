"""`reconcile plan`: show what apply would change; write nothing."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.options import (
    OUTPUT,
    OWNER,
    PLAN_OPTIONS,
    REGISTRY,
    RUN_OPTIONS,
    SOURCES,
    flag,
    with_options,
)
from reconciler.cli.reconciling import reconcile
from reconciler.cli.running import settings
from reconciler.cli.usage import Command


@click.command(cls=Command)
@with_options(SOURCES, REGISTRY, OWNER, OUTPUT, *PLAN_OPTIONS, *RUN_OPTIONS)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Save the plan to FILE; `reconcile apply FILE` applies exactly it.",
)
@flag("--dry-run", help="A plan is a dry run already.", hidden=True)
@click.pass_context
def plan(ctx: click.Context, /, out: Path | None, **_: object) -> None:
    """Show what apply would change; write nothing (same as --dry-run)."""
    reconcile(settings(ctx), dry_run=True, out=out)
