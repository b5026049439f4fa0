"""Splendor (`splendor+https://HOST?tenant=TENANT`): Airbyte-backed sources, bearer token in
SPLENDOR_TOKEN, the tenant sent as `x-splendor-tenant-id`.

shared/seeds/000 documents one endpoint, POST /v1/admin/airbyte-sources/{source_id}/provision
with `source_configuration`, answering the source (`SourceItem`) and its Airbyte side
(`AirbyteRefItem`). So a record here is a Splendor source that has been provisioned: its
name is the source's `source_key`, its type `splendor/PROVIDER_KEY` (the Airbyte provider),
its connection the `source_configuration`, which the API never returns (write-only: compared
with what was last applied, secrets by fingerprint).

A careful client builds on that one endpoint and guesses as little as it can:

- Reading needs a list, which the seed does not show: GET /v1/admin/airbyte-sources?limit=
  &offset= is assumed (the collection of the documented path; an array of the provision
  answer's `{source, airbyte}` shape, `airbyte` null while unprovisioned; an empty page ends
  it), and GET /v1/admin/airbyte-sources/{source_id} for one source.
- The API cannot create a source: "create" provisions the existing unprovisioned source
  with that source_key, and the plan blocks a manifest for which there is none.
- Changing the configuration provisions again (in place). The provider is chosen in
  Splendor (the provision body has no field for it), so a different type is blocked.
- There is no way to deprovision or delete: --prune is blocked with why.
- Provisioning is asynchronous: the apply polls the source until its connection is active
  and its credential and destination ready, and fails on a failed status.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime
from typing import Any

from reconciler.backends.base import ConnectOptions, NewRecord
from reconciler.backends.providers.base import Observed, Provider
from reconciler.backends.providers.plan_review import Rules
from reconciler.backends.remote.transport import pages
from reconciler.errors import RegistryError
from reconciler.models import Change, Record

TOKEN_ENV = "SPLENDOR_TOKEN"
PATH = "/v1/admin/airbyte-sources"
PAGE = 100
_FAILED = frozenset({"failed", "error", "invalid", "revoked", "expired"})


class SplendorRegistry(Provider):
    rules = Rules(
        provider="splendor",
        type_word="PROVIDER_KEY",
        in_place=("connection",),  # provisioned again
        state_only=("description", "tags"),
        fixed={
            "source_type": "the Airbyte provider of a Splendor source is chosen in Splendor, "
            "and the provision API has no field for it",
        },
        no_delete="Splendor's API has no way to deprovision or delete a source; remove it in "
        "Splendor, or keep its manifest",
    )
    token_env = TOKEN_ENV
    params = ("tenant",)
    required = ("tenant",)
    url_query = "?tenant=TENANT"
    creating = "provisioning"
    updating = "provisioning again"

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        # Sources not provisioned yet, by casefolded source_key: what a create provisions.
        self._unprovisioned: dict[str, int] = {}
        # By source id, the provider Splendor provisioned with, and what was applied: `settle`
        # reports a mismatch once the source is remembered as owned.
        self._provisioned: dict[str, tuple[str, NewRecord]] = {}

    def headers(self) -> dict[str, str]:
        return {"x-splendor-tenant-id": self.query["tenant"]}

    # -- reading -------------------------------------------------------------------------
    def observe_all(self) -> list[Observed]:
        what = "listing sources"

        def page(offset: int) -> list[dict[str, Any]]:
            params = {"limit": PAGE, "offset": offset}
            body = self.api.json("GET", PATH, what=what, params=params)
            if not isinstance(body, list):
                raise RegistryError(f"{what}: unexpected answer from {self.display_url}")
            return body

        found: list[Observed] = []
        self._unprovisioned = {}
        for item in pages(page, lambda item: str((item.get("source") or {}).get("source_id"))):
            observed = self._observed(item, what)
            if observed is not None:
                found.append(observed)
            else:
                source = item["source"]
                self._unprovisioned[str(source["source_key"]).casefold()] = int(source["source_id"])
        return found

    def observe(self, record_id: str, name: str) -> Observed | None:
        what = f"reading source '{name}'"
        response, _ = self.api.send("GET", f"{PATH}/{record_id}", what=what, absent=(404,))
        if response.status_code == 404:
            return None
        return self._observed(self.api.body(response, what), what)

    def _observed(self, item: Any, what: str) -> Observed | None:
        """The record of a provisioned source; None for one not provisioned (yet)."""
        try:
            source, airbyte = item["source"], item.get("airbyte")
            if not airbyte:
                return None
            created = source.get("created_at")
            return Observed(
                id=str(source["source_id"]),
                name=str(source["source_key"]),
                type=str(airbyte["provider_key"]),
                connection={},  # source_configuration is never returned
                registered_at=datetime.fromisoformat(created) if created else None,
                status=str(airbyte.get("connection_status") or "unknown"),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise RegistryError(
                f"{what}: {self.display_url} returned a source that does not fit the Splendor API"
            ) from None

    def write_only(self, key: str) -> bool:
        return True

    # -- planning ------------------------------------------------------------------------
    def check(self, change: Change) -> str | None:
        if change.action == "create" and change.name.casefold() not in self._unprovisioned:
            return (
                f"no unprovisioned Splendor source with source_key '{change.name}' in tenant "
                f"'{self.query['tenant']}': Splendor's API cannot create sources, create it in "
                "Splendor first"
            )
        return None

    # -- writing -------------------------------------------------------------------------
    def create(self, new: NewRecord) -> str:
        source_id = self._unprovisioned.get(new.name.casefold())
        if source_id is None:  # the plan blocks this; only a race gets here
            raise RegistryError(f"provisioning source '{new.name}': no such unprovisioned source")
        self._provision(str(source_id), new, self.creating)
        return str(source_id)

    def update(self, record_id: str, new: NewRecord, live: Record) -> None:
        self._provision(record_id, new, self.updating)

    def delete(self, record_id: str, name: str) -> None:
        raise RegistryError(f"deleting source '{name}': {self.rules.no_delete}")

    def _provision(self, source_id: str, new: NewRecord, doing: str) -> None:
        what = f"{doing} source '{new.name}'"
        body = {"source_configuration": dict(new.connection)}
        response, _ = self.api.send(
            "POST", f"{PATH}/{source_id}/provision", what=what, json=body, idempotent=False
        )
        answer = self.api.body(response, what)
        if not isinstance(answer, dict) or not isinstance(answer.get("airbyte"), dict):
            raise RegistryError(f"{what}: {self.display_url} answered without its Airbyte side")
        self._provisioned[source_id] = (str(answer["airbyte"].get("provider_key")), new)

    def settle(self, record_id: str, name: str, doing: str) -> None:
        """Poll the source until its Airbyte connection is active and everything ready."""
        what = f"{doing} source '{name}'"
        got, new = self._provisioned.pop(record_id)
        wanted = new.source_type.removeprefix("splendor/")
        if got != wanted:
            # Remember the provider it has, so the next plan shows a type to fix, not drift.
            actual = f"splendor/{got}"
            last = {**new.last_applied, "source_type": actual}
            self._state.remember(record_id, replace(new, source_type=actual, last_applied=last))
            raise RegistryError(
                f"{what}: Splendor provisioned it with provider '{got}', not '{wanted}' (the "
                "provider is chosen in Splendor); it is provisioned and owned, fix its "
                "source_type and run again"
            )

        def poll() -> tuple[bool, str]:
            response, _ = self.api.send("GET", f"{PATH}/{record_id}", what=what)
            airbyte = self.api.body(response, what).get("airbyte") or {}
            statuses = {
                "connection": str(airbyte.get("connection_status")),
                "credential": str(airbyte.get("credential_status")),
                "destination": str(airbyte.get("destination_status")),
            }
            shown = ", ".join(f"{k} {v}" for k, v in statuses.items())
            if _FAILED & {v.casefold() for v in statuses.values()}:
                raise RegistryError(
                    f"{what}: Splendor reports {shown}; it is provisioned and owned, fix its "
                    "source_configuration and run again"
                )
            done = statuses == {
                "connection": "active",
                "credential": "ready",
                "destination": "ready",
            }
            return done, shown

        settled = self.waiter.until(poll, what)
        self.notes.append(f"{name}: {settled.state} ({settled.polls} check(s))")


def open_splendor(
    url: str, *, writable: bool, options: ConnectOptions | None = None
) -> SplendorRegistry:
    """`splendor+https://HOST[:PORT][/PREFIX]?tenant=TENANT`, token from SPLENDOR_TOKEN."""
    token = os.environ.get(TOKEN_ENV) or None
    return SplendorRegistry(url, writable=writable, token=token, options=options)
