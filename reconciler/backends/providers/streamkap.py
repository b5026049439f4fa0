"""Streamkap (`streamkap+https://HOST`): CDC source connectors, bearer token STREAMKAP_TOKEN.

Built to shared/seeds/001 (POST /sources): `name` ← name, `connector` ← TYPE of
`streamkap/TYPE`, `config` ← connection (Streamkap's dot-notation properties, flat), sent
with `created_from: api` and `desired_state: Active`. Reading follows Streamkap's API as its
Terraform provider reads it (internal/api/source.go): GET /sources?page=N&page_size=M and
GET /sources/{id} both answer an envelope `{"result": [...], "total", "page", "page_size",
"has_next"}` (one source in `result` for a GET by id, none when it is gone); the list is read
page by page until `has_next` is false. PUT and DELETE /sources/{id} as that provider calls
them. Secrets are never asked for (`secret_returned=false`), so a secret property is
write-only: compared by fingerprint.

A new or updated connector starts asynchronously: the apply polls GET /sources/{id} until
`connector_status` reaches the `desired_state` (Active), fails on Broken, and gives up after
RECONCILER_OPERATION_TIMEOUT. Streamkap has no description or tags: they live in the state.
"""

from __future__ import annotations

import re
from typing import Any

from reconciler.backends.base import NewRecord
from reconciler.backends.providers.base import Observed, Provider, timestamp
from reconciler.backends.providers.plan_review import Rules
from reconciler.errors import RegistryError
from reconciler.models import Record

TOKEN_ENV = "STREAMKAP_TOKEN"
PAGE = 100
# The connection schema's pattern for properties that name a secret (schemas/streamkap...).
_SECRET = re.compile(r"(password|passphrase|secret|token|key)$")
_FAILED = frozenset({"broken", "failed"})


class StreamkapRegistry(Provider):
    rules = Rules(
        provider="streamkap",
        type_word="CONNECTOR",
        in_place=("name", "connection"),  # PUT /sources/{id}; a new connector replaces
        state_only=("description", "tags"),
    )
    token_env = TOKEN_ENV
    api_name = "Streamkap"

    # -- reading -------------------------------------------------------------------------
    def observe_all(self) -> list[Observed]:
        """Every page, until `has_next` is false (or a page brings nothing new: a server
        that ignores `page` costs one extra request, not an endless loop)."""
        what = "listing sources"
        found: dict[str, Observed] = {}
        number = 1
        while True:
            params = {"page": number, "page_size": PAGE, "secret_returned": "false"}
            result, more = self._envelope(
                self.api.json("GET", "/sources", what=what, params=params), what
            )
            fresh = [o for o in map(self._observed, result) if o.id not in found]
            found.update((o.id, o) for o in fresh)
            if not more or not fresh:
                return list(found.values())
            number += 1

    def observe(self, record_id: str, name: str) -> Observed | None:
        doc = self._get(record_id, f"reading source '{name}'", absent=(404,))
        return None if doc is None else self._observed(doc)

    def _get(
        self, record_id: str, what: str, absent: tuple[int, ...] = ()
    ) -> dict[str, Any] | None:
        """GET /sources/{id}: the one source in its envelope; None when it is gone."""
        response, _ = self.api.send(
            "GET",
            f"/sources/{record_id}",
            what=what,
            params={"secret_returned": "false"},
            absent=absent,
        )
        if response.status_code == 404:
            return None
        result, _ = self._envelope(self.api.body(response, what), what)
        return result[0] if result else None

    def _envelope(self, body: Any, what: str) -> tuple[list[Any], bool]:
        """`result` and `has_next` of Streamkap's paged envelope."""
        if not isinstance(body, dict) or not isinstance(body.get("result"), list):
            raise RegistryError(
                f"{what}: {self.display_url} answered without Streamkap's "
                '{"result": [...]} envelope'
            )
        return body["result"], body.get("has_next") is True

    def _observed(self, doc: Any) -> Observed:
        with self._reading("reading sources", "a source"):
            return Observed(
                id=str(doc["id"]),
                name=str(doc.get("name") or ""),
                type=str(doc["connector"]),
                connection=dict(doc.get("config") or {}),
                registered_at=timestamp(doc.get("created_timestamp")),
                status=str(doc.get("connector_status") or "unknown"),
            )

    def write_only(self, key: str) -> bool:
        return _SECRET.search(key) is not None

    # -- writing -------------------------------------------------------------------------
    def create(self, new: NewRecord) -> str:
        what = f"creating source '{new.name}'"
        body = {**self._body(new), "created_from": "api", "desired_state": "Active"}
        response, _ = self.api.send(
            "POST",
            "/sources",
            what=what,
            json=body,
            params={"secret_returned": "false"},
            idempotent=False,
        )
        created = self.api.body(response, what)
        if not isinstance(created, dict) or not created.get("id"):
            raise RegistryError(f"{what}: {self.display_url} answered without a source id")
        return str(created["id"])

    def update(self, record_id: str, new: NewRecord, live: Record) -> None:
        # PUT replaces the whole source: the config holds every property, secrets resolved.
        self.api.send(
            "PUT",
            f"/sources/{record_id}",
            what=f"updating source '{new.name}'",
            json=self._body(new),
            params={"secret_returned": "false"},
        )

    def delete(self, record_id: str, name: str) -> None:
        self.api.delete(
            f"/sources/{record_id}", what=f"deleting source '{name}'", record_id=record_id
        )

    def settle(self, record_id: str, name: str, doing: str) -> None:
        """Poll until `connector_status` is the `desired_state`; Broken is a failure."""
        what = f"{doing} source '{name}'"

        def poll() -> tuple[bool, str]:
            doc = self._get(record_id, what)
            if doc is None:
                raise RegistryError(f"{what}: it is no longer in the registry")
            status = str(doc.get("connector_status") or "Unknown")
            desired = str(doc.get("desired_state") or "Active")
            if status.casefold() in _FAILED:
                tasks = doc.get("task_statuses") or {}
                detail = f" (task statuses: {self.api.scrub(str(tasks))[:200]})" if tasks else ""
                raise RegistryError(
                    f"{what}: Streamkap reports its connector {status}{detail}; it is "
                    "registered and owned, fix its config and run again"
                )
            return status.casefold() == desired.casefold(), f"connector {status}"

        settled = self.waiter.until(poll, what)
        self.notes.append(f"{name}: {settled.state} ({settled.polls} check(s))")

    def _body(self, new: NewRecord) -> dict[str, Any]:
        return {
            "name": new.name,
            "connector": new.source_type.removeprefix("streamkap/"),
            "config": dict(new.connection),
        }


# `streamkap+https://HOST[:PORT][/PREFIX]`, bearer token from STREAMKAP_TOKEN.
open_streamkap = StreamkapRegistry.from_env
