"""`reconcile import`: adopt records registered outside git into manifests."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.options import KEEP_RUNS, OWNER, REGISTRY, SOURCES, flag, with_options
from reconciler.cli.running import run, settings
from reconciler.cli.usage import Command, UsageError
from reconciler.exit_codes import EXIT_OK
from reconciler.reporters.escaping import terminal


@click.command("import", cls=Command)
@with_options(SOURCES, REGISTRY, OWNER, KEEP_RUNS)
@click.option("--name", "names", multiple=True, help="Import this source (repeatable).")
@click.option("--all", "import_all", is_flag=True, help="Import every record nobody owns.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory to write the manifests to, inside the sources directory.  "
    "[default: the sources directory]",
)
@flag(
    "--allow-outside",
    help="Allow --out outside the sources directory (the next run will not read those "
    "manifests, and --prune would delete what was adopted).",
)
@click.pass_context
def import_(
    ctx: click.Context,
    /,
    names: tuple[str, ...],
    import_all: bool,
    out: Path | None,
    allow_outside: bool,
    **_: object,
) -> None:
    """Adopt records registered outside git: write their manifests and take ownership.

    Sensitive values are written as ${env:...} references, with a comment naming the variable
    to set; the secrets themselves never reach the files.
    """
    s = settings(ctx)
    if bool(names) == import_all:
        raise UsageError("give either --name NAME (repeatable) or --all", ctx)

    def action() -> int:
        from reconciler.workflow.adoption import import_records

        imported = import_records(
            s.registry,
            owner=s.owner,
            names=list(names) or None,
            out_dir=out or s.sources_dir,
            sources_dir=s.sources_dir,
            allow_outside=allow_outside,
            options=s.connect,
        )
        for item in imported:
            needs = f"  (set {', '.join(item.variables)})" if item.variables else ""
            click.echo(terminal(f"  + {item.name} → {item.path}{needs}"))
        click.echo(f"Imported {len(imported)} source(s); they are now managed by '{s.owner}'.")
        return EXIT_OK

    run(action, registry=s.registry)
