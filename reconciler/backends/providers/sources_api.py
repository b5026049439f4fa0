"""The registry behind a running Sources API (`http://` and `https://` registry URLs).

Records come from the API; what it has no field for (owner, last-applied document, secret
fingerprints) comes from the state store (`remote.RemoteRegistry`). The API has no update
endpoint, so a changed record is replaced (deleted, then registered again under a new id)
and a record never changes under its id: the id is its version, and `version` is always 1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from reconciler.backends.base import (
    ConnectOptions,
    NewRecord,
    RecordDelete,
    RecordReplace,
    RecordUpdate,
)
from reconciler.backends.providers.sources_api_client import (
    BASE_PATH,
    TOKEN_ENV,
    RetryPolicy,
    SourcesApi,
    SourceUnreachable,
)
from reconciler.backends.remote.shell import RemoteRegistry, endpoint, unmasked
from reconciler.backends.remote.state_store import RemoteRecordState
from reconciler.errors import RegistryError, StaleRecordError
from reconciler.models import Record, Unreachable
from reconciler.redaction import REDACTOR


@dataclass(frozen=True)
class LiveSchema:
    """A source's live table as GET /v1/sources/{id}/schema reports it.

    `columns` are `{"name", "type"}` mappings, the shape `schemachanges.compare` accepts;
    the API reports neither nullability nor column positions (so no rename detection).
    """

    source_id: str
    source: str
    columns: tuple[dict[str, str], ...]
    inspected_at: datetime | None


class HttpRegistry(RemoteRegistry):
    """A Registry over the Sources API plus a state store; see the module docstring."""

    updates_in_place = False
    update_word = "adopted"  # its only updates are `reconcile import` adoptions

    def __init__(
        self,
        url: str,
        *,
        writable: bool,
        token: str | None,
        options: ConnectOptions | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = 16,
    ) -> None:
        options = options or ConnectOptions()
        where = endpoint(url, expected="http(s)://HOST[:PORT][/PREFIX]", strip_path=BASE_PATH)
        super().__init__(where.key, writable=writable, options=options)
        self._api = SourcesApi(
            where.base,
            where.key,
            token=token,
            timeout=options.http_timeout,
            retry=retry,
            concurrency=concurrency,
        )

    # -- reading -------------------------------------------------------------------------
    def list_records(self) -> list[Record]:
        """The summary list, then every full record (in parallel), joined with the state."""
        full = self._api.get_many(self._api.list_summaries())
        states = self._state.records()
        return [self._record(doc, states.get(str(doc.get("id")))) for doc in full]

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

    # -- writing -------------------------------------------------------------------------
    def _update(self, update: RecordUpdate) -> None:
        """An update that changes only what the state store holds (owner, last-applied
        document, fingerprints), as `reconcile import` makes to adopt a record. Anything the
        API would have to change is refused: it has no update endpoint."""
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
            and sorted(live.get("tags") or ()) == sorted(new.tags)
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
            "tags": new.tags,
        }
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
            return Record.model_validate(
                {
                    "id": str(doc["id"]),
                    "name": doc["name"],
                    "source_type": doc["source_type"],
                    "connection": unmasked(connection, last),
                    "description": doc.get("description") or "",
                    "tags": tuple(tags),
                    "registered_by": doc.get("registered_by") or "",
                    "registered_at": doc.get("registered_at"),
                    "status": doc.get("status") or "active",
                    "managed_by": state.owner if state else None,
                    "last_applied": last,
                    "fingerprints": state.fingerprints if state else {},
                }
            )
        except (KeyError, TypeError, AttributeError, ValueError, ValidationError):
            raise RegistryError(
                f"reading sources: {self.display_url} returned a record that does not fit "
                f"the Sources API ({_record_id(doc)})"
            ) from None


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
