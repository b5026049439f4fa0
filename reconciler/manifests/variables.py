"""Environments from one repository: `${var:NAME}` values and `environments: [...]`.

Variables are not secrets: they are resolved when the manifests are loaded, so plans show
(and saved plans and digests hold) the resolved values. They come from `--var-file FILE` (a
flat YAML mapping) and from `RECONCILER_VAR_NAME` environment variables; the file wins, as
Terraform's -var-file wins over TF_VAR_ (what is committed beats what a runner happens to
have set). A secret field cannot take a variable: secrets use `${env:...}`/`${file:...}`.

A manifest with `environments: [prod, staging]` is only for those environments (selected by
`--environment` / RECONCILER_ENVIRONMENT); in any other, or with none selected, it is skipped
entirely: not validated beyond its YAML, not planned, and its record is out of the run's
reach, so --prune never deletes it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import ReconcilerError
from reconciler.secret_refs import VARIABLE

ENV_PREFIX = "RECONCILER_VAR_"
ENVIRONMENT_VAR = "RECONCILER_ENVIRONMENT"
REFERENCE = re.compile(r"\$\{var:([^}]*)\}")
MAX_VAR_FILE = 1024 * 1024
_SCALARS = (str, int, float, bool)

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Scope:
    """The variables and the environment one run resolves manifests in."""

    values: Mapping[str, Any] = field(default_factory=dict)
    environment: str | None = None

    def includes(self, data: Any) -> bool:
        """Whether a document is for this run's environment (no `environments`: for all)."""
        if not isinstance(data, dict):
            return True
        wanted = data.get("environments")
        if not isinstance(wanted, list):
            return True  # absent, or invalid: validation reports it
        return self.environment is not None and self.environment in wanted


def load_scope(
    var_file: Path | None, environment: str | None, environ: Mapping[str, str] | None = None
) -> Scope:
    """Variables from RECONCILER_VAR_* and then the file (which wins), and the environment."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {
        key[len(ENV_PREFIX) :]: value
        for key, value in env.items()
        if key.startswith(ENV_PREFIX) and VARIABLE.fullmatch(key[len(ENV_PREFIX) :])
    }
    if var_file is not None:
        values.update(_read_var_file(var_file))
    return Scope(values, environment or None)


def _read_var_file(path: Path) -> dict[str, Any]:
    import yaml  # only with --var-file: a no-op plan does not import the YAML parser

    where = path.as_posix()
    try:
        if path.stat().st_size > MAX_VAR_FILE:
            raise ReconcilerError(f"{where}: var file larger than {MAX_VAR_FILE} bytes")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReconcilerError(f"cannot read var file {where}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ReconcilerError(f"cannot read var file {where}: not UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ReconcilerError(f"{where}{line}: not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ReconcilerError(f"{where}: a var file must be a mapping of NAME: value")
    for key, value in data.items():
        if not isinstance(key, str) or not VARIABLE.fullmatch(key):
            raise ReconcilerError(f"{where}: invalid variable name {key!r}")
        if not isinstance(value, _SCALARS):
            raise ReconcilerError(
                f"{where}: variable {key} must be a string, number or boolean (a flat mapping)"
            )
    return dict(data)


@dataclass(frozen=True)
class Misuse:
    """A `${var:...}` that cannot be resolved: where (path) and why."""

    path: Path_
    message: str


def resolve(
    data: Any, scope: Scope, *, sensitive: Callable[[Path_], bool]
) -> tuple[Any, list[Misuse]]:
    """The document with every `${var:NAME}` replaced, and each reference that cannot be.

    A value that is exactly one reference takes the variable's type (`port: ${var:PORT}`
    with `PORT: 5432` is a number); inside a longer string it is interpolated as text.
    """
    problems: list[Misuse] = []

    def walk(value: Any, path: Path_) -> Any:
        if isinstance(value, str):
            return _string(value, path) if "${var:" in value else value
        if isinstance(value, dict):
            return {k: walk(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*path, i)) for i, v in enumerate(value)]
        return value

    def _string(text: str, path: Path_) -> Any:
        if sensitive(path):
            problems.append(
                Misuse(
                    path,
                    f"{_dotted(path)}: a secret field cannot use ${{var:...}} (variables are "
                    "shown in plans); use ${env:...} or ${file:...}",
                )
            )
            return text
        whole = REFERENCE.fullmatch(text)
        if whole is not None:
            return _value(whole[1], path, text)
        return REFERENCE.sub(lambda m: str(_value(m[1], path, m[0])), text)

    def _value(name: str, path: Path_, original: str) -> Any:
        if not VARIABLE.fullmatch(name):
            problems.append(Misuse(path, f"{_dotted(path)}: invalid variable name '{name}'"))
            return original
        if name not in scope.values:
            problems.append(
                Misuse(
                    path,
                    f"{_dotted(path)}: variable '{name}' is not set (in --var-file or "
                    f"{ENV_PREFIX}{name})",
                )
            )
            return original
        return scope.values[name]

    if not isinstance(data, dict):
        return data, problems
    resolved = {k: v if k == "environments" else walk(v, (k,)) for k, v in data.items()}
    return resolved, problems


def mentions(data: Any) -> bool:
    """Whether a document has a variable or an `environments` key (the fast path leaves
    those documents to the exact one)."""
    if isinstance(data, dict):
        return "environments" in data or any(_has_reference(v) for v in data.values())
    return False


def _has_reference(value: Any) -> bool:
    if isinstance(value, str):
        return "${var:" in value
    if isinstance(value, dict):
        return any(_has_reference(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_reference(v) for v in value)
    return False


def _dotted(path: Any) -> str:
    from reconciler.manifests.yaml_lines import dotted  # with the YAML parser

    return dotted(path)
