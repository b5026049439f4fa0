"""`reconcile schema` through a registry's API (the Sources API's `GET /v1/sources/{id}/schema`).

The registry reads each live table itself, so the runner needs no database credentials.
The API reports names and types only: nullability and column positions are unknown, so
neither is judged (no nullability finding, no rename detection).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reconciler.backends.base import SchemaSnapshot
from reconciler.models import Manifest, ObservedColumn, ObservedTable, Outcome, Unreachable
from reconciler.redaction import REDACTOR


def observe_through(
    live_schemas: Callable[[Sequence[str]], Mapping[str, Any]],
    manifests: Sequence[Manifest],
    baselines: Mapping[str, SchemaSnapshot],
) -> dict[str, Outcome]:
    """Every source's live table as the registry's API reports it: names and types only.
    Nullability is unknown, so each column keeps what the `columns` contract (or else the
    baseline) says of it and is never judged on it."""
    found = live_schemas([m.name for m in manifests])
    outcomes: dict[str, Outcome] = {}
    for manifest in manifests:
        live = found[manifest.name]
        if isinstance(live, Unreachable):
            outcomes[manifest.name] = live.model_copy(
                update={"reason": REDACTOR.scrub(live.reason)}
            )
            continue
        baseline = baselines.get(manifest.name.casefold())
        known = (
            {str(c["name"]): bool(c.get("nullable", True)) for c in baseline.columns}
            if (baseline)
            else {}
        )
        known.update({c.name: c.nullable for c in manifest.columns or ()})
        outcomes[manifest.name] = ObservedTable(
            source=manifest.name,
            columns=tuple(
                ObservedColumn(
                    name=c["name"],
                    type=c["type"],
                    nullable=known.get(c["name"], True),
                    position=i + 1,
                )
                for i, c in enumerate(live.columns)
            ),
        )
    return outcomes
