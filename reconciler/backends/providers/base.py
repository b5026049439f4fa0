"""What the four providers share: identity, write-only fields, versions, the shape of a write.

A provider reads objects from an API that was not built for GitOps, so this base decides
how they become records:

- Identity is the remote id. Names need not be unique (Streamkap, Airweave, Airbyte), so
  an object this reconciler created is reported under the name it was applied with (from
  the state store), and an unowned object whose name is taken gets its id appended: two
  objects can never collapse into one name in the plan.
- Write-only fields (credentials, Splendor's whole configuration) are never returned: an
  owned record shows what was last applied (a secret as unknown, compared by fingerprint),
  never a perpetual diff.
- Keys the reconciler never set (server defaults, computed values) are not compared, as
  `kubectl apply` leaves unmanaged fields alone; numbers that come back as strings compare
  equal to what was sent.
- A record's version is a checksum of what the API shows, so a saved plan and each write
  notice an object changed since it was read.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Self

from reconciler.backends.base import (
    ConnectOptions,
    NewRecord,
    PlanReview,
    RecordDelete,
    RecordReplace,
    RecordUpdate,
)
from reconciler.backends.providers.plan_review import RECONCILER_ONLY, Rules, matches, review
from reconciler.backends.remote.endpoints import Endpoint, endpoint
from reconciler.backends.remote.polling import Waiter, operation_timeout
from reconciler.backends.remote.shell import RemoteRegistry, is_masked, last_value
from reconciler.backends.remote.state_store import RemoteRecordState
from reconciler.backends.remote.transport import Credential, HttpSettings, Transport
from reconciler.errors import RegistryError, StaleRecordError
from reconciler.manifests.documents import canonical, diff_fields, live_document
from reconciler.models import Change, Plan, Record


@dataclass(frozen=True)
class Observed:
    """One remote object as its API shows it, in the manifest's terms."""

    id: str
    name: str
    # TYPE of PROVIDER/TYPE as the API reports it.
    type: str
    # The connection values the API returns (masked values as it gave them).
    connection: dict[str, Any]
    # None: the API has no description field, so it lives in the state store.
    description: str | None = None
    registered_at: datetime | None = None
    status: str = "active"


class Provider(RemoteRegistry, PlanReview):
    """A Registry over one provider's API; a subclass writes the calls and the mapping."""

    updates_in_place = True  # per field: `rules` and `review_plan` say which replace
    rules: ClassVar[Rules]
    token_env: ClassVar[str]
    # The API's name in messages ("Streamkap").
    api_name: ClassVar[str]
    token_noun: ClassVar[str] = "token"
    token_header: ClassVar[str] = "Authorization"
    # Registry URL query parameters that select what the registry is (tenant, workspace).
    params: ClassVar[tuple[str, ...]] = ()
    required: ClassVar[tuple[str, ...]] = ()
    # How error messages show the URL's query ("?tenant=TENANT").
    url_query: ClassVar[str] = ""
    # The noun in messages ("source", "connector", "source connection"), and what a create
    # and an update are called (Splendor provisions).
    noun: ClassVar[str] = "source"
    creating: ClassVar[str] = "creating"
    updating: ClassVar[str] = "updating"

    def _endpoint(self, url: str) -> Endpoint:
        name = self.rules.provider
        return endpoint(
            url,
            expected=f"{name}+https://HOST[:PORT][/PREFIX]{self.url_query}",
            provider=name,
            params=self.params,
            required=self.required,
        )

    def _connect(self, where: Endpoint, token: str | None, http: HttpSettings) -> None:
        self.query = where.query
        self.api = Transport(
            where.base,
            where.key,
            credential=Credential(token, self.token_env, self.token_noun, self.token_header),
            timeout=http.timeout,
            retry=http.retry,
            concurrency=http.concurrency,
            headers=self.headers(),
        )
        # Waiting for an asynchronous create or update (a test may give its own clock).
        self.waiter = Waiter(operation_timeout(), sleep=self.api.retry.sleep)

    @classmethod
    def from_env(cls, url: str, *, writable: bool, options: ConnectOptions | None = None) -> Self:
        """The registry at `url`, with the token from the environment variable `token_env`."""
        token = os.environ.get(cls.token_env) or None
        return cls(url, writable=writable, token=token, options=options)

    # -- what a provider writes ----------------------------------------------------------
    def headers(self) -> dict[str, str]:
        """Extra headers on every request (e.g. the tenant), from `self.query`."""
        return {}

    def observe_all(self) -> list[Observed]:
        raise NotImplementedError

    def observe(self, record_id: str, name: str) -> Observed | None:
        """A fresh read of one object; None when it is gone."""
        raise NotImplementedError

    def write_only(self, key: str) -> bool:
        """Whether connection `key` is never returned by the API."""
        raise NotImplementedError

    def create(self, new: NewRecord) -> str:
        """Create the object; its remote id."""
        raise NotImplementedError

    def update(self, record_id: str, new: NewRecord, live: Record) -> None:
        raise NotImplementedError

    def delete(self, record_id: str, name: str) -> None:
        raise NotImplementedError

    def settle(self, record_id: str, name: str, doing: str) -> None:
        """Wait for the asynchronous part of a create or update, if the API has one."""

    def check(self, change: Change) -> str | None:
        """Why the API would reject this change's document (the plan blocks it), or None."""
        return None

    def source_type(self, observed: Observed, last: Mapping[str, Any] | None) -> str:
        return f"{self.rules.provider}/{observed.type}"

    @contextmanager
    def _reading(self, what: str, thing: str) -> Iterator[None]:
        """Around the mapping of one answer to `thing` ("a source"): an answer without what
        the mapping reads (a missing key, a wrong type, a bad date) is a RegistryError."""
        try:
            yield
        except (KeyError, TypeError, ValueError, AttributeError):
            raise RegistryError(
                f"{what}: {self.display_url} returned {thing} that does not fit the "
                f"{self.api_name} API"
            ) from None

    def _read_one(self, path: str, name: str) -> tuple[Any, str] | None:
        """GET `path`, one object: its answer and what reading it is called in messages;
        None when it is gone (404)."""
        what = f"reading {self.noun} '{name}'"
        response, _ = self.api.send("GET", path, what=what, absent=(404,))
        if response.status_code == 404:
            return None
        return self.api.body(response, what), what

    # -- reading -------------------------------------------------------------------------
    def list_records(self) -> list[Record]:
        observed = self.observe_all()
        states = self._state.records()
        states = self._claim_intents(
            states, lambda: [self.record(o, None) for o in observed if o.id not in states]
        )
        owned = [o for o in observed if o.id in states]
        taken = {str(states[o.id].last_applied.get("name", o.name)).casefold() for o in owned}
        records = [self.record(o, states[o.id]) for o in owned]
        for o in sorted(
            (o for o in observed if o.id not in states), key=lambda o: (str(o.registered_at), o.id)
        ):
            record = self.record(o, None)
            if record.name.casefold() in taken:  # a duplicate name: tell them apart by id
                record = record.model_copy(update={"name": f"{record.name} [{o.id}]"})
            taken.add(record.name.casefold())
            records.append(record)
        return records

    def record(self, observed: Observed, state: RemoteRecordState | None) -> Record:
        last = state.last_applied if state else None
        description = observed.description
        if description is None:  # no such field in the API: what was applied
            description = (last or {}).get("description") or ""
        return Record(
            id=observed.id,
            name=str(last["name"]) if last else observed.name,
            source_type=self.source_type(observed, last),
            connection=self._connection(observed.connection, last),
            description=description,
            tags=tuple((last or {}).get("tags") or ()),
            registered_at=observed.registered_at,
            status=observed.status,
            managed_by=state.owner if state else None,
            version=version(observed),
            last_applied=last,
            fingerprints=state.fingerprints if state else {},
        )

    def _connection(
        self, observed: Mapping[str, Any], last: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        applied: Mapping[str, Any] = (last or {}).get("connection") or {}
        out: dict[str, Any] = {}
        for key, value in observed.items():
            if is_masked(value):
                value = last_value(last, key) if key in applied else None
            elif key in applied:
                value = aligned(value, applied[key])
            elif last is not None:
                continue  # a key this reconciler never set: not its to compare
            if value is not None or key in applied:
                out[key] = value
        for key in applied:
            if key not in out and self.write_only(key):
                out[key] = last_value(last, key)
        return out

    def _fresh(self, record_id: str, expected: int, name: str, doing: str) -> Record:
        """The object as it is now; StaleRecordError if it is gone or changed since read."""
        observed = self.observe(record_id, name)
        what = f"{doing} {self.noun} '{name}'"
        if observed is None:
            raise StaleRecordError(
                f"{what}: record {record_id} is no longer in the registry: it changed since it "
                "was read. Run again to see the new plan."
            )
        record = self.record(observed, self._state.get(record_id))
        if record.version != expected:
            raise StaleRecordError(
                f"{what}: record {record_id} changed in the registry since it was read. Run "
                "again to see the new plan."
            )
        return record

    # -- planning ------------------------------------------------------------------------
    def review_plan(self, plan: Plan) -> Plan:
        """See review.py: forced replaces and refusals, before anything is shown or done."""
        return review(plan, self.rules, self.check)

    def api_changed(self, new: NewRecord, live: Record) -> bool:
        """Whether writing `new` changes anything the API holds (else only the state)."""
        local = (*RECONCILER_ONLY, *self.rules.state_only)
        paths = (f.path for f in diff_fields(live_document(live), canonical(new.last_applied)))
        return new.fingerprints != live.fingerprints or any(not matches(p, local) for p in paths)

    # -- writing -------------------------------------------------------------------------
    def _update(self, update: RecordUpdate) -> None:
        """An owned record: write what changed. An unowned one (`reconcile import`): adopt
        it, which changes only the state, and only if the API already holds the values."""
        new = update.record
        state = self._state.get(new.id)
        live = self._fresh(new.id, update.expected_version, new.name, "updating")
        if state is None or state.owner != new.managed_by:
            if self.api_changed(new, live):
                raise RegistryError(
                    f"adopting {self.noun} '{new.name}': it differs from the manifest written "
                    "for it; plan again"
                )
        elif self.api_changed(new, live):
            self.update(new.id, new, live)
            self._state.remember(new.id, new)
            self.settle(new.id, new.name, self.updating)
            return
        self._state.remember(new.id, new)

    def _create(self, new: NewRecord) -> None:
        with self._intended(new):
            record_id = self.create(new)
        self._state.remember(record_id, new)  # before waiting: it exists whatever happens next
        self.settle(record_id, new.name, self.creating)

    def _replace(self, replace: RecordReplace) -> None:
        """Delete, then create (Terraform's default order): creating first would leave the old
        object unowned if its deletion then failed, as the state keeps one object per name."""
        new = replace.record
        self._fresh(replace.old_id, replace.expected_version, new.name, "replacing")
        self._delete_then_create(
            replace, lambda: self.delete(replace.old_id, new.name), noun=self.noun, old="object"
        )

    def _delete(self, gone: RecordDelete) -> None:
        self._fresh(gone.id, gone.expected_version, gone.name, "deleting")
        self.delete(gone.id, gone.name)
        self._state.forget(gone.id)

    def close(self) -> None:
        self.api.close()
        super().close()


def version(observed: Observed) -> int:
    """A checksum of what the API shows of an object (not its status): its version."""
    shown = [observed.name, observed.type, observed.connection, observed.description]
    return zlib.crc32(json.dumps(shown, sort_keys=True, default=str).encode("utf-8"))


def timestamp(value: Any) -> datetime | None:
    """An ISO 8601 time from an answer; None when it has none."""
    return datetime.fromisoformat(value) if value else None


def aligned(live: Any, applied: Any) -> Any:
    """`live`, in the terms of what was applied: a mapping cut to the keys that were set,
    a number the API returns as a string (or the other way) as it was written."""
    if isinstance(live, Mapping) and isinstance(applied, Mapping):
        return {k: aligned(v, applied[k]) for k, v in live.items() if k in applied}
    scalar = (str, int, float)
    if (
        isinstance(live, scalar)
        and isinstance(applied, scalar)
        and not isinstance(live, bool)
        and not isinstance(applied, bool)
        and type(live) is not type(applied)
        and str(live).strip() == str(applied)
    ):
        return applied
    return live
