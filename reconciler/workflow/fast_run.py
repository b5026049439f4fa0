"""Dry-runs and applies through content-addressed planning (planning/fast_plan.py): on an
existing, up-to-date SQL registry, only what changed is parsed and diffed. Anything else, or
any doubt, returns None before writing, and the caller plans in full.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from reconciler.backends import open_registry
from reconciler.backends.base import ContentDigests, NewRecord, Registry, content_digests
from reconciler.errors import LockTimeout, ReconcilerError
from reconciler.manifests.digests import FileDigests
from reconciler.models import Manifest, Plan
from reconciler.planning.fast_plan import FastPlan, Request, fast_plan
from reconciler.planning.stamping import restamps, stamper, stamps
from reconciler.secret_refs import ResolvedSecrets
from reconciler.workflow import run_options
from reconciler.workflow.replace_guard import guard_replaces
from reconciler.workflow.run_options import Options, Outcome
from reconciler.workflow.writes import apply_plan, record_failure


def enabled(options: Options) -> bool:
    """Where the shortcut is proven equal to the full plan (tests/test_fast_plan_equivalence):
    not with a selection (planned in full), nor when every manifest is needed."""
    return (
        options.digests
        and not run_options.FULL_PLAN
        and not options.select
        and not options.exclude
        and options.registry.startswith(("sqlite:", "postgresql:", "postgres:"))
    )


def _ready(registry: Registry) -> ContentDigests | None:
    """The registry's digests when it exists and is migrated (else: plan in full)."""
    digests = content_digests(registry)
    return digests if digests is not None and digests.ready() else None


def _fast(
    options: Options, registry: Registry, digests: ContentDigests, *, strict: bool
) -> FastPlan | None:
    """The content-addressed plan, or None: plan in full (which also raises any error)."""
    request = Request(
        owner=options.owner,
        prune=options.prune,
        strict=strict,
        max_deletes=options.max_deletes,
        force_deletes=options.force_deletes,
        force_conflicts=options.force_conflicts,
        scope=options.scope,
        declared=options.declared,
    )
    try:
        found = fast_plan(registry, digests, options.sources_dir, request)
    except ReconcilerError:
        return None
    if found is None:
        return None
    guarded = guard_replaces(found.plan, found.records, force=options.force_replaces)
    return replace(found, plan=guarded)


def dry_run(options: Options) -> tuple[Outcome, bytes | None] | None:
    if not enabled(options):
        return None
    try:
        registry = open_registry(options.registry, writable=False, options=options.connect)
    except ReconcilerError:
        return None
    try:
        digests = _ready(registry)
        if digests is None:
            return None
        # A plan's schema check runs only with --schema, which plans in full.
        fast = _fast(replace(options, declared=False), registry, digests, strict=options.strict)
        if fast is None:
            return None
        outcome = Outcome(registry.display_url, fast.manifests, fast.plan, count=fast.sources)
        return outcome, registry.fingerprint_key()
    finally:
        registry.close()


def apply(options: Options) -> Outcome | None:
    """apply() through the content-addressed plan, on an existing, up-to-date SQL registry
    (anything else, or any doubt, returns None before writing: apply() then runs in full)."""
    try:
        registry = open_registry(options.registry, writable=True, options=options.apply_connect)
    except ReconcilerError:
        return None
    started = datetime.now(UTC)
    try:
        digests = _ready(registry)
        if digests is None:
            return None
        try:
            with registry.locked(options.lock_timeout):
                fast = _fast(options, registry, digests, strict=True)
                if fast is None:
                    return None
                result = apply_plan(
                    fast.plan,
                    registry,
                    fast.secrets,
                    records=fast.records,
                    force_conflicts=options.force_conflicts,
                    started_at=started,
                    stamp=digests_for(
                        registry, fast.plan, fast.manifests, fast.secrets, fast.files
                    ),
                )
        except LockTimeout:
            raise
        except ReconcilerError as exc:
            record_failure(registry, options.owner, started, exc)
            raise
        return Outcome(registry.display_url, fast.manifests, fast.plan, result, count=fast.sources)
    finally:
        registry.close()


def digests_for(
    registry: Registry,
    computed: Plan,
    loaded: Sequence[Manifest],
    secrets: ResolvedSecrets,
    files: list[FileDigests] | None,
) -> Callable[[NewRecord], NewRecord] | None:
    """Digests for what an apply writes, and for records found in sync without one, so the
    next plan can skip them. Inside the apply's transaction. `files`: scanned before the
    manifests were loaded."""
    digests = content_digests(registry)
    if files is None or digests is None:
        return None
    counts = Counter(m.file for m in loaded)
    key = registry.fingerprint_key()
    digests.restamp(restamps(files, computed, counts, secrets.fingerprints(key)))
    return stamper(stamps(files, computed.pending, counts))
