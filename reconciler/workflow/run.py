"""The reconcile workflow, in the order that makes it safe.

Validate every manifest, resolve every secret, and only then open the registry; take the
write lock before reading the state an apply is based on, so the plan and the writes see
the same registry.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from reconciler.actor import actor
from reconciler.backends import open_registry, redact_url
from reconciler.backends.base import (
    DEFAULT_LOCK_TIMEOUT_S,
    ConnectOptions,
    Registry,
    RunEntry,
    plan_review,
    shared_state,
)
from reconciler.errors import LockTimeout, ReconcilerError, RegistryMissing
from reconciler.manifests.documents import DesiredDocuments
from reconciler.manifests.loading import load_scoped
from reconciler.manifests.variables import Scope
from reconciler.models import ApplyResult, Manifest, Plan, Record
from reconciler.planning import selection
from reconciler.planning.plan import PruneGuard, SecretFingerprints, plan
from reconciler.secret_refs import ResolvedSecrets, fingerprint, resolve_all
from reconciler.workflow.replace_guard import guard_replaces
from reconciler.workflow.saved_plans import (
    PlanOptions,
    SavedPlan,
    StalePlan,
    check_fresh,
    check_same,
    manifests_digest,
    now,
    refusal,
    save,
    verify_mac,
)
from reconciler.workflow.writes import apply_plan


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


@dataclass(frozen=True)
class Outcome:
    registry: str
    manifests: list[Manifest]
    plan: Plan
    result: ApplyResult | None = None
    # A dry-run against a registry that does not exist yet: every source will be created.
    registry_missing: bool = False


@dataclass(frozen=True)
class _Prepared:
    """What a run knows before it opens the registry."""

    manifests: list[Manifest]
    secrets: ResolvedSecrets
    documents: DesiredDocuments
    # Names of manifests for another environment: their records are out of the run's reach.
    skipped: frozenset[str] = frozenset()


def _prepare(options: Options, *, dry_run: bool) -> _Prepared:
    loaded = load_scoped(options.sources_dir, allow_empty=options.prune, scope=options.scope)
    manifests = loaded.manifests
    documents = DesiredDocuments()
    secrets = resolve_all((documents(m) for m in manifests), strict=options.strict or not dry_run)
    return _Prepared(manifests, secrets, documents, loaded.skipped)


def _plan(options: Options, registry: Registry, prepared: _Prepared) -> tuple[Plan, list[Record]]:
    manifests, secrets, skipped = prepared.manifests, prepared.secrets, prepared.skipped
    key = registry.fingerprint_key()
    records = registry.list_records()
    # An API registry whose state store has never seen it may be blind to what it owns.
    state = shared_state(registry)
    if state is not None:
        state.refuse_blind(len(records))
    records = _in_scope(records, skipped, options.owner)
    fingerprints = SecretFingerprints(
        desired=secrets.fingerprints(key),
        of=(lambda value: fingerprint(key, value)) if key is not None else None,
    )
    guard = PruneGuard(
        max_deletes=options.max_deletes,
        force=options.force_deletes,
        sources_present=bool(manifests),
        selected=bool(options.select or options.exclude),
    )
    manifests, records = selection.select(
        selection.parse(options.select, options.exclude),
        manifests,
        records,
        sources_dir=options.sources_dir.as_posix(),
    )
    computed = plan(
        manifests,
        records,
        owner=options.owner,
        prune=options.prune,
        secrets=fingerprints,
        known=registry.known(options.owner),
        guard=guard,
        force_conflicts=options.force_conflicts,
        in_place=registry.updates_in_place,
        documents=prepared.documents,
    )
    # A provider knows per field what its API can do: which updates replace, which changes
    # it must refuse (providers/plan_review.py). Other registries have no such capability.
    review = plan_review(registry)
    if review is not None:
        computed = review.review_plan(computed)
    computed = guard_replaces(computed, records, force=options.force_replaces)
    return computed, records


def _in_scope(records: list[Record], skipped: frozenset[str], owner: str) -> list[Record]:
    """The records this run may plan for: not this owner's records of manifests for other
    environments (they are neither in sync nor orphans here, so --prune leaves them)."""
    if not skipped:
        return records
    return [r for r in records if not (r.managed_by == owner and r.name.casefold() in skipped)]


def dry_run(options: Options, *, must_exist: bool = False) -> Outcome:
    """The plan, with nothing written and nothing created (not even the registry).

    With `must_exist` (drift), a registry that does not exist is an error, not an empty one.
    """
    return _dry_run(options, must_exist=must_exist)[0]


def _dry_run(options: Options, *, must_exist: bool = False) -> tuple[Outcome, bytes | None]:
    prepared = _prepare(options, dry_run=True)
    manifests = prepared.manifests
    registry = open_registry(options.registry, writable=False, options=options.connect)
    try:
        missing = not registry.exists()
        if missing and must_exist:
            raise RegistryMissing(registry.display_url)
        computed, _ = _plan(options, registry, prepared)
        outcome = Outcome(registry.display_url, manifests, computed, registry_missing=missing)
        return outcome, registry.fingerprint_key()
    finally:
        registry.close()


def save_plan(options: Options, out: Path) -> Outcome:
    """The plan, saved to `out` and signed with the registry's key, unless apply would
    refuse it (saved_plans.refusal says why; the caller reports it)."""
    outcome, key = _dry_run(options)
    if refusal(outcome.plan) is not None:
        return outcome
    saved = SavedPlan(
        created_at=now(),
        registry=outcome.registry,
        sources_dir=options.sources_dir.as_posix(),
        manifests_digest=manifests_digest(outcome.manifests),
        # The options that decide what the plan contains, as apply will recompute it.
        options=PlanOptions.model_validate(
            {name: getattr(options, name) for name in PlanOptions.model_fields}
        ),
        plan=outcome.plan,
    )
    save(out, saved, key)
    return outcome


def apply(options: Options, saved: SavedPlan | None = None) -> Outcome:
    """Plan and apply under the registry's write lock; with `saved`, apply exactly that plan."""
    if saved is not None and saved.registry != redact_url(options.registry):
        raise StalePlan(  # before opening: a wrong registry must not even be created
            f"the saved plan was made for registry {saved.registry}, not "
            f"{redact_url(options.registry)}; nothing was written"
        )
    if saved is not None:  # the plan is recomputed with the options it was made with
        options = replace(options, **saved.options.model_dump())
    prepared = _prepare(options, dry_run=False)
    manifests, secrets = prepared.manifests, prepared.secrets
    registry = open_registry(options.registry, writable=True, options=options.connect)
    started = datetime.now(UTC)
    try:
        registry_was_new = registry.fingerprint_key() is None
        registry.init()
        try:
            with registry.locked(options.lock_timeout):
                key = registry.fingerprint_key()
                if saved is not None and saved.mac is not None:  # an edited file: say so first
                    verify_mac(saved, key, registry_was_new=registry_was_new)
                computed, records = _plan(options, registry, prepared)
                if saved is not None:
                    check_fresh(
                        saved,
                        registry=registry.display_url,
                        digest=manifests_digest(manifests),
                        records=records,
                    )
                    # What is written comes from `computed`, never from the file.
                    check_same(saved, computed)
                    verify_mac(saved, key, registry_was_new=registry_was_new)
                result = apply_plan(
                    computed,
                    registry,
                    secrets,
                    records=records,
                    force_conflicts=options.force_conflicts,
                    started_at=started,
                )
        except LockTimeout:
            raise  # logging it would need the lock we could not get
        except ReconcilerError as exc:
            # The failed transaction rolled back; the run log gets its own.
            registry.record_run(
                RunEntry(
                    id=str(uuid.uuid4()),
                    owner=options.owner,
                    actor=actor(),
                    started_at=started,
                    finished_at=datetime.now(UTC),
                    outcome="failed",
                    message=str(exc),  # scrubbed where the run log is written
                )
            )
            raise
        return Outcome(registry.display_url, manifests, computed, result)
    finally:
        registry.close()
