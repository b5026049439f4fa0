"""The registry behind a running Sources API (`http://` and `https://` registry URLs).

Records come from the API; what it has no field for (owner, last-applied document, secret
fingerprints) comes from the state store. The API has no update endpoint, so a changed
record is replaced (deleted, then registered again under a new id) and a record never
changes under its id: the id is its version, and `version` is always 1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError

from ..errors import RegistryError, StaleRecordError
from ..introspection import Unreachable
from ..models import Record
from ..secrets import REDACTOR, is_reference
from . import redact_url
from .base import ConnectOptions, NewRecord, RecordReplace, RecordUpdate, RunEntry, Writes
from .sources_api import BASE_PATH, RetryPolicy, SourcesApi, SourceUnreachable
from .sql import DEFAULT_LOCK_TIMEOUT_S
from .state import RemoteRecordState, StateStore

TOKEN_ENV = "RECONCILER_TOKEN"
# How services mask a secret in a response ("***"): never a value to compare.
_MASKED = re.compile(r"^\*+$")


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


class HttpRegistry:
    """A Registry over the Sources API plus a state store; see the module docstring."""

    updates_in_place = False

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
        base, key = _endpoint(url)
        self.display_url = key
        self.writable = writable
        self._state = StateStore(options.state, key, writable=writable)
        self._api = SourcesApi(
            base,
            key,
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

    def known(self, owner: str) -> dict[str, str]:
        return self._state.known(owner)

    def fingerprint_key(self) -> bytes | None:
        return self._state.fingerprint_key()

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
    def init(self) -> int:
        return self._state.init()

    @contextmanager
    def locked(self, timeout: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[None]:
        """The state store's lock. Unlike a SQL registry's, a failure inside still commits
        the state: API calls already made cannot be rolled back, and forgetting them would
        leave records that nobody owns."""
        failure: BaseException | None = None
        with self._state.locked(timeout):
            try:
                yield
            except BaseException as exc:
                failure = exc
        if failure is not None:
            raise failure

    def apply(self, writes: Writes, run: RunEntry) -> None:
        """Adoptions, creates, replaces, then deletes, one call at a time; stops at the first
        failure, whose error says what had been done."""
        if not self.writable:
            raise RegistryError(f"registry {self.display_url} was opened read-only")
        done = {"adopted": 0, "created": 0, "replaced": 0, "deleted": 0}
        with self.locked():
            self._state.init()  # the state must be able to record a write before it is made
            try:
                for update in writes.updates:
                    self._adopt(update)
                    done["adopted"] += 1
                for new in writes.creates:
                    self._register(new)
                    done["created"] += 1
                for replace in writes.replaces:
                    self._replace(replace)
                    done["replaced"] += 1
                for gone in writes.deletes:
                    self._api.delete(gone.id, gone.name)
                    self._state.forget(gone.id)
                    done["deleted"] += 1
            except RegistryError as exc:
                if any(done.values()):
                    so_far = ", ".join(f"{n} {what}" for what, n in done.items())
                    raise type(exc)(f"{exc} (applied before the failure: {so_far})") from None
                raise
            run.finished_at = datetime.now(UTC)
            run.outcome = "success"
            self._state.record_run(run)

    def _adopt(self, update: RecordUpdate) -> None:
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
        connection = _unmasked(live.get("connection") or {}, None)
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

    def _register(self, new: NewRecord) -> None:
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
        self._api.delete(replace.old_id, name)
        self._state.forget(replace.old_id)
        try:
            self._register(replace.record)
        except RegistryError as exc:
            raise RegistryError(
                f"replacing source '{name}' failed half-way: its old record {replace.old_id} "
                f"was deleted, but {exc}. '{name}' is now missing from the registry; run "
                "reconcile again to register it"
            ) from None

    def record_run(self, run: RunEntry) -> None:
        self._state.record_run(run)

    def list_runs(self, limit: int = 20) -> list[RunEntry]:
        return self._state.list_runs(limit)

    def close(self) -> None:
        self._api.close()
        self._state.close()

    # -- records -------------------------------------------------------------------------
    def _record(self, doc: Mapping[str, Any], state: RemoteRecordState | None) -> Record:
        last = state.last_applied if state else None
        try:
            return Record.model_validate(
                {
                    "id": str(doc["id"]),
                    "name": doc["name"],
                    "source_type": doc["source_type"],
                    "connection": _unmasked(doc.get("connection") or {}, last),
                    "description": doc.get("description") or "",
                    "tags": tuple(doc.get("tags") or ()),
                    "registered_by": doc.get("registered_by") or "",
                    "registered_at": doc.get("registered_at"),
                    "status": doc.get("status") or "active",
                    "managed_by": state.owner if state else None,
                    "last_applied": last,
                    "fingerprints": state.fingerprints if state else {},
                }
            )
        except (KeyError, ValidationError):
            raise RegistryError(
                f"reading sources: {self.display_url} returned a record that does not fit "
                f"the Sources API (id {doc.get('id')!r})"
            ) from None


def _unmasked(connection: Mapping[str, Any], last: Mapping[str, Any] | None) -> dict[str, Any]:
    """A masked value ("***") is not the value and must never look like a change.

    A record never changes under its id, so its value is the one last applied: a secret
    reference stays unknown (None; planning compares the reference and the stored
    fingerprint instead), a literal is taken from the last-applied document. On a record
    this reconciler never applied, a masked value is unknown (None).
    """
    applied = (last or {}).get("connection") or {}
    out: dict[str, Any] = {}
    for key, value in connection.items():
        if isinstance(value, str) and _MASKED.match(value):
            previous = applied.get(key)
            value = None if previous is None or is_reference(previous) else previous
        out[key] = value
    return out


def _endpoint(url: str) -> tuple[str, str]:
    """The base URL to send to, and the registry's key: the URL without credentials or a
    trailing /v1/sources, so `https://reg/` and `https://reg/v1/sources` share state."""
    invalid = RegistryError(
        f"invalid registry URL '{redact_url(url)}' (expected http(s)://HOST[:PORT][/PREFIX])"
    )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise invalid from None
    if not parts.hostname:
        raise invalid
    path = parts.path.rstrip("/").removesuffix(BASE_PATH)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6 literal
    if port:
        host += f":{port}"
    scheme = parts.scheme.lower()
    base = urlunsplit((scheme, parts.netloc, path, "", ""))
    return base, urlunsplit((scheme, host, path, "", ""))


def open_http(url: str, *, writable: bool, options: ConnectOptions | None = None) -> HttpRegistry:
    """`http(s)://HOST[:PORT][/PREFIX]`, bearer token from RECONCILER_TOKEN."""
    token = os.environ.get(TOKEN_ENV) or None
    if token:
        REDACTOR.add(token)  # the last line of defence: no output ever shows it
    return HttpRegistry(url, writable=writable, token=token, options=options)
