"""Splendor (`splendor+https://HOST?tenant=TENANT`): Airbyte-backed sources, bearer token in
SPLENDOR_TOKEN, the tenant sent as `x-splendor-tenant-id`.

Splendor's API reference documents creating an Airbyte source (POST
/v1/admin/airbyte-sources: bucket, connector_key, connector_name, dataset_id, iam_role_arn,
provider_key, source_key, source_name; the answer is `{airbyte, connector, source}`) and
provisioning it (shared/seeds/000, POST /v1/admin/airbyte-sources/{source_id}/provision
with `source_configuration`). A record here is a provisioned Airbyte source: its name is the
`source_key`, its type `splendor/PROVIDER_KEY`, its connection the `source_configuration`
(never returned: write-only, compared with what was last applied, secrets by fingerprint)
plus the creation fields as `source.FIELD` keys.

- A created source already carries its `airbyte` object before it is provisioned: it is
  provisioned once it has an Airbyte source (`airbyte_source_id`), assumed, as nothing
  public says which status marks it.
- Reading needs a list with the Airbyte side: GET /v1/admin/airbyte-sources?limit=&offset=
  is assumed (an array of `{source, airbyte}`; an empty page ends it), and GET
  /v1/admin/airbyte-sources/{source_id} for one source. (The documented GET
  /v1/admin/sources lists sources without their Airbyte side.)
- "create" provisions the unprovisioned source with that source_key; when there is none,
  it creates the source from the manifest's `source.*` fields, then provisions it. A
  manifest with neither is blocked in the plan.
- Changing the configuration provisions again (in place). The creation fields and the
  provider cannot change (no documented endpoint does it); there is no way to deprovision
  or delete: --prune is blocked with why.
- Provisioning is asynchronous: the apply polls the source until its connection is active
  and its credential and destination ready, and fails on a failed status.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from reconciler.backends.base import NewRecord
from reconciler.backends.providers.base import Observed, Provider, timestamp
from reconciler.backends.providers.plan_review import Rules
from reconciler.backends.remote.transport import pages
from reconciler.errors import RegistryError
from reconciler.models import Change, Record

TOKEN_ENV = "SPLENDOR_TOKEN"
PATH = "/v1/admin/airbyte-sources"
PAGE = 100
_FAILED = frozenset({"failed", "error", "invalid", "revoked", "expired"})
# Connection keys that are fields of the create request, not of source_configuration.
SOURCE = "source."
# The create request's required fields a manifest must give (the others default).
_CREATE_NEEDS = ("bucket", "dataset_id", "iam_role_arn")


class SplendorRegistry(Provider):
    rules = Rules(
        provider="splendor",
        type_word="PROVIDER_KEY",
        in_place=("connection",),  # provisioned again
        state_only=("description", "tags"),
        fixed={
            "source_type": "the Airbyte provider of a Splendor source is chosen when it is "
            "created, and the provision API has no field for it",
            "connection.source": "Splendor's API documents no update of a source's creation fields",
        },
        no_delete="Splendor's API has no way to deprovision or delete a source; remove it in "
        "Splendor, or keep its manifest",
    )
    token_env = TOKEN_ENV
    api_name = "Splendor"
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
        found = self._read_one(f"{PATH}/{record_id}", name)
        return None if found is None else self._observed(*found)

    def _observed(self, item: Any, what: str) -> Observed | None:
        """The record of a provisioned source; None for one not provisioned (yet): it may
        carry its `airbyte` object already, but no Airbyte source."""
        with self._reading(what, "a source"):
            source, airbyte = item["source"], item.get("airbyte")
            if not airbyte or not airbyte.get("airbyte_source_id"):
                return None
            return Observed(
                id=str(source["source_id"]),
                name=str(source["source_key"]),
                type=str(airbyte["provider_key"]),
                connection={},  # source_configuration is never returned
                registered_at=timestamp(source.get("created_at")),
                status=str(airbyte.get("connection_status") or "unknown"),
            )

    def write_only(self, key: str) -> bool:
        return True

    # -- planning ------------------------------------------------------------------------
    def check(self, change: Change) -> str | None:
        if change.action != "create" or change.name.casefold() in self._unprovisioned:
            return None
        connection = (change.document or {}).get("connection") or {}
        missing = [f"{SOURCE}{k}" for k in _CREATE_NEEDS if f"{SOURCE}{k}" not in connection]
        if missing:
            return (
                f"no unprovisioned Splendor source with source_key '{change.name}' in tenant "
                f"'{self.query['tenant']}' to provision; to create one, give "
                + ", ".join(f"connection.{k}" for k in missing)
            )
        return None

    # -- writing -------------------------------------------------------------------------
    def create(self, new: NewRecord) -> str:
        source_id = self._unprovisioned.get(new.name.casefold())
        if source_id is None:
            source_id = self._create_source(new)
        self._provision(str(source_id), new, self.creating)
        return str(source_id)

    def _create_source(self, new: NewRecord) -> int:
        """POST /v1/admin/airbyte-sources from the manifest's `source.*` fields."""
        what = f"creating source '{new.name}'"
        provider = new.source_type.removeprefix("splendor/")
        fields = {
            k.removeprefix(SOURCE): v for k, v in new.connection.items() if k.startswith(SOURCE)
        }
        body = {
            "provider_key": provider,
            "connector_key": provider,
            "connector_name": provider,
            "source_key": new.name,
            "source_name": new.name,
            **fields,
        }
        response, _ = self.api.send("POST", PATH, what=what, json=body, idempotent=False)
        answer = self.api.body(response, what)
        try:
            return int(answer["source"]["source_id"])
        except (KeyError, TypeError, ValueError):
            raise RegistryError(
                f"{what}: {self.display_url} answered without a source id"
            ) from None

    def update(self, record_id: str, new: NewRecord, live: Record) -> None:
        self._provision(record_id, new, self.updating)

    def delete(self, record_id: str, name: str) -> None:
        raise RegistryError(f"deleting source '{name}': {self.rules.no_delete}")

    def _provision(self, source_id: str, new: NewRecord, doing: str) -> None:
        what = f"{doing} source '{new.name}'"
        body = {
            "source_configuration": {
                k: v for k, v in new.connection.items() if not k.startswith(SOURCE)
            }
        }
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


# `splendor+https://HOST[:PORT][/PREFIX]?tenant=TENANT`, token from SPLENDOR_TOKEN.
open_splendor = SplendorRegistry.from_env
