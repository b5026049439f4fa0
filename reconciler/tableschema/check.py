"""`reconcile schema`: observe each source's live table, compare, remember, report.

The engine (introspection.py, schemachanges.py) is pure and never raises for a bad source.
This module adds what needs the outside world: secrets to reach the databases, the
registry for the baseline and the history, and the rule for what a run may accept on its
own. That rule is the point of the feature: a non-breaking change becomes the new baseline
at once (reported once), a breaking one never does until a person accepts it or writes it
into the `columns` contract, so it keeps failing the runs of a `schema_policy: fail` source.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler import progress
from reconciler.actor import actor
from reconciler.backends import open_registry
from reconciler.backends.base import (
    DEFAULT_LOCK_TIMEOUT_S,
    ConnectOptions,
    SchemaSnapshot,
    SnapshotRegistry,
    live_schemas,
    snapshot_store,
)
from reconciler.errors import ReconcilerError, SecretResolutionError
from reconciler.exit_codes import worst
from reconciler.manifests.loading import load_manifests
from reconciler.models import Manifest, ObservedTable, Outcome, TableMissing, Unreachable
from reconciler.redaction import REDACTOR
from reconciler.secret_refs import is_reference, resolve
from reconciler.tableschema.classification import (
    Perspective,
    SchemaChange,
    compare,
    compare_with_contract,
    has_breaking,
)
from reconciler.tableschema.introspection import (
    IntrospectionStats,
    PostgresTarget,
    introspect_csv,
    introspect_postgres,
)
from reconciler.tableschema.report import (
    Against,
    SchemaFinding,
    SchemaReport,
    SourceSchema,
    Status,
    declared,
)
from reconciler.tableschema.through_registry import observe_through

__all__ = [
    "NoSnapshots",
    "SchemaFinding",
    "SchemaOptions",
    "SchemaReport",
    "SourceSchema",
    "check",
    "check_registry",
    "declared",
    "evaluate",
    "run",
    "worst",
]


@dataclass(frozen=True)
class SchemaOptions:
    names: tuple[str, ...] = ()
    # Accept the current observation of these sources as their new baseline.
    accept: tuple[str, ...] = ()
    # Overrides every source's schema_perspective when set.
    perspective: Perspective | None = None
    timeout: float = 10.0
    record: bool = True
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S
    max_workers: int = 8


def run(
    sources_dir: Path,
    registry_url: str,
    options: SchemaOptions,
    *,
    connect: ConnectOptions | None = None,
) -> tuple[str, list[Manifest], SchemaReport]:
    """`reconcile schema`: validate the manifests, then check (see `check_registry`)."""
    manifests = load_manifests(sources_dir)
    display, report = check_registry(manifests, registry_url, options, connect=connect)
    return display, manifests, report


def check_registry(
    manifests: Sequence[Manifest],
    registry_url: str,
    options: SchemaOptions,
    *,
    connect: ConnectOptions | None = None,
) -> tuple[str, SchemaReport]:
    """Open the registry (migrated and writable only when recording), then `check`."""
    select(manifests, options)  # a mistyped name fails before anything is opened or created
    registry = open_registry(registry_url, writable=options.record, options=connect)
    try:
        store = snapshot_store(registry)
        if store is None:
            raise NoSnapshots(
                f"registry {registry.display_url} has no way to read a source's live schema: "
                "`reconcile schema` works with SQL registries and the Sources API"
            )
        if options.record:
            store.init()
        return store.display_url, check(manifests, store, options)
    finally:
        registry.close()


def check(
    manifests: Sequence[Manifest],
    registry: SnapshotRegistry,
    options: SchemaOptions,
) -> SchemaReport:
    """Introspect the selected sources, compare each with its contract and baseline, and
    record the observations. The write lock is held only for the final write, never while
    waiting on the databases."""
    started = time.monotonic()
    selected = select(manifests, options)
    baselines = registry.last_snapshots([m.name for m in selected], accepted=True)
    stats = IntrospectionStats()
    # An API registry that reads live schemas itself (the Sources API): no database
    # credentials needed, and what it cannot report (nullability, positions) is not judged.
    reader = live_schemas(registry)
    through = reader.live_schemas if reader is not None else None
    if through is not None:
        outcomes = observe_through(through, selected, baselines)
    else:
        outcomes = observe(selected, options, stats)
    now = datetime.now(UTC)
    accepting = {name.casefold() for name in options.accept}
    who = actor()
    results: list[SourceSchema] = []
    snapshots: list[SchemaSnapshot] = []
    for manifest in selected:
        result, snapshot = evaluate(
            manifest,
            outcomes[manifest.name],
            baselines.get(manifest.name.casefold()),
            perspective=options.perspective or manifest.schema_perspective,
            accept_as=who if manifest.name.casefold() in accepting else None,
            now=now,
        )
        results.append(result)
        if snapshot is not None and through is not None:
            snapshot = without_positions(snapshot)
        if snapshot is not None:
            snapshots.append(snapshot)
    recorded = 0
    if options.record:
        recorded = registry.record_snapshots(snapshots, timeout=options.lock_timeout)
    return SchemaReport(
        sources=tuple(results),
        record=options.record,
        recorded=recorded,
        databases=stats.databases,
        queries=stats.queries,
        seconds=round(time.monotonic() - started, 3),
    )


class NoSnapshots(ReconcilerError):
    """The registry has no way to read a source's live schema (a provider registry)."""


def select(manifests: Sequence[Manifest], options: SchemaOptions) -> list[Manifest]:
    """The sources named by --name (or by --accept when no --name is given), else all."""
    if options.accept and not options.record:
        raise ReconcilerError("--accept records a new baseline; it cannot be used with --no-record")
    by_key = {m.name.casefold(): m for m in manifests}
    unknown = [n for n in (*options.names, *options.accept) if n.casefold() not in by_key]
    if unknown:
        raise ReconcilerError(
            f"no source named {', '.join(repr(n) for n in unknown)} in the manifests"
        )
    wanted = options.names or options.accept
    if not wanted:
        return list(manifests)
    keys = {n.casefold() for n in (*options.names, *options.accept)}
    return [m for m in manifests if m.name.casefold() in keys]


# ------------------------------------------------------------------------------ observing


def observe(
    manifests: Sequence[Manifest],
    options: SchemaOptions,
    stats: IntrospectionStats,
) -> dict[str, Outcome]:
    """Every source's live table: each database with one query, databases and files in
    parallel. A secret that cannot be resolved makes that one source unreachable: it is
    reported with the others, never raised."""
    outcomes: dict[str, Outcome] = {}
    databases: dict[tuple[str, ...], list[PostgresTarget]] = {}
    files: list[tuple[str, str]] = []
    for manifest in manifests:
        try:
            connection = _resolved(manifest)
        except SecretResolutionError as exc:
            reason = REDACTOR.scrub(str(exc))
            outcomes[manifest.name] = Unreachable(source=manifest.name, reason=reason)
            continue
        if manifest.source_type == "postgres":
            target = PostgresTarget(manifest.name, connection)
            databases.setdefault(_database(connection), []).append(target)
        elif manifest.source_type == "csv":
            files.append((manifest.name, str(connection.get("file_path", ""))))
        else:
            reason = f"source_type {manifest.source_type} cannot be introspected"
            outcomes[manifest.name] = Unreachable(source=manifest.name, reason=reason)
    workers = max(1, min(options.max_workers, len(databases) + len(files)))
    label = "introspecting sources"
    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        progress.task(label, len(manifests)) as tick,
    ):
        tick(len(outcomes))
        futures = [
            pool.submit(_one_database, targets, options.timeout, stats)
            for targets in databases.values()
        ]
        futures += [pool.submit(_one_file, name, path) for name, path in files]
        for future in as_completed(futures):
            found = future.result()
            outcomes.update(found)
            tick(len(found))
    return {name: _scrubbed(outcome) for name, outcome in outcomes.items()}


def _one_database(
    targets: Sequence[PostgresTarget], timeout: float, stats: IntrospectionStats
) -> dict[str, Outcome]:
    """All of one database's tables (the engine makes it one connection, one query)."""
    own = IntrospectionStats()
    found = introspect_postgres(targets, timeout=timeout, max_workers=1, stats=own)
    with stats._lock:
        stats.databases += own.databases
        stats.connections += own.connections
        stats.queries += own.queries
    return found


def _one_file(name: str, path: str) -> dict[str, Outcome]:
    return {name: introspect_csv(name, path)}


def _resolved(manifest: Manifest) -> dict[str, Any]:
    """The connection with its secret references resolved (and registered for redaction)."""
    return {
        key: resolve(value, source=manifest.name, field=f"connection.{key}")
        if is_reference(value)
        else value
        for key, value in manifest.connection.items()
    }


def _database(connection: Mapping[str, Any]) -> tuple[str, ...]:
    """The engine's grouping key (host, port, dbname, user), with the same port default."""
    port = connection.get("port") or 5432
    return (
        str(connection.get("host")),
        str(port),
        *(str(connection.get(k)) for k in ("dbname", "user")),
    )


def _scrubbed(outcome: Outcome) -> Outcome:
    """The engine scrubs the passwords it was given; the redactor also knows the rest."""
    if isinstance(outcome, Unreachable):
        return outcome.model_copy(update={"reason": REDACTOR.scrub(outcome.reason)})
    return outcome


# ------------------------------------------------------------------------------ judging


def evaluate(
    manifest: Manifest,
    outcome: Outcome,
    baseline: SchemaSnapshot | None,
    *,
    perspective: Perspective,
    accept_as: str | None = None,
    now: datetime,
) -> tuple[SourceSchema, SchemaSnapshot | None]:
    """One source's verdict, and the snapshot to record (None when nothing was observed).

    The observation becomes the new baseline when it is the first one, when nothing
    breaking changed since the baseline, when the live table satisfies the `columns`
    contract (the contract was updated: the change is written into it), or when a person
    accepts it (`accept_as`, their name). Otherwise it is kept as history only.
    """
    head: dict[str, Any] = {
        "name": manifest.name,
        "source_type": manifest.source_type,
        "policy": manifest.schema_policy,
        "perspective": perspective,
        "file": manifest.file,
        "line": manifest.line,
        "baseline_at": baseline.observed_at if baseline else None,
    }
    if not isinstance(outcome, ObservedTable):
        status: Status = "missing" if isinstance(outcome, TableMissing) else "unreachable"
        findings = _tagged(compare((), outcome), "source")
        return SourceSchema(status=status, findings=findings, **head), None
    contract: list[SchemaChange] = []
    if manifest.columns is not None:
        contract = compare_with_contract(manifest.columns, outcome, perspective=perspective)
        # A table may go beyond its contract for good (more columns, wider types): such info
        # would repeat on every run, so only the drift from the baseline reports it, once.
        contract = [c for c in contract if c.severity != "info"]
    drift = compare(baseline.columns, outcome, perspective=perspective) if baseline else []
    contract_holds = manifest.columns is not None and not has_breaking(contract)
    if baseline is None or not has_breaking(drift):
        accepted_by = "auto"
    elif accept_as is not None:
        accepted_by = accept_as
    elif contract_holds:
        accepted_by = "contract"
    else:
        accepted_by = ""
    if has_breaking(contract) or (has_breaking(drift) and not accepted_by):
        status = "breaking"
    elif baseline is None:
        status = "first"
    elif has_breaking(drift):
        status = "accepted"
    else:
        status = "changed" if drift or contract else "unchanged"
    columns = tuple(c.model_dump() for c in outcome.columns)
    snapshot = SchemaSnapshot(
        name=manifest.name,
        columns=columns,
        hash=snapshot_hash(columns),
        observed_at=now,
        accepted_at=now if accepted_by else None,
        accepted_by=accepted_by,
    )
    # A change the contract reports is shown once, as the contract's finding (it still
    # counted above: acceptance is decided on every change since the baseline).
    declared = {(c.kind, c.column) for c in contract}
    shown = [c for c in drift if (c.kind, c.column) not in declared]
    findings = _tagged(contract, "contract") + _tagged(shown, "snapshot")
    verdict = SourceSchema(
        status=status,
        findings=findings,
        accepted_by=accepted_by if status == "accepted" else "",
        **head,
    )
    return verdict, snapshot


def without_positions(snapshot: SchemaSnapshot) -> SchemaSnapshot:
    """An API reports no column positions: a snapshot without them never reads a drop and
    an add as a rename on the next comparison."""
    columns = tuple({k: v for k, v in c.items() if k != "position"} for c in snapshot.columns)
    return replace(snapshot, columns=columns, hash=snapshot_hash(columns))


def snapshot_hash(columns: Iterable[dict[str, Any]]) -> str:
    """Identifies an observation: names, types, nullability and positions, in order."""
    text = json.dumps(list(columns), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _tagged(changes: Iterable[SchemaChange], against: Against) -> tuple[SchemaFinding, ...]:
    return tuple(SchemaFinding(**c.model_dump(), against=against) for c in changes)
