"""`lifecycle.prevent_destroy` also guards a replace: a replace deletes the record first.

Registries without an update for some field (the Sources API for any API field, a provider
for a field it cannot patch) carry out such a change as delete-then-create, under a new id.
A record the manifests protect from deletion must not lose its id that way by surprise:
the plan blocks the replace unless `--force-replaces` confirms it. Blocked here, in one
place, after the registry's own review decided which updates are replaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.models import Blocked, Plan, Record


def guard_replaces(plan: Plan, records: Iterable[Record], *, force: bool) -> Plan:
    """The plan with each replace of a protected record blocked, unless `force`.

    Protected: `prevent_destroy` in the manifest now, or in what was last applied (a
    protection is lifted by applying `prevent_destroy: false` first, as for a prune).
    """
    if force or not any(c.action == "replace" for c in plan.changes):
        return plan
    last = {r.id: r.last_applied for r in records}
    changes = []
    blocked = list(plan.blocked)
    for change in plan.changes:
        if change.action == "replace" and (
            _protects(change.document) or _protects(last.get(change.record_id or ""))
        ):
            blocked.append(
                Blocked(
                    name=change.name,
                    reason="lifecycle.prevent_destroy is set and this change replaces the "
                    "record (deletes it and registers it again under a new id); pass "
                    "--force-replaces to replace it anyway",
                    file=change.file,
                    line=change.line,
                )
            )
        else:
            changes.append(change)
    return plan.model_copy(update={"changes": tuple(changes), "blocked": tuple(blocked)})


def _protects(doc: Mapping[str, Any] | None) -> bool:
    lifecycle = (doc or {}).get("lifecycle") or {}
    return bool(lifecycle.get("prevent_destroy"))
