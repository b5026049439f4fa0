"""What a reconcile run is asked to do, and what it gives back."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from reconciler.backends.base import DEFAULT_LOCK_TIMEOUT_S, ConnectOptions
from reconciler.manifests.variables import Scope
from reconciler.models import ApplyResult, Manifest, Plan


@dataclass(frozen=True)
class Options:
    sources_dir: Path
    registry: str
    owner: str = "reconciler"
    prune: bool = False
    strict: bool = False
    max_deletes: int = 10
    force_deletes: bool = False
    force_conflicts: bool = False
    # Replace records whose lifecycle.prevent_destroy is set (a replace deletes).
    force_replaces: bool = False
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S
    # --select / --exclude (planning/selection.py): the plan covers only these sources.
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    # Beyond the registry URL: the state store and timeout of an http(s) registry.
    connect: ConnectOptions = field(default_factory=ConnectOptions)
    # Variables and environment the manifests are resolved in (manifests/variables.py).
    # None: RECONCILER_VAR_* and RECONCILER_ENVIRONMENT only.
    scope: Scope | None = None
    # Content-addressed planning (planning/fast_plan.py) where it applies; False when the
    # caller needs every manifest parsed (--schema checks every source).
    digests: bool = True
    # The caller checks the schema of sources declaring `columns`/`schema_policy` (an
    # apply's loop): the fast path reads every file that may declare them.
    declared: bool = False

    @property
    def apply_connect(self) -> ConnectOptions:
        """An apply locks its owner only, where the registry can (PostgreSQL): teams applying
        their own sources into one registry do not wait for each other."""
        return replace(self.connect, lock_owner=self.owner)


@dataclass(frozen=True)
class Outcome:
    registry: str
    manifests: list[Manifest]
    plan: Plan
    result: ApplyResult | None = None
    # A dry-run against a registry that does not exist yet: every source will be created.
    registry_missing: bool = False
    # How many sources, when content-addressed planning read only some `manifests`.
    count: int | None = None

    @property
    def sources(self) -> int:
        return len(self.manifests) if self.count is None else self.count


# RECONCILER_FULL_PLAN=1 plans every source in full (for comparisons and benchmarks).
FULL_PLAN = bool(os.environ.get("RECONCILER_FULL_PLAN"))
