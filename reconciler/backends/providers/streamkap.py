"""Streamkap (`streamkap+https://HOST`): CDC source connectors, bearer token STREAMKAP_TOKEN.

Built to shared/seeds/001 (POST /sources): `name` ← name, `connector` ← TYPE of
`streamkap/TYPE`, `config` ← connection (Streamkap's dot-notation properties, flat), sent
with `created_from: api` and `desired_state: Active`. Where the seed is silent we follow the
REST conventions of that path, as a careful client would: GET /sources?page=N&limit=M (an
array; an empty page ends it), GET, PUT and DELETE /sources/{id}. Secrets are never asked
for (`secret_returned=false`), so a secret property is write-only: compared by fingerprint.

A new or updated connector starts asynchronously: the apply polls GET /sources/{id} until
`connector_status` reaches the `desired_state` (Active), fails on Broken, and gives up after
RECONCILER_OPERATION_TIMEOUT. Streamkap has no description or tags: they live in the state.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any

from reconciler.backends.base import ConnectOptions, NewRecord
from reconciler.backends.providers.base import Observed, Provider
from reconciler.backends.providers.plan_review import Rules
from reconciler.backends.remote.transport import pages
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

    # -- reading -------------------------------------------------------------------------
    def observe_all(self) -> list[Observed]:
        def page(number: int) -> list[dict[str, Any]]:
            body = self.api.json(
                "GET",
                "/sources",
                what="listing sources",
                params={"page": number + 1, "limit": PAGE, "secret_returned": "false"},
            )
            if isinstance(body, dict) and isinstance(body.get("data"), list):
                body = body["data"]
            if not isinstance(body, list):
                raise RegistryError(f"listing sources: unexpected answer from {self.display_url}")
            return body

        return [self._observed(doc) for doc in pages(page, lambda d: str(d.get("id")))]

    def observe(self, record_id: str, name: str) -> Observed | None:
        response, _ = self.api.send(
            "GET",
            f"/sources/{record_id}",
            what=f"reading source '{name}'",
            params={"secret_returned": "false"},
            absent=(404,),
        )
        if response.status_code == 404:
            return None
        return self._observed(self.api.body(response, f"reading source '{name}'"))

    def _observed(self, doc: Any) -> Observed:
        try:
            created = doc.get("created_timestamp")
            return Observed(
                id=str(doc["id"]),
                name=str(doc.get("name") or ""),
                type=str(doc["connector"]),
                connection=dict(doc.get("config") or {}),
                registered_at=datetime.fromisoformat(created) if created else None,
                status=str(doc.get("connector_status") or "unknown"),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise RegistryError(
                f"reading sources: {self.display_url} returned a source that does not fit the "
                "Streamkap API"
            ) from None

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
            response, _ = self.api.send(
                "GET", f"/sources/{record_id}", what=what, params={"secret_returned": "false"}
            )
            doc = self.api.body(response, what)
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


def open_streamkap(
    url: str, *, writable: bool, options: ConnectOptions | None = None
) -> StreamkapRegistry:
    """`streamkap+https://HOST[:PORT][/PREFIX]`, bearer token from STREAMKAP_TOKEN."""
    token = os.environ.get(TOKEN_ENV) or None
    return StreamkapRegistry(url, writable=writable, token=token, options=options)
