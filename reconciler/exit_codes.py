"""The exit-code contract: what each kind of run exits with. The CLI only maps.

0 success; 1 error (invalid input, usage, unreachable registry, refused apply); 2 changes
pending (plan with --detailed-exitcode) or drift; 3 a breaking schema change under
`schema_policy: fail`. A run that checked several things exits with the most serious.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.errors import EXIT_BREAKING_SCHEMA, EXIT_CHANGES, EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from reconciler.models import ApplyResult, Plan

__all__ = [
    "EXIT_BREAKING_SCHEMA",
    "EXIT_CHANGES",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_USAGE",
    "for_apply",
    "for_drift",
    "for_plan",
    "with_drift_failure",
    "worst",
]

# A usage error (unknown command or option, bad value) is an error: never "changes pending".
EXIT_USAGE = EXIT_ERROR


def worst(*codes: int) -> int:
    """The exit code of a run that checked several things: 3, then 1, then 2, then 0."""
    for code in (EXIT_BREAKING_SCHEMA, EXIT_ERROR, EXIT_CHANGES):
        if code in codes:
            return code
    return EXIT_OK


def for_plan(plan: Plan, *, detailed: bool, force_conflicts: bool) -> int:
    """A plan that apply would refuse is an error (the plan shows why); else 0, or 2 if
    changes are pending and --detailed-exitcode was asked."""
    if plan.blocked or plan.guard or (plan.has_conflicts and not force_conflicts):
        return EXIT_ERROR
    return EXIT_CHANGES if detailed and plan.has_changes else EXIT_OK


def for_apply(result: ApplyResult) -> int:
    return EXIT_ERROR if result.refused else EXIT_OK


def for_drift(plan: Plan) -> int:
    return EXIT_CHANGES if plan.has_drift else EXIT_OK


def with_drift_failure(code: int, plan: Plan | None, *, fail_on_drift: bool) -> int:
    """--fail-on-drift: a successful run that found drift exits 2."""
    if fail_on_drift and code == EXIT_OK and plan is not None and plan.has_drift:
        return EXIT_CHANGES
    return code
