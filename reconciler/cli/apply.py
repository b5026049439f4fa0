"""`reconcile apply [PLAN_FILE]`: validate, plan and apply, or apply a saved plan."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli import options as o
from reconciler.cli.reconciling import reconcile
from reconciler.cli.running import settings
from reconciler.cli.usage import Command, UsageError

# The options a saved plan was made with: given again to `apply PLAN_FILE`, they are refused.
FIXED_BY_PLAN = frozenset(
    {
        "prune",
        "max_deletes",
        "force_deletes",
        "force_conflicts",
        "force_replaces",
        "select",
        "exclude",
    }
)


@click.command(cls=Command)
@click.argument("plan_file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@o.with_options(
    o.SOURCES, o.REGISTRY, o.OWNER, o.OUTPUT, *o.APPLY_OPTIONS, *o.RUN_OPTIONS, o.NOTIFY
)
@o.flag("--dry-run", help="Refused: see `reconcile plan`.", hidden=True)
@click.pass_context
def apply(ctx: click.Context, /, plan_file: Path | None, **_: object) -> None:
    """Validate, plan and apply (same as `reconcile`).

    With PLAN_FILE (from `reconcile plan --out`), apply exactly that plan, or refuse and write
    nothing if the registry or the manifests changed since it was saved.
    """
    s = settings(ctx)
    if s.dry_run:
        raise UsageError(
            "--dry-run cannot be combined with apply; to see the plan, use `reconcile plan`", ctx
        )
    fixed = sorted(s.given & FIXED_BY_PLAN) if plan_file else []
    if fixed:
        names = ", ".join("--" + name.replace("_", "-") for name in fixed)
        raise UsageError(
            f"{names}: fixed when the plan was saved; apply {plan_file} as it is, or make a "
            "new plan with `reconcile plan --out`",
            ctx,
        )
    reconcile(s, dry_run=False, plan_file=plan_file)
