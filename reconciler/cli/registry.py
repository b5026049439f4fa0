"""`reconcile registry init`: create or migrate the registry's tables."""

from __future__ import annotations

import click

from reconciler.cli.options import REGISTRY, with_options
from reconciler.cli.running import run, settings
from reconciler.cli.usage import Group
from reconciler.exit_codes import EXIT_OK


@click.group(cls=Group)
def registry() -> None:
    """Manage the registry store itself."""


@registry.command("init")
@with_options(REGISTRY)
@click.pass_context
def registry_init(ctx: click.Context, /, **_: object) -> None:
    """Create or migrate the registry's tables (idempotent; also done on first apply)."""
    s = settings(ctx)

    def action() -> int:
        from reconciler.backends import open_registry
        from reconciler.backends.base import shared_state

        store = open_registry(s.registry, writable=True, options=s.connect)
        try:
            applied = store.init()
            shared = shared_state(store)  # an API registry's state store
            if shared is not None:
                shared.declare_state()
        finally:
            store.close()
        state = f"{applied} migration(s) applied" if applied else "already up to date"
        click.echo(f"Registry {store.display_url}: {state}.")
        return EXIT_OK

    run(action)
