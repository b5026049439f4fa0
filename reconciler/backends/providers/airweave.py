"""Airweave (`airweave+https://HOST`): source connections, API key in AIRWEAVE_API_KEY.

Built to shared/seeds/002 (POST /source-connections, header `x-api-key`): `short_name` ←
TYPE of `airweave/TYPE`; `name`, `description` ← the manifest's; `readable_collection_id`,
`config`, `schedule`, `sync_immediately` ← the connection's keys of those names, and
`authentication.credentials` ← its `credentials.FIELD` keys (direct authentication: the
seed's OAuth browser and auth-provider flows need a person or another product, so they are
not offered). The seed's reference also lists list/get/update (PATCH)/delete; their shapes
follow Airweave's published reference: GET /source-connections?skip=&limit= (a page of
light items, so each connection's details are read with GET /source-connections/{id}, in
parallel), PATCH updates name, description, config, schedule and direct credentials in place.
A connection never moves to another collection or source: those replace it.

Creation is immediate for direct credentials; its answer is checked (a connection that is
not authenticated, needs re-authentication or is in error fails the run, with Airweave's
`error_message`). The first sync is Airweave's business and is not waited for.
"""

from __future__ import annotations

from typing import Any

from reconciler.backends.base import NewRecord
from reconciler.backends.providers.base import Observed, Provider, timestamp
from reconciler.backends.providers.plan_review import Rules
from reconciler.backends.remote.transport import pages
from reconciler.errors import RegistryError
from reconciler.models import Change, Record

TOKEN_ENV = "AIRWEAVE_API_KEY"
PATH = "/source-connections"
PAGE = 100
CREDENTIALS = "credentials."
_FAILED = {"needs_reauth": "needs re-authentication", "error": "is in error"}


class AirweaveRegistry(Provider):
    rules = Rules(
        provider="airweave",
        type_word="SHORT_NAME",
        in_place=(
            "name",
            "description",
            "connection.config",
            "connection.schedule",
            "connection.credentials",  # direct auth only: the PATCH says so
            "connection.sync_immediately",  # used at creation only: nothing to write after
        ),
        state_only=("tags",),
    )
    token_env = TOKEN_ENV
    api_name = "Airweave"
    token_noun = "API key"
    token_header = "x-api-key"
    noun = "source connection"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answers: dict[str, dict[str, Any]] = {}  # create/PATCH answers, for `settle`

    # -- reading -------------------------------------------------------------------------
    def observe_all(self) -> list[Observed]:
        def page(offset: int) -> list[dict[str, Any]]:
            what = "listing source connections"
            body = self.api.json("GET", PATH, what=what, params={"skip": offset, "limit": PAGE})
            if not isinstance(body, list):
                raise RegistryError(f"{what}: unexpected answer from {self.display_url}")
            return body

        items = list(pages(page, lambda item: str(item.get("id"))))
        found = self.api.parallel(
            lambda item: self.observe(str(item["id"]), str(item.get("name"))), items
        )
        return [o for o in found if o is not None]  # deleted between the list and the read

    def observe(self, record_id: str, name: str) -> Observed | None:
        found = self._read_one(f"{PATH}/{record_id}", name)
        if found is None:
            return None
        doc, what = found
        with self._reading(what, "a connection"):
            connection: dict[str, Any] = {"readable_collection_id": doc["readable_collection_id"]}
            if doc.get("config"):
                connection["config"] = dict(doc["config"])
            schedule = doc.get("schedule")
            if isinstance(schedule, dict) and schedule.get("cron") is not None:
                connection["schedule"] = {"cron": schedule["cron"]}  # next_run is computed
            return Observed(
                id=str(doc["id"]),
                name=str(doc["name"]),
                type=str(doc["short_name"]),
                connection=connection,
                description=doc.get("description") or "",
                registered_at=timestamp(doc.get("created_at")),
                status=str(doc.get("status") or "unknown"),
            )

    def write_only(self, key: str) -> bool:
        return key.startswith(CREDENTIALS) or key == "sync_immediately"

    # -- planning ------------------------------------------------------------------------
    def check(self, change: Change) -> str | None:
        doc = change.document or {}
        if not 4 <= len(change.name) <= 42:
            return "Airweave names are 4 to 42 characters long"
        if len(doc.get("description") or "") > 255:
            return "Airweave descriptions are at most 255 characters long"
        return None

    # -- writing -------------------------------------------------------------------------
    def create(self, new: NewRecord) -> str:
        what = f"creating source connection '{new.name}'"
        connection = new.connection
        body: dict[str, Any] = {
            "short_name": new.source_type.removeprefix("airweave/"),
            "readable_collection_id": connection["readable_collection_id"],
            "name": new.name,
            **self._fields(new),
        }
        if "sync_immediately" in connection:
            body["sync_immediately"] = connection["sync_immediately"]
        credentials = _credentials(connection)
        if credentials:
            body["authentication"] = {"credentials": credentials}
        response, _ = self.api.send("POST", PATH, what=what, json=body, idempotent=False)
        created = self.api.body(response, what)
        if not isinstance(created, dict) or not created.get("id"):
            raise RegistryError(f"{what}: {self.display_url} answered without an id")
        self._answers[str(created["id"])] = created
        return str(created["id"])

    def update(self, record_id: str, new: NewRecord, live: Record) -> None:
        body = {"name": new.name, **self._fields(new, live)}
        credentials = _credentials(new.connection)
        if credentials and self._credentials_changed(new, live):
            body["authentication"] = {"credentials": credentials}
        what = f"updating source connection '{new.name}'"
        response, _ = self.api.send("PATCH", f"{PATH}/{record_id}", what=what, json=body)
        self._answers[record_id] = self.api.body(response, what)

    def delete(self, record_id: str, name: str) -> None:
        what = f"deleting source connection '{name}'"
        self.api.delete(f"{PATH}/{record_id}", what=what, record_id=record_id)

    def settle(self, record_id: str, name: str, doing: str) -> None:
        """No polling: direct credentials are checked at once, and the answer says how."""
        doc = self._answers.pop(record_id, {})
        status = str(doc.get("status") or "")
        auth = doc.get("auth")
        why = _FAILED.get(status)
        if status == "pending_auth" or (
            isinstance(auth, dict) and auth.get("authenticated") is False
        ):
            why = "is not authenticated (direct credentials expected: connection.credentials.*)"
        if why:
            detail = doc.get("error_message")
            detail = f": {self.api.scrub(str(detail))}" if detail else ""
            raise RegistryError(
                f"{doing} source connection '{name}': Airweave says it {why}{detail}; it is "
                "registered and owned, fix its credentials and run again"
            )
        self.notes.append(f"{name}: {status or 'created'}")

    @staticmethod
    def _fields(new: NewRecord, live: Record | None = None) -> dict[str, Any]:
        """description, config and schedule; on a PATCH, one the manifest no longer sets is
        cleared (an omitted field would keep its value)."""
        connection = new.connection
        was = live.connection if live else {}
        fields: dict[str, Any] = {}
        if new.description or live:
            fields["description"] = new.description
        if "config" in connection or "config" in was:
            fields["config"] = connection.get("config") or {}
        if "schedule" in connection or "schedule" in was:
            fields["schedule"] = connection.get("schedule") or {"cron": None}
        return fields

    @staticmethod
    def _credentials_changed(new: NewRecord, live: Record) -> bool:
        """A rotated secret (fingerprints) or a changed literal credential field."""
        keys = {k for k in (*new.connection, *live.connection) if k.startswith(CREDENTIALS)}
        applied = (live.last_applied or {}).get("connection") or {}
        wanted = (new.last_applied or {}).get("connection") or {}
        rotated = any(
            new.fingerprints.get(f"connection.{k}") != live.fingerprints.get(f"connection.{k}")
            for k in keys
        )
        return rotated or any(applied.get(k) != wanted.get(k) for k in keys)


def _credentials(connection: dict[str, Any]) -> dict[str, Any]:
    return {
        key.removeprefix(CREDENTIALS): value
        for key, value in connection.items()
        if key.startswith(CREDENTIALS)
    }


# `airweave+https://HOST[:PORT][/PREFIX]`, API key from AIRWEAVE_API_KEY (x-api-key).
open_airweave = AirweaveRegistry.from_env
