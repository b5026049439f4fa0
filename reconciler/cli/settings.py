"""The settings of one command, built once from its click parameters.

Every default lives here (the field defaults of `Settings`); every environment variable too
(`ENVVARS`). The options in `options.py` read both, so `--help` shows them and click does
the env/default merge. An option given before the subcommand (`reconcile --owner x plan`)
counts as given to the subcommand, unless the subcommand has it on its own command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import click
from click.core import ParameterSource

from reconciler.backends import DEFAULT_REGISTRY, DEFAULT_STATE
from reconciler.backends.base import DEFAULT_LOCK_TIMEOUT_S, ConnectOptions
from reconciler.cli.delivery import Target

# Option value given on the command line wins; then these variables; then the defaults.
ENVVARS = {
    "registry": "RECONCILER_REGISTRY",
    "owner": "RECONCILER_OWNER",
    "state": "RECONCILER_STATE",
}


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
    strict: bool = False
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S
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
    # The options given before the subcommand that it does not have (see `given_before`).
    unused_before: tuple[str, ...] = field(default=(), compare=False)

    @property
    def stdout(self) -> str:
        """The one format printed to stdout."""
        return next((t.format for t in self.output if t.path is None), "text")

    @property
    def files(self) -> tuple[Target, ...]:
        return tuple(t for t in self.output if t.path is not None)

    @property
    def connect(self) -> ConnectOptions:
        return ConnectOptions(state=self.state, http_timeout=self.http_timeout)


NAMES = frozenset(f.name for f in fields(Settings)) - {"unused_before"}


def default(name: str) -> Any:
    """The default of a setting, for its click option."""
    return Settings.__dataclass_fields__[name].default


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE


def from_context(ctx: click.Context) -> Settings:
    """Settings of the running command: its own parameters, then those given before it."""
    root = ctx.find_root()
    values: dict[str, Any] = {}
    unused: list[str] = []
    for name, value in ctx.params.items():
        if name in NAMES:
            values[name] = value
    if root is not ctx:
        for name, value in root.params.items():
            if name not in NAMES or not _given(root, name):
                continue
            if name not in ctx.params:
                unused.append(name)
                values[name] = value
            elif not _given(ctx, name):
                values[name] = value
    return replace(Settings(**_normalised(values)), unused_before=tuple(unused))


def _normalised(values: dict[str, Any]) -> dict[str, Any]:
    output = values.get("output")
    if isinstance(output, str):  # a command whose --output is a plain choice (history)
        values["output"] = (Target(output),)
    elif not output:
        values.pop("output", None)
    return values
