"""The report model every renderer reads, and the phrases several renderers share.

Renderers import this module, never the `reporters` package (which dispatches to them),
nor each other: each format can change without touching another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.errors import Problem

if TYPE_CHECKING:  # pydantic is imported by the commands that build plans, not by --help
    from reconciler.models import ApplyResult, Plan
    from reconciler.tableschema.report import SchemaReport

FORMAT_VERSION = "1.0"
FORMATS = ("text", "json", "markdown", "junit", "github")


@dataclass(frozen=True)
class Report:
    """What one run of the reconciler found and did.

    `kind` is what was asked: validate, plan, apply, drift or schema.
    """

    kind: str
    registry: str
    sources_dir: str
    plan: Plan | None = None
    result: ApplyResult | None = None
    problems: list[Problem] = field(default_factory=list)
    sources: int = 0
    files: int = 0
    # Schema changes of the live tables: `reconcile schema`, or a plan/apply with --schema.
    schema: SchemaReport | None = None


def show(value: Any) -> str:
    """A value as a reviewer reads it in a diff: strings quoted, lists and maps as JSON."""
    return _SHOW(value)


# json.dumps with options builds an encoder per call: a plan of 10,000 creates shows 80,000.
_SHOW = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def summary_line(plan: Plan) -> str:
    replace = plan.count("replace")
    replaces = f"{replace} to replace, " if replace else ""
    return (
        f"Plan: {plan.count('create')} to create, {plan.count('update')} to update, "
        f"{replaces}{plan.count('delete')} to delete."
    )


def applied_counts(created: int, updated: int, replaced: int, deleted: int) -> str:
    """ "1 created, 0 updated, 0 deleted"; replacements only where a registry made some."""
    replaces = f"{replaced} replaced, " if replaced else ""
    return f"{created} created, {updated} updated, {replaces}{deleted} deleted"
