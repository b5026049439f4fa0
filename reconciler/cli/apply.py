"""`reconcile apply [PLAN_FILE]`: validate, plan and apply, or apply a saved plan."""

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
    with_options,
)
from reconciler.cli.reconciling import reconcile
from reconciler.cli.running import settings
from reconciler.cli.usage import Command, UsageError


@click.command(cls=Command)
@click.argument("plan_file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@with_options(SOURCES, REGISTRY, OWNER, OUTPUT, *PLAN_OPTIONS, *RUN_OPTIONS)
@click.pass_context
def apply(ctx: click.Context, /, plan_file: Path | None, **_: object) -> None:
    """Validate, plan and apply (same as `reconcile`).

    With PLAN_FILE (from `reconcile plan --out`), apply exactly that plan, or refuse and write
    nothing if the registry or the manifests changed since it was saved.
    """
    s = settings(ctx)
    if s.dry_run:
        raise UsageError("--dry-run cannot be combined with apply; use `reconcile plan`", ctx)
    reconcile(s, dry_run=False, plan_file=plan_file)
