"""The settings of one command, built once from its click parameters.

Every default lives here (the field defaults of `Settings`); every environment variable too
(`ENVVARS`). The options in `options.py` read both, so `--help` shows them and click does
the env/default merge.

Options given before the subcommand (`reconcile --owner x plan`): a subcommand honours those
it has itself (unless it is given again after the subcommand) and refuses the others, so no
option is silently ignored (`reconcile --dry-run import` is an error, not an import).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import click
from click.core import ParameterSource

from reconciler.backends import DEFAULT_REGISTRY, DEFAULT_STATE
from reconciler.backends.base import DEFAULT_LOCK_TIMEOUT_S, ConnectOptions

# Option value given on the command line wins; then these variables; then the defaults.
ENVVARS = {
    "registry": "RECONCILER_REGISTRY",
    "owner": "RECONCILER_OWNER",
    "state": "RECONCILER_STATE",
    "environment": "RECONCILER_ENVIRONMENT",
    "notify": "RECONCILER_NOTIFY_URL",
}


@dataclass(frozen=True)
class Target:
    """One `--output` value: a format, to stdout (path None) or to a file."""

    format: str
    path: Path | None = None

    def __str__(self) -> str:
        return self.format if self.path is None else f"{self.format}={self.path}"


@dataclass(frozen=True)
class Settings:
    """What a command was asked to do, typed; the field defaults are the CLI's defaults."""

    sources_dir: Path = Path("sources.d")
    registry: str = DEFAULT_REGISTRY
    state: str = DEFAULT_STATE
    http_timeout: float = 10.0
    owner: str = "reconciler"
    output: tuple[Target, ...] = (Target("text"),)
    prune: bool = False
    max_deletes: int = 10
    force_deletes: bool = False
    force_conflicts: bool = False
    force_replaces: bool = False
    strict: bool = False
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S
    keep_runs: int = ConnectOptions().keep_runs
    detailed_exitcode: bool = False
    schema: bool = False
    timeout: float = 10.0
    perspective: Literal["consumer", "producer"] | None = None
    report: Path | None = None
    metrics_file: Path | None = None
    fail_on_drift: bool = False
    progress: bool | None = None
    dry_run: bool = False
    no_record: bool = False
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    no_schema: bool = False
    # Environments (manifests/variables.py): ${var:NAME} values and `environments:` lists.
    var_file: Path | None = None
    environment: str | None = None
    # Where a run that needs a human posts its new findings (a secret: shown redacted).
    notify: str | None = None
    # The settings given on the command line, before or after the subcommand.
    given: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def stdout(self) -> str:
        """The one format printed to stdout."""
        return next((t.format for t in self.output if t.path is None), "text")

    @property
    def files(self) -> tuple[Target, ...]:
        return tuple(t for t in self.output if t.path is not None)

    @property
    def connect(self) -> ConnectOptions:
        return ConnectOptions(
            state=self.state, http_timeout=self.http_timeout, keep_runs=self.keep_runs
        )


NAMES = frozenset(f.name for f in fields(Settings)) - {"given"}


def default(name: str) -> Any:
    """The default of a setting, for its click option."""
    return Settings.__dataclass_fields__[name].default


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE


def from_context(ctx: click.Context) -> Settings:
    """Settings of the running command: its own parameters, then those given before it.

    Raises a usage error naming an option given before the subcommand that it does not have.
    """
    root = ctx.find_root()
    values = {name: value for name, value in ctx.params.items() if name in NAMES}
    given = {name for name in values if _given(ctx, name)}
    if root is not ctx:
        for name, value in root.params.items():
            if name not in NAMES or not _given(root, name):
                continue
            if name not in ctx.params:
                raise click.UsageError(
                    f"option {_flag(root, name)} has no effect on `{command_path(ctx)}`", ctx
                )
            if name not in given:
                values[name] = value
                given.add(name)
    return replace(Settings(**_normalised(values)), given=frozenset(given))


def command_path(ctx: click.Context) -> str:
    """`reconcile registry init`, whatever name the program was started under."""
    names: list[str] = []
    while ctx.parent is not None:
        names.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["reconcile", *names])


def _flag(ctx: click.Context, name: str) -> str:
    """How the user spells the option `name` (its long form)."""
    for param in ctx.command.params:
        if param.name == name:
            return max(param.opts, key=len)
    return name


def _normalised(values: dict[str, Any]) -> dict[str, Any]:
    output = values.get("output")
    if isinstance(output, str):  # a command whose --output is a plain choice (history)
        values["output"] = (Target(output),)
    elif not output:
        values.pop("output", None)
    return values
