"""Plan and apply, shared by `reconcile` (bare), `reconcile plan` and `reconcile apply`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler import exit_codes
from reconciler.cli.running import emit, run_settings
from reconciler.cli.settings import Settings
from reconciler.errors import ReconcilerError
from reconciler.reporters import Report
from reconciler.reporters.escaping import terminal

if TYPE_CHECKING:  # imported when used: the schema check loads the database driver
    from reconciler.manifests.variables import Scope
    from reconciler.models import Manifest, Plan
    from reconciler.tableschema.check import SchemaOptions, SchemaReport
    from reconciler.workflow.run import Options, Outcome


def scope(s: Settings) -> Scope:
    """The variables and environment of this run (--var-file read here: a bad one stops it)."""
    from reconciler.manifests.variables import load_scope

    return load_scope(s.var_file, s.environment)


def run_options(s: Settings) -> Options:
    from reconciler.workflow.run import Options  # with pydantic and the parsers: not for --help

    return Options(
        sources_dir=s.sources_dir,
        registry=s.registry,
        owner=s.owner,
        prune=s.prune,
        strict=s.strict,
        max_deletes=s.max_deletes,
        force_deletes=s.force_deletes,
        force_conflicts=s.force_conflicts,
        force_replaces=s.force_replaces,
        lock_timeout=s.lock_timeout,
        select=s.select,
        exclude=s.exclude,
        connect=s.connect,
        scope=scope(s),
        # Content-addressed planning reads only what changed; --schema checks every source.
        digests=not s.schema,
        declared=not s.no_schema,
    )


def selected(s: Settings, manifests: list[Manifest]) -> list[Manifest]:
    """The manifests inside --select / --exclude (all of them without either)."""
    from reconciler.planning.selection import parse, select_manifests

    return select_manifests(
        parse(s.select, s.exclude), manifests, sources_dir=s.sources_dir.as_posix()
    )


def report(kind: str, s: Settings, outcome: Outcome, schema: SchemaReport | None = None) -> Report:
    return Report(
        kind=kind,
        registry=outcome.registry,
        sources_dir=s.sources_dir.as_posix(),
        plan=outcome.plan,
        result=outcome.result,
        sources=len(selected(s, outcome.manifests)) if s.select or s.exclude else outcome.sources,
        schema=schema,
    )


def schema_options(
    s: Settings, *, record: bool, names: tuple[str, ...] = (), accept: tuple[str, ...] = ()
) -> SchemaOptions:
    from reconciler.tableschema.check import SchemaOptions

    return SchemaOptions(
        names=names,
        accept=accept,
        perspective=s.perspective,
        timeout=s.timeout,
        record=record,
        lock_timeout=s.lock_timeout,
    )


def _schema_check(s: Settings, manifests: list[Manifest], *, record: bool) -> SchemaReport | None:
    """The schema section of a plan (with --schema; records nothing) or of an apply.

    An apply (the cron job) checks the sources that declare `columns` or `schema_policy`
    unless --no-schema; --schema checks every source. A plan without --schema does no
    network work beyond the registry.
    """
    if not s.schema and (not record or s.no_schema):
        return None  # before any import: the check loads the database driver
    manifests = selected(s, manifests)
    if not s.schema:
        from reconciler.tableschema.report import declared

        manifests = declared(manifests)
        if not manifests:
            return None
    from reconciler.tableschema.check import NoSnapshots, check_registry

    try:
        _, found = check_registry(
            manifests, s.registry, schema_options(s, record=record), connect=s.connect
        )
    except NoSnapshots as exc:
        if s.schema:
            raise
        click.echo(f"note: schema checks skipped: {exc}", err=True)
        return None
    return found


def partial_note(s: Settings, outcome: Outcome) -> None:
    """Like Terraform's -target warning: a selection leaves the rest unconverged."""
    if s.select or s.exclude:
        count, total = len(selected(s, outcome.manifests)), len(outcome.manifests)
        click.echo(
            f"note: partial run (--select/--exclude): {count} of {total} sources; the rest "
            "of the registry is left as it is until a full run.",
            err=True,
        )


def _with_schema(code: int, schema: SchemaReport | None, s: Settings) -> int:
    if schema is None:
        return code
    if not s.schema:  # the apply loop's own check: only a breaking change under fail exits
        return exit_codes.worst(code, exit_codes.EXIT_BREAKING_SCHEMA if schema.failing else 0)
    return exit_codes.worst(code, schema.exit_code(detailed=s.detailed_exitcode))


def notify(
    s: Settings,
    plan: Plan | None = None,
    schema: SchemaReport | None = None,
    *,
    error: str | None = None,
) -> None:
    """With --notify, post this run's new findings; a failed post is a warning (the findings
    stay new, so the next run tries again), never a changed exit code."""
    if not s.notify:
        return
    from reconciler.workflow import notify as notifying

    found = notifying.findings(plan, schema, error)
    if not found:
        return
    try:
        sent = notifying.notify(
            s.notify,
            found,
            registry=s.registry,
            owner=s.owner,
            connect=s.connect,
            timeout=s.http_timeout,
        )
    except ReconcilerError as exc:
        sent = notifying.Notified(0, str(exc))
    if sent.error:
        click.echo(f"warning: {terminal(sent.error)}", err=True)
    elif sent.posted:
        click.echo(f"Notified: {sent.posted} new finding(s).", err=True)


def reconcile(
    s: Settings, *, dry_run: bool, out: Path | None = None, plan_file: Path | None = None
) -> None:
    if s.schema and s.no_schema:
        raise click.UsageError("--schema and --no-schema cannot be combined")

    def action() -> int:
        from reconciler.workflow import run as workflow
        from reconciler.workflow import saved_plans

        options = run_options(s)  # inside: a bad --var-file is a one-line error

        if dry_run:
            outcome = workflow.save_plan(options, out) if out else workflow.dry_run(options)
            schema = _schema_check(s, outcome.manifests, record=False)
            emit(report("plan", s, outcome, schema), s.stdout)
            partial_note(s, outcome)
            if outcome.registry_missing:
                click.echo(
                    f"note: registry {outcome.registry} does not exist yet; "
                    "every source will be created.",
                    err=True,
                )
            if out:
                if saved_plans.refusal(outcome.plan) is not None:
                    # apply would refuse it: no file that says otherwise
                    click.echo(f"error: plan not saved to {out}: apply would refuse it", err=True)
                    return _with_schema(exit_codes.EXIT_ERROR, schema, s)
                click.echo(f"Plan saved to {out}; apply it with: reconcile apply {out}", err=True)
            code = exit_codes.for_plan(
                outcome.plan, detailed=s.detailed_exitcode, force_conflicts=s.force_conflicts
            )
            return _with_schema(code, schema, s)
        saved = saved_plans.load(plan_file) if plan_file else None
        try:
            outcome = workflow.apply(options, saved)
        except ReconcilerError as exc:
            notify(s, error=str(exc))
            raise
        schema = _schema_check(s, outcome.manifests, record=True)
        emit(report("apply", s, outcome, schema), s.stdout)
        partial_note(s, outcome)
        notify(s, outcome.plan, schema)
        assert outcome.result is not None
        return _with_schema(exit_codes.for_apply(outcome.result), schema, s)

    run_settings(action, s, kind="plan" if dry_run else "apply")
