"""reconciler: a declarative GitOps reconciler for data-source registries.

The library API (the CLI is one client of it):

    from reconciler import load_manifests, open_registry, plan, apply_plan
    manifests = load_manifests(Path("sources.d"))
    registry = open_registry("sqlite:///.reconciler/registry.db", writable=True)
    registry.init()
    p = plan(manifests, registry.list_records(), owner="reconciler")
    apply_plan(p, registry)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.backends import open_registry
    from reconciler.manifests.loading import load_manifests
    from reconciler.planning.plan import plan
    from reconciler.workflow.writes import apply_plan

__all__ = ["apply_plan", "load_manifests", "open_registry", "plan"]
# Imported on first use, so that `reconcile --help` does not load pydantic and the parsers.
_LAZY = {
    "apply_plan": ".workflow.writes",
    "load_manifests": ".manifests.loading",
    "open_registry": ".backends",
    "plan": ".planning.plan",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
