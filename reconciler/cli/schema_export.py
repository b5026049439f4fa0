"""`reconcile schema-export`: the manifests' JSON Schema, for editors and other validators."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.running import run
from reconciler.cli.usage import Command
from reconciler.exit_codes import EXIT_OK
from reconciler.files import write_atomic


@click.command("schema-export", cls=Command)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the self-contained schema to FILE instead of stdout.",
)
@click.option(
    "--out-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write the schema files as shipped (source + one per source_type) into DIR.",
)
def schema_export(out: Path | None, out_dir: Path | None) -> None:
    """Print the JSON Schema of a manifest, for editors and other validators.

    The connection schema of every source_type is inlined, so the one file is all an editor
    needs: put `# yaml-language-server: $schema=PATH` as the first line of a manifest.
    """

    def action() -> int:
        from reconciler.manifests import schema_export as export

        if out_dir is not None:
            for path in export.write_files(out_dir):
                click.echo(f"wrote {path}", err=True)
        text = export.dumps(export.bundled_schema())
        if out is not None:
            write_atomic(out, text)
            click.echo(f"wrote {out}", err=True)
        elif out_dir is None:
            click.echo(text, nl=False)
        return EXIT_OK

    run(action)
