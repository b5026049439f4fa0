"""The reconcile workflow, in the order that makes it safe.

Validate every manifest, resolve every secret, and only then open the registry; take the
write lock before reading the state an apply is based on, so the plan and the writes see
the same registry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from reconciler.backends import open_registry, redact_url
from reconciler.backends.base import Registry, plan_review, shared_state
from reconciler.errors import LockTimeout, ReconcilerError, RegistryMissing
from reconciler.manifests.digests import scan
from reconciler.manifests.documents import DesiredDocuments
from reconciler.models import Manifest, Plan, Record
from reconciler.planning import selection
from reconciler.planning.plan import PruneGuard, SecretFingerprints, in_scope, plan
from reconciler.secret_refs import ResolvedSecrets, fingerprint, resolve_all
from reconciler.workflow import fast_run
from reconciler.workflow.replace_guard import guard_replaces
from reconciler.workflow.run_options import Options, Outcome
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
from reconciler.workflow.writes import apply_plan, record_failure

__all__ = ["Options", "Outcome", "apply", "dry_run", "save_plan"]


@dataclass(frozen=True)
class _Prepared:
    """What a run knows before it opens the registry."""

    manifests: list[Manifest]
    secrets: ResolvedSecrets
    documents: DesiredDocuments
    # Names of manifests for another environment: their records are out of the run's reach.
    skipped: frozenset[str] = frozenset()


def _prepare(options: Options, *, dry_run: bool) -> _Prepared:
    from reconciler.manifests.loading import load_scoped  # not on a no-op's digest path

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
    records = in_scope(records, skipped, options.owner)
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


def dry_run(options: Options, *, must_exist: bool = False) -> Outcome:
    """The plan, with nothing written and nothing created (not even the registry).

    With `must_exist` (drift), a registry that does not exist is an error, not an empty one.
    """
    return _dry_run(options, must_exist=must_exist)[0]


def _dry_run(
    options: Options, *, must_exist: bool = False, fast_path: bool = True
) -> tuple[Outcome, bytes | None]:
    fast = fast_run.dry_run(options) if fast_path and not must_exist else None
    if fast is not None:
        return fast
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
    outcome, key = _dry_run(options, fast_path=False)  # saved: every manifest, every document
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
    elif fast_run.enabled(options):
        fast = fast_run.apply(options)
        if fast is not None:
            return fast
    # Digests of the documents as they are before loading (a file edited meanwhile gets none).
    files = scan(options.sources_dir, track=False) if fast_run.enabled(options) else None
    prepared = _prepare(options, dry_run=False)
    manifests, secrets = prepared.manifests, prepared.secrets
    registry = open_registry(options.registry, writable=True, options=options.apply_connect)
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
                    stamp=fast_run.digests_for(registry, computed, manifests, secrets, files),
                )
        except LockTimeout:
            raise  # logging it would need the lock we could not get
        except ReconcilerError as exc:
            record_failure(registry, options.owner, started, exc)
            raise
        return Outcome(registry.display_url, manifests, computed, result)
    finally:
        registry.close()
