"""`reconcile validate`: check every manifest; opens no registry."""

from __future__ import annotations

import click

from reconciler.cli.options import OUTPUT, PROGRESS, SOURCES, VARIABLES, with_options
from reconciler.cli.running import emit, run, settings
from reconciler.cli.usage import Command
from reconciler.exit_codes import EXIT_OK
from reconciler.reporters import Report


@click.command(cls=Command)
@with_options(SOURCES, *VARIABLES, OUTPUT, PROGRESS)
@click.pass_context
def validate(ctx: click.Context, /, **_: object) -> None:
    """Check every manifest; report all problems as FILE:LINE: message. Opens no registry."""
    s = settings(ctx)

    def action() -> int:
        from reconciler.cli.reconciling import scope
        from reconciler.manifests.loading import find_manifest_files, load_manifests

        manifests = load_manifests(s.sources_dir, scope=scope(s))
        found = Report(
            kind="validate",
            registry="",
            sources_dir=s.sources_dir.as_posix(),
            sources=len(manifests),
            files=len(find_manifest_files(s.sources_dir)),
        )
        emit(found, s.stdout)
        return EXIT_OK

    run(action, output=s.stdout, kind="validate", sources_dir=s.sources_dir)
