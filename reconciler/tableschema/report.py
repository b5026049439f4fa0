"""The result of a schema check: per-source verdicts and the run's exit code.

Kept apart from the workflow (schemacheck.py) so reporters and CI renderers can read a
report without the machinery that produced it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from reconciler.errors import EXIT_BREAKING_SCHEMA, EXIT_CHANGES, EXIT_ERROR, EXIT_OK
from reconciler.models import Frozen, Manifest
from reconciler.tableschema.classification import Perspective, SchemaChange

Against = Literal["contract", "snapshot", "source"]
# first: nothing to compare with yet; changed: non-breaking, accepted automatically;
# accepted: a breaking change accepted by --accept or by the columns contract this run;
# breaking: a breaking change not accepted (reported on every run until it is).
Status = Literal["first", "unchanged", "changed", "accepted", "breaking", "missing", "unreachable"]


class SchemaFinding(SchemaChange):
    """A classified change and what it was compared against: the declared `columns`
    contract, the last accepted snapshot, or neither (the table or database itself)."""

    against: Against


class SourceSchema(Frozen):
    """One source's verdict for one run."""

    name: str
    source_type: str
    status: Status
    policy: Literal["warn", "fail"]
    perspective: Perspective
    findings: tuple[SchemaFinding, ...] = ()
    file: str = ""
    line: int = 0
    baseline_at: datetime | None = None
    accepted_by: str = ""

    @property
    def failing(self) -> bool:
        """Breaking and unaccepted under `schema_policy: fail`: the run exits 3."""
        return self.policy == "fail" and self.status in ("breaking", "missing")

    @property
    def pending(self) -> bool:
        """Worth a non-zero --detailed-exitcode: anything but info or an accepted change."""
        if self.status in ("breaking", "missing", "unreachable"):
            return True
        return self.status == "changed" and any(f.severity != "info" for f in self.findings)


class SchemaReport(Frozen):
    sources: tuple[SourceSchema, ...]
    record: bool
    recorded: int = 0
    databases: int = 0
    queries: int = 0
    seconds: float = 0.0

    def count(self, status: Status) -> int:
        return sum(1 for s in self.sources if s.status == status)

    @property
    def failing(self) -> tuple[SourceSchema, ...]:
        return tuple(s for s in self.sources if s.failing)

    @property
    def unreachable(self) -> tuple[SourceSchema, ...]:
        return tuple(s for s in self.sources if s.status == "unreachable")

    @property
    def pending(self) -> bool:
        return any(s.pending for s in self.sources)

    def exit_code(self, *, detailed: bool = False) -> int:
        """3 beats 1 beats 2: a confirmed breaking change is the most specific signal."""
        if self.failing:
            return EXIT_BREAKING_SCHEMA
        if self.unreachable:
            return EXIT_ERROR
        return EXIT_CHANGES if detailed and self.pending else EXIT_OK


def declared(manifests: Sequence[Manifest]) -> list[Manifest]:
    """The sources an apply checks by default: those that declare `columns` or set
    `schema_policy` (a default policy on a source without a contract asks for nothing)."""
    return [m for m in manifests if m.columns is not None or "schema_policy" in m.model_fields_set]
