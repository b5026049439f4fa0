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

from .backends import open_registry
from .execution import apply_plan
from .manifests import load_manifests
from .planning import plan

__all__ = ["apply_plan", "load_manifests", "open_registry", "plan"]
