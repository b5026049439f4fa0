"""The registry behind a running Sources API (`http://` and `https://` registry URLs).

Records come from the API; what it has no field for (owner, last-applied document, secret
fingerprints) comes from the state store (`remote.RemoteRegistry`). The API has no update
endpoint, so a record whose API fields changed is replaced (deleted, then registered again
under a new id) and a record never changes under its id: the id is its version, and
`version` is always 1. A change of reconciler-only fields (lifecycle, columns,
schema_policy, schema_perspective) is an update of the state store alone.

Ownership is also written into the registry itself: a create adds the reserved tag
`managed-by:reconciler/<owner>`, never shown as a tag nor compared, so a runner whose state
store has never seen the registry (a fresh CI machine) still knows which records are its
own. Such a record has no last-applied document there: its plan is two-way, its secrets
and reconciler-only fields cannot be compared, and it is never pruned from there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from reconciler.backends.base import (
    ConnectOptions,
    LiveSchema,
    LiveSchemas,
    NewRecord,
    PlanReview,
    RecordDelete,
    RecordReplace,
    RecordUpdate,
    SchemaSnapshot,
    SnapshotStore,
)
from reconciler.backends.providers.plan_review import RECONCILER_ONLY, matches, replace_unless
from reconciler.backends.providers.sources_api_client import (
    BASE_PATH,
    TOKEN_ENV,
    SourcesApi,
    SourceUnreachable,
)
from reconciler.backends.remote.endpoints import Endpoint, endpoint
from reconciler.backends.remote.shell import RemoteRegistry, unmasked
from reconciler.backends.remote.state_store import RemoteRecordState
from reconciler.backends.remote.transport import HttpSettings
from reconciler.errors import RegistryError, StaleRecordError
from reconciler.manifests.documents import REDACTED
from reconciler.models import Blocked, Change, Plan, Record, Unreachable
from reconciler.redaction import REDACTOR
from reconciler.secret_refs import is_reference

# The reserved tag that marks a record this reconciler registered, for `owner`.
OWNER_TAG = "managed-by:reconciler/"


class HttpRegistry(RemoteRegistry, PlanReview, SnapshotStore, LiveSchemas):
    """A Registry over the Sources API plus a state store; see the module docstring."""

    # Updates of reconciler-only fields stay updates (of the state store only);
    # `review_plan` turns every other update into a replace.
    updates_in_place = True
    update_word = "updated"  # only ever the state: an adoption or a reconciler-only field
    marks_owner = True  # the reserved owner tag

    def review_plan(self, plan: Plan) -> Plan:
        """Updates that touch an API field are replaces (the API has no update endpoint);
        the reserved tag is refused in a manifest; and a record owned by its tag alone
        (no state here) is planned two-way, on what can be compared without the state."""
        changes: list[Change] = []
        blocked = list(plan.blocked)
        for change in plan.changes:
            if any(str(t).startswith(OWNER_TAG) for t in (change.document or {}).get("tags", ())):
                why = f"tags starting with '{OWNER_TAG}' are reserved: the reconciler writes them"
                blocked.append(
                    Blocked(name=change.name, reason=why, file=change.file, line=change.line)
                )
                continue
            if change.record_id in self._unstated:
                if change.action == "delete":
                    blocked.append(Blocked(name=change.name, reason=_PRUNE_BLIND))
                    continue
                change = _two_way(change)
            changes.append(replace_unless(change, ()))
        if self._unstated:
            count = len(self._unstated)
            self.say(
                f"note: {count} record(s) of {self.display_url} are known to be this "
                "reconciler's by their owner tag only (this state store has no state for "
                "them): they are planned two-way, so changes made outside git look like "
                "changes to apply, and their secrets and reconciler-only fields are not "
                "compared. Share the state store for three-way plans: --state "
                "postgresql://... or RECONCILER_STATE"
            )
        return plan.model_copy(update={"changes": tuple(changes), "blocked": tuple(blocked)})

    def _endpoint(self, url: str) -> Endpoint:
        return endpoint(url, expected="http(s)://HOST[:PORT][/PREFIX]", strip_path=BASE_PATH)

    def _connect(self, where: Endpoint, token: str | None, http: HttpSettings) -> None:
        # Records owned by their tag alone, with no state here (see the module docstring).
        self._unstated: set[str] = set()
        self._api = SourcesApi(
            where.base,
            where.key,
            token=token,
            timeout=http.timeout,
            retry=http.retry,
            concurrency=http.concurrency,
        )

    # -- reading -------------------------------------------------------------------------
    def list_records(self) -> list[Record]:
        """The summary list, then every full record (in parallel), joined with the state."""
        full = self._api.get_many(self._api.list_summaries())
        states = self._state.records()
        states = self._claim_intents(
            states, lambda: [self._record(d, None) for d in full if str(d.get("id")) not in states]
        )
        records = [self._record(doc, states.get(str(doc.get("id")))) for doc in full]
        self._unstated = {r.id for r in records if r.managed_by is not None and r.id not in states}
        return records

    def schema(self, record_id: str, name: str) -> LiveSchema | Unreachable:
        """The live columns of one source; its database being down (503) is a finding."""
        try:
            body = self._api.schema(record_id, name)
        except SourceUnreachable as exc:
            return Unreachable(source=name, reason=str(exc))
        try:
            columns = tuple(
                {"name": str(c["name"]), "type": str(c["type"])} for c in body["columns"]
            )
            inspected = body.get("inspected_at")
            return LiveSchema(
                source_id=str(body.get("source_id") or record_id),
                source=str(body.get("source_name") or name),
                columns=columns,
                inspected_at=datetime.fromisoformat(inspected) if inspected else None,
            )
        except (KeyError, TypeError, ValueError):
            raise RegistryError(
                f"reading the schema of source '{name}': unexpected answer from {self.display_url}"
            ) from None

    def live_schemas(self, names: Sequence[str]) -> dict[str, LiveSchema | Unreachable]:
        """The live columns of the named sources, read in parallel through the API (the
        runner needs no database credentials); a source not registered is unreachable."""
        by_name = {r.name.casefold(): r for r in self.list_records()}

        def one(name: str) -> LiveSchema | Unreachable:
            record = by_name.get(name.casefold())
            if record is None:
                why = f"not registered in {self.display_url} (apply it first)"
                return Unreachable(source=name, reason=why)
            return self.schema(record.id, name)

        found = self._api.transport.parallel(one, list(names))
        return dict(zip(names, found, strict=True))

    # Schema snapshots live in the state store, under this registry's key.
    def last_snapshots(
        self, names: Iterable[str], *, accepted: bool = False
    ) -> dict[str, SchemaSnapshot]:
        return self._state.store.last_snapshots(
            names, accepted=accepted, registry=self._state.registry
        )

    def record_snapshots(self, snapshots: Sequence[SchemaSnapshot], timeout: float = 60.0) -> int:
        return self._state.store.record_snapshots(snapshots, timeout, registry=self._state.registry)

    # -- writing -------------------------------------------------------------------------
    def _update(self, update: RecordUpdate) -> None:
        """An update that changes only what the state store holds (owner, last-applied
        document, fingerprints): `reconcile import` adopting a record, or a change of
        reconciler-only fields. Anything the API would have to change is refused: it has no
        update endpoint."""
        new = update.record
        live = self._api.get(new.id, new.name)
        if live is None:
            raise StaleRecordError(
                f"adopting source '{new.name}': record {new.id} is no longer in the registry. "
                "Run again to see the new plan."
            )
        connection = unmasked(live.get("connection") or {}, None)
        same = (
            live.get("name") == new.name
            and live.get("source_type") == new.source_type
            and (live.get("description") or "") == new.description
            and sorted(_user_tags(live.get("tags") or ())) == sorted(new.tags)
            and set(connection) == set(new.connection)
            and all(v is None or new.connection[k] in (v, None) for k, v in connection.items())
        )
        if not same:
            raise RegistryError(
                f"registry {self.display_url} cannot update source '{new.name}' in place (the "
                "Sources API has no update endpoint); plan again to replace it"
            )
        self._state.remember(new.id, new)

    def _create(self, new: NewRecord) -> None:
        body = {
            "name": new.name,
            "source_type": new.source_type,
            "connection": new.connection,
            "description": new.description,
            "tags": [*new.tags, OWNER_TAG + new.managed_by],
        }
        with self._intended(new):
            record = self._api.register(body)
        self._state.remember(str(record["id"]), new)

    def _replace(self, replace: RecordReplace) -> None:
        """Delete, then register: the name is unique, so the new record cannot come first."""
        name = replace.record.name
        self._delete_then_create(
            replace,
            lambda: self._api.delete(replace.old_id, name),
            noun="source",
            old="record",
            create="register",
        )

    def _delete(self, gone: RecordDelete) -> None:
        self._api.delete(gone.id, gone.name)
        self._state.forget(gone.id)

    def close(self) -> None:
        self._api.close()
        super().close()

    # -- records -------------------------------------------------------------------------
    def _record(self, doc: Mapping[str, Any], state: RemoteRecordState | None) -> Record:
        last = state.last_applied if state else None
        try:
            connection = doc.get("connection") or {}
            tags = doc.get("tags") or ()
            if not isinstance(connection, Mapping) or not isinstance(tags, list | tuple):
                raise TypeError("connection is not an object or tags not a list")
            marked = {str(t)[len(OWNER_TAG) :] for t in tags if str(t).startswith(OWNER_TAG)}
            owner = state.owner if state else (marked.pop() if len(marked) == 1 else None)
            return Record.model_validate(
                {
                    "id": str(doc["id"]),
                    "name": doc["name"],
                    "source_type": doc["source_type"],
                    "connection": unmasked(connection, last),
                    "description": doc.get("description") or "",
                    "tags": _user_tags(tags),
                    "registered_by": doc.get("registered_by") or "",
                    "registered_at": doc.get("registered_at"),
                    "status": doc.get("status") or "active",
                    "managed_by": owner,
                    "last_applied": last,
                    "fingerprints": state.fingerprints if state else {},
                }
            )
        except (KeyError, TypeError, AttributeError, ValueError, ValidationError):
            raise RegistryError(
                f"reading sources: {self.display_url} returned a record that does not fit "
                f"the Sources API ({_record_id(doc)})"
            ) from None


_PRUNE_BLIND = (
    "owned by its tag alone: this state store has no last-applied state for it, so "
    "whether lifecycle.prevent_destroy protects it cannot be told; prune it from a run that "
    "shares the state store (--state postgresql://... or RECONCILER_STATE)"
)


def _user_tags(tags: Any) -> tuple[str, ...]:
    """The tags a person gave: without the reserved owner tag."""
    return tuple(t for t in tags if not str(t).startswith(OWNER_TAG))


def _two_way(change: Change) -> Change:
    """A change of a record with no last-applied state, on what can be compared without it:
    not its reconciler-only fields (never in the API) and not a secret (masked, or shown
    as "(sensitive)", against a reference). A change left with no field is a no-op."""
    if change.action not in ("update", "replace"):
        return change
    fields = tuple(
        f
        for f in change.fields
        if not matches(f.path, RECONCILER_ONLY)
        and not (is_reference(f.new) and (f.old is None or f.old == REDACTED))
        and f.new != "(sensitive, changed)"
    )
    if fields:
        return change.model_copy(update={"fields": fields, "action": "update"})
    return change.model_copy(update={"fields": (), "action": "noop"})


def _record_id(doc: Any) -> str:
    """The record's id, if it has a short one: never more of the answer (it may be a secret)."""
    found = doc.get("id") if isinstance(doc, Mapping) else None
    if isinstance(found, str | int) and not isinstance(found, bool) and len(str(found)) <= 64:
        return f"id {str(found)!r}"
    return "no readable id"


def open_http(url: str, *, writable: bool, options: ConnectOptions | None = None) -> HttpRegistry:
    """`http(s)://HOST[:PORT][/PREFIX]`, bearer token from RECONCILER_TOKEN."""
    token = os.environ.get(TOKEN_ENV) or None
    if token:
        REDACTOR.add(token)  # the last line of defence: no output ever shows it
    return HttpRegistry(url, writable=writable, token=token, options=options)
