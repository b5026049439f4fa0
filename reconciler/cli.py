"""The command line: parse, call the library, render, return the exit code. Nothing else."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import click

from .backends import DEFAULT_REGISTRY, open_registry, redact_url
from .errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, InvalidManifests, ReconcilerError
from .reporters import FORMATS, Report, render

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    sources_dir: Path
    registry: str
    owner: str
    output: str
    prune: bool
    dry_run: bool
    detailed_exitcode: bool


_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--sources-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="Directory of *.yaml/*.yml manifests, read recursively.  [default: sources.d]",
    ),
    click.option(
        "--registry",
        envvar="RECONCILER_REGISTRY",
        default=None,
        help=f"Registry URL: sqlite:///PATH or postgresql://...  [env: RECONCILER_REGISTRY; "
        f"default: {DEFAULT_REGISTRY}]",
    ),
    click.option(
        "--owner",
        envvar="RECONCILER_OWNER",
        default=None,
        help="Owner id stored on the records this reconciler manages; records of other owners "
        "are never touched.  [env: RECONCILER_OWNER; default: reconciler]",
    ),
    click.option(
        "--output",
        "-o",
        type=click.Choice(FORMATS),
        default=None,
        help="Output format.  [default: text]",
    ),
    click.option(
        "--prune",
        is_flag=True,
        default=None,
        help="Also delete owned records whose manifest is gone (never unowned records).",
    ),
    click.option("--dry-run", is_flag=True, default=None, help="Show the plan; write nothing."),
    click.option(
        "--detailed-exitcode",
        is_flag=True,
        default=None,
        help="With a plan: exit 0 when there is nothing to do, 2 when changes are pending.",
    ),
]


def run_options(func: F) -> F:
    for option in reversed(_OPTIONS):
        func = option(func)
    return func


def _settings(ctx: click.Context, given: dict[str, Any], **forced: Any) -> Settings:
    """Options may be given before or after the subcommand; the later one wins."""
    merged = dict(ctx.obj or {}) if isinstance(ctx.obj, dict) else {}
    merged.update({k: v for k, v in given.items() if v is not None})
    merged.update(forced)
    return Settings(
        sources_dir=merged.get("sources_dir") or Path("sources.d"),
        registry=merged.get("registry") or DEFAULT_REGISTRY,
        owner=merged.get("owner") or "reconciler",
        output=merged.get("output") or "text",
        prune=bool(merged.get("prune")),
        dry_run=bool(merged.get("dry_run")),
        detailed_exitcode=bool(merged.get("detailed_exitcode")),
    )


def _color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _emit(settings: Settings, report: Report) -> None:
    color = _color() and settings.output == "text"
    click.echo(render(settings.output, report, color=color), nl=False, color=color)


def _fail(settings: Settings | None, exc: ReconcilerError) -> int:
    """The one place exceptions become a message and an exit code."""
    if isinstance(exc, InvalidManifests):
        if settings is not None and settings.output != "text":
            report = Report(
                registry=redact_url(settings.registry),
                sources_dir=settings.sources_dir.as_posix(),
                dry_run=settings.dry_run,
                problems=exc.problems,
            )
            _emit(settings, report)
        for problem in exc.problems:
            click.echo(str(problem), err=True)
    click.echo(f"error: {exc}", err=True)
    return exc.exit_code


def _reconcile(settings: Settings) -> int:
    from .execution import apply_plan
    from .manifests import load_manifests
    from .planning import plan as compute_plan

    # Validate before touching the registry: invalid input must not even open it.
    manifests = load_manifests(settings.sources_dir)
    registry = open_registry(settings.registry, writable=not settings.dry_run)
    try:
        if not settings.dry_run:
            registry.init()
        plan = compute_plan(
            manifests, registry.list_records(), owner=settings.owner, prune=settings.prune
        )
        report = Report(
            registry=registry.display_url,
            sources_dir=settings.sources_dir.as_posix(),
            dry_run=settings.dry_run,
            plan=plan,
            sources=len(manifests),
        )
        if settings.dry_run:
            _emit(settings, report)
            if plan.blocked:
                return EXIT_ERROR if settings.detailed_exitcode else EXIT_OK
            return EXIT_CHANGES if settings.detailed_exitcode and plan.has_changes else EXIT_OK
        result = apply_plan(plan, registry)
        _emit(settings, replace(report, result=result))
        return EXIT_OK
    finally:
        registry.close()


def _run(
    ctx: click.Context, given: dict[str, Any], action: Callable[[Settings], int], **forced: Any
) -> None:
    settings: Settings | None = None
    try:
        settings = _settings(ctx, given, **forced)
        code = action(settings)
    except ReconcilerError as exc:
        code = _fail(settings, exc)
    ctx.exit(code)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@run_options
@click.version_option(package_name="reconciler")
@click.pass_context
def cli(ctx: click.Context, /, **given: Any) -> None:
    """Reconcile a data-source registry with the manifests in git.

    With no command, `reconcile` applies: it validates every manifest, plans, and writes the
    changes to the registry in one transaction. `reconcile --dry-run` shows the plan only.

    \b
    Exit codes: 0 success; 1 error (invalid manifests, unreachable registry, failed apply);
                2 changes pending (only with --detailed-exitcode).
    """
    ctx.obj = given
    if ctx.invoked_subcommand is None:
        _run(ctx, {}, _reconcile)


@cli.command()
@run_options
@click.pass_context
def plan(ctx: click.Context, /, **given: Any) -> None:
    """Show what apply would change; write nothing (same as --dry-run)."""
    _run(ctx, given, _reconcile, dry_run=True)


@cli.command()
@run_options
@click.pass_context
def apply(ctx: click.Context, /, **given: Any) -> None:
    """Validate, plan and apply the changes to the registry (same as `reconcile`)."""
    _run(ctx, given, _reconcile)


@cli.command()
@run_options
@click.pass_context
def validate(ctx: click.Context, /, **given: Any) -> None:
    """Check every manifest and report all problems as FILE:LINE: message. No registry is opened."""

    def action(settings: Settings) -> int:
        from .manifests import find_manifest_files, load_manifests

        manifests = load_manifests(settings.sources_dir)
        files = len(find_manifest_files(settings.sources_dir))
        if settings.output == "json":
            import json

            from .reporters import FORMAT_VERSION

            click.echo(
                json.dumps(
                    {
                        "format_version": FORMAT_VERSION,
                        "kind": "validate",
                        "valid": True,
                        "files": files,
                        "sources": len(manifests),
                    },
                    indent=2,
                )
            )
        else:
            click.echo(
                f"{len(manifests)} source{'s' if len(manifests) != 1 else ''} in {files} "
                f"file{'s' if files != 1 else ''}: all valid."
            )
        return EXIT_OK

    _run(ctx, given, action)


@cli.group()
def registry() -> None:
    """Manage the registry store itself."""


@registry.command("init")
@run_options
@click.pass_context
def registry_init(ctx: click.Context, /, **given: Any) -> None:
    """Create or migrate the registry's tables (idempotent; also done on first apply)."""

    def action(settings: Settings) -> int:
        store = open_registry(settings.registry, writable=True)
        try:
            applied = store.init()
        finally:
            store.close()
        state = f"{applied} migration(s) applied" if applied else "already up to date"
        click.echo(f"Registry {store.display_url}: {state}.")
        return EXIT_OK

    _run(ctx, given, action)


def main() -> None:
    cli(prog_name="reconcile")
