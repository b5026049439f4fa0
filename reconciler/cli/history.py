"""`reconcile history`: past runs from the registry's run log, newest first."""

from __future__ import annotations

import click

from reconciler.cli import options as o
from reconciler.cli.running import run, settings
from reconciler.cli.usage import Command, UsageError
from reconciler.errors import RegistryMissing
from reconciler.exit_codes import EXIT_OK


@click.command(cls=Command)
@o.with_options(o.REGISTRY)
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Show N runs."
)
@o.TEXT_OR_JSON
@click.pass_context
def history(ctx: click.Context, /, limit: int, **_: object) -> None:
    """List past runs from the registry's run log, newest first.

    Time, owner, actor, counts, outcome and duration of each apply (dry-runs write nothing,
    so they are not logged).
    """
    s = settings(ctx)
    if s.stdout not in ("text", "json"):
        raise UsageError(f"history has no '{s.stdout}' output; use text or json", ctx)
    if s.files:  # `reconcile -o json=FILE history`: the group's form, not silently dropped
        raise UsageError("history prints to stdout only (--output text or json)", ctx)

    def action() -> int:
        from reconciler.backends import open_registry
        from reconciler.reporters.history import render_history

        store = open_registry(s.registry, writable=False, options=s.connect)
        try:
            if not store.exists():
                raise RegistryMissing(store.display_url)
            runs = store.list_runs(limit=limit)
        finally:
            store.close()
        text = render_history(runs, s.stdout, registry=store.display_url)
        click.echo(text, nl=False)  # messages were scrubbed when the run log got them
        return EXIT_OK

    run(action, registry=s.registry)
