"""The click options shared by several commands; defaults and env vars come from settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler.cli import delivery
from reconciler.cli.settings import ENVVARS, default
from reconciler.reporters import FORMATS

F = TypeVar("F", bound=Callable[..., Any])


def option(*decls: str, name: str, **attrs: Any) -> Callable[[F], F]:
    """A click option for the setting `name`: its default, env var and both shown in --help."""
    attrs.setdefault("default", default(name))
    attrs.setdefault("show_default", True)
    if name in ENVVARS:
        attrs.update(envvar=ENVVARS[name], show_envvar=True)
    return click.option(*decls, name, **attrs)


def file_option(decl: str, *, help: str) -> Callable[[F], F]:
    """An option naming a file to read or write (never a directory), for the setting of the
    same name (`--metrics-file` sets `metrics_file`)."""
    name = decl.lstrip("-").replace("-", "_")
    return option(decl, name=name, type=click.Path(path_type=Path, dir_okay=False), help=help)


def flag(*decls: str, help: str, hidden: bool = False) -> Callable[[F], F]:
    name = decls[0].lstrip("-").replace("-", "_")
    return click.option(*decls, name, is_flag=True, default=False, help=help, hidden=hidden)


def with_options(*options: Callable[[F], F]) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        for each in reversed(options):
            func = each(func)
        return func

    return decorate


SOURCES = option(
    "--sources-dir",
    name="sources_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory of *.yaml/*.yml manifests, read recursively.",
)
# Environments from one repository: --var-file values for ${var:NAME} (RECONCILER_VAR_NAME
# too; the file wins) and the environment that `environments: [...]` lists are matched with.
VARIABLES: list[Callable[[F], F]] = [
    file_option(
        "--var-file",
        help="YAML mapping of NAME: value for ${var:NAME} in manifests (not for secrets); "
        "wins over RECONCILER_VAR_NAME.",
    ),
    option(
        "--environment",
        name="environment",
        help="The environment of this run: manifests with `environments:` not listing it "
        "are skipped (never pruned).",
    ),
]
REGISTRY_URL = option(
    "--registry",
    name="registry",
    help="Registry URL: sqlite:///PATH, postgresql://..., http(s)://... (the Sources API, "
    "token in RECONCILER_TOKEN) or PROVIDER+https://... (streamkap, airweave, airbyte-agents, "
    "splendor; see README).",
)
STATE = option(
    "--state",
    name="state",
    help="With an http(s) or provider registry: where ownership and last-applied state are "
    "kept, sqlite:///PATH or postgresql://... (share it between CI and cron).",
)
HTTP_TIMEOUT = option(
    "--http-timeout",
    name="http_timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="With an http(s) or provider registry: seconds to wait for each answer.",
)


def REGISTRY(func: F) -> F:
    """--registry, with the options an http(s) registry also needs."""
    return REGISTRY_URL(STATE(HTTP_TIMEOUT(func)))


OWNER = option(
    "--owner",
    name="owner",
    help="Owner id stored on the records this reconciler manages; records of other owners are "
    "never touched.",
)
OUTPUT = option(
    "--output",
    "-o",
    name="output",
    type=delivery.TargetType(),
    multiple=True,
    callback=delivery.check_targets,
    help=f"Output format ({', '.join(FORMATS)}); repeatable: one to stdout, the others to files "
    "as FORMAT=PATH, e.g. -o text -o json=report.json -o junit=junit.xml.",
)
LOCK_TIMEOUT = option(
    "--lock-timeout",
    name="lock_timeout",
    type=click.FloatRange(min=0),
    help="Seconds to wait for another run's lock before giving up.",
)
KEEP_RUNS = option(
    "--keep-runs",
    name="keep_runs",
    type=click.IntRange(min=0),
    help="Run-log retention: recording a run deletes all but the newest N runs (0: keep all).",
)
PRUNE_OPTIONS: list[Callable[[F], F]] = [
    flag("--prune", help="Also delete owned records whose manifest is gone."),
    option(
        "--max-deletes",
        name="max_deletes",
        type=click.IntRange(min=0),
        help="With --prune: refuse to delete more than N records.",
    ),
    flag(
        "--force-deletes",
        help="With --prune: delete even past the guard (over --max-deletes, over half of the "
        "owned records, or an empty sources directory).",
    ),
]
FORCE_CONFLICTS = flag(
    "--force-conflicts", help="Apply records changed both in git and outside git (git wins)."
)
FORCE_REPLACES = flag(
    "--force-replaces",
    help="Replace records whose lifecycle.prevent_destroy is set, where the registry can only "
    "change a field by replacing the record (it gets a new id).",
)
STRICT = flag(
    "--strict", help="Fail a plan when a ${env:...}/${file:...} reference cannot be resolved."
)
DETAILED_EXITCODE = flag(
    "--detailed-exitcode",
    help="With a plan: exit 0 when there is nothing to do, 2 when changes are pending "
    "(with --schema, also on a schema warning).",
)
SCHEMA_TUNING: list[Callable[[F], F]] = [
    option(
        "--timeout",
        name="timeout",
        type=click.FloatRange(min=0, min_open=True),
        help="Schema checks: seconds to wait for each database to connect and answer.",
    ),
    option(
        "--perspective",
        name="perspective",
        type=click.Choice(("consumer", "producer")),
        help="Schema checks: judge changes for readers (consumer) or writers (producer), "
        "instead of each source's schema_perspective.",
    ),
]
SCHEMA_OPTIONS: list[Callable[[F], F]] = [
    flag(
        "--schema",
        help="Also check every source's live table for schema changes (as `reconcile schema`; "
        "a plan records nothing); exit 3 on a breaking change under schema_policy: fail.",
    ),
    *SCHEMA_TUNING,
]


def _check_selectors(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> Any:
    """A bad selector is a usage error before anything is read."""
    from reconciler.planning.selection import SelectionError, parse

    try:
        parse(value)
    except SelectionError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


SELECTION: list[Callable[[F], F]] = [
    option(
        "--select",
        "-s",
        name="select",
        multiple=True,
        show_default=False,
        callback=_check_selectors,
        metavar="SELECTOR",
        help="Only these sources: name:GLOB (or a bare GLOB), tag:GLOB, path:PREFIX, "
        "type:GLOB; space-separated is a union, comma-joined an intersection; repeatable. "
        "For exceptional situations: the rest of the registry is left as it is.",
    ),
    option(
        "--exclude",
        name="exclude",
        multiple=True,
        show_default=False,
        callback=_check_selectors,
        metavar="SELECTOR",
        help="Leave out these sources (same selectors as --select); repeatable.",
    ),
]
NO_SCHEMA = flag(
    "--no-schema",
    help="Apply without checking the tables of sources that declare columns or "
    "schema_policy (checked by default on apply).",
)
# What each way of planning takes (a plan takes no lock; an apply is always strict).
PLAN_OPTIONS: list[Callable[[F], F]] = [
    *VARIABLES,
    *PRUNE_OPTIONS,
    FORCE_CONFLICTS,
    FORCE_REPLACES,
    STRICT,
    DETAILED_EXITCODE,
    *SCHEMA_OPTIONS,
    *SELECTION,
]
APPLY_OPTIONS: list[Callable[[F], F]] = [
    *VARIABLES,
    *PRUNE_OPTIONS,
    FORCE_CONFLICTS,
    FORCE_REPLACES,
    LOCK_TIMEOUT,
    KEEP_RUNS,
    DETAILED_EXITCODE,
    *SCHEMA_OPTIONS,
    NO_SCHEMA,
    *SELECTION,
]
BARE_OPTIONS: list[Callable[[F], F]] = [
    *VARIABLES,
    *PRUNE_OPTIONS,
    FORCE_CONFLICTS,
    FORCE_REPLACES,
    STRICT,
    LOCK_TIMEOUT,
    KEEP_RUNS,
    DETAILED_EXITCODE,
    *SCHEMA_OPTIONS,
    NO_SCHEMA,
    *SELECTION,
]
# Commands that print one thing to stdout (history, list, show): text or JSON only.
TEXT_OR_JSON = click.option(
    "--output",
    "-o",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
)
PROGRESS = click.option(
    "--progress/--no-progress",
    "progress",
    default=None,
    help="Show progress on stderr.  [default: on a terminal only, never when CI is set]",
)
# For cron and CI: what a run leaves behind besides its output (see delivery.py).
REPORT_HELP = (
    "Write the run's JSON report to FILE, with exit code, duration and error; written even "
    "when the run fails."
)
METRICS_HELP = (
    "Write Prometheus metrics of the run to FILE (*.prom, for node_exporter's textfile "
    "collector), atomically."
)
REPORT_OPTIONS: list[Callable[[F], F]] = [
    file_option("--report", help=REPORT_HELP),
    file_option("--metrics-file", help=METRICS_HELP),
    PROGRESS,
]
NOTIFY = option(
    "--notify",
    name="notify",
    metavar="URL",
    show_default=False,
    help="Post new findings (drift, conflict, breaking schema change, failed apply) to URL "
    "as Slack-compatible JSON, once each; the URL is a secret.",
)
FAIL_ON_DRIFT = flag(
    "--fail-on-drift", help="Exit 2 when records were changed outside git (even once converged)."
)
# `reconcile drift` exits 2 on drift anyway: it takes the others, not --fail-on-drift.
RUN_OPTIONS: list[Callable[[F], F]] = [*REPORT_OPTIONS, FAIL_ON_DRIFT]
