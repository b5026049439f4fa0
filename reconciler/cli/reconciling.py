"""Plan and apply, shared by `reconcile` (bare), `reconcile plan` and `reconcile apply`."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler import exit_codes
from reconciler.cli.running import emit, run_settings
from reconciler.cli.settings import Settings
from reconciler.reporters import Report

if TYPE_CHECKING:  # imported when used: the schema check loads the database driver
    from reconciler.models import Manifest
    from reconciler.tableschema.check import SchemaOptions, SchemaReport
    from reconciler.workflow.run import Options, Outcome


def run_options(s: Settings) -> Options:
    from reconciler.workflow.run import Options  # with pydantic and the parsers: not for --help

    # Every option of a run is a setting of the same name (a missing one fails every run).
    return Options(**{f.name: getattr(s, f.name) for f in fields(Options)})


def report(kind: str, s: Settings, outcome: Outcome, schema: SchemaReport | None = None) -> Report:
    return Report(
        kind=kind,
        registry=outcome.registry,
        sources_dir=s.sources_dir.as_posix(),
        plan=outcome.plan,
        result=outcome.result,
        sources=len(outcome.manifests),
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
    """With --schema, the schema section of a plan (records nothing) or of an apply."""
    if not s.schema:
        return None
    from reconciler.tableschema.check import check_registry

    _, found = check_registry(
        manifests, s.registry, schema_options(s, record=record), connect=s.connect
    )
    return found


def _with_schema(code: int, schema: SchemaReport | None, s: Settings) -> int:
    if schema is None:
        return code
    return exit_codes.worst(code, schema.exit_code(detailed=s.detailed_exitcode))


def reconcile(
    s: Settings, *, dry_run: bool, out: Path | None = None, plan_file: Path | None = None
) -> None:
    options = run_options(s)

    def action() -> int:
        from reconciler.workflow import run as workflow
        from reconciler.workflow import saved_plans

        if dry_run:
            outcome = workflow.save_plan(options, out) if out else workflow.dry_run(options)
            schema = _schema_check(s, outcome.manifests, record=False)
            emit(report("plan", s, outcome, schema), s.stdout)
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
        outcome = workflow.apply(options, saved)
        schema = _schema_check(s, outcome.manifests, record=True)
        emit(report("apply", s, outcome, schema), s.stdout)
        assert outcome.result is not None
        return _with_schema(exit_codes.for_apply(outcome.result), schema, s)

    run_settings(action, s, kind="plan" if dry_run else "apply")
