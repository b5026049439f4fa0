"""Airbyte Agents (`airbyte-agents+https://HOST?workspace_name=NAME`): connectors, bearer
application token in AIRBYTE_AGENTS_TOKEN.

Built to shared/seeds/003 (/api/v1/integrations/connectors: create, list, get, delete; no
update). `name` ← the manifest's; TYPE of `airbyte-agents/TYPE` is sent as `definition_id`
when it is a UUID (the seed's recommendation), else as `connector_type` (a slug such as
`github`); `connection.source_template_id` pins a template instead (then sent alone: exactly
one identifier is allowed); `credentials` ← the `connection.credentials.FIELD` keys and
`replication_config` ← `connection.replication_config`. The workspace comes from the URL.

Nothing can be updated, so any change to those fields replaces the connector; description
and tags are kept in the state store (the API has no such fields). Neither credentials nor
replication_config is ever returned: both are compared with what was last applied. Deletion
is asynchronous (202 and a job id): the apply polls the list until the id has left it. The
seed shows no pagination; a `next` link is followed if the server sends one.
"""

from __future__ import annotations

import re
from typing import Any

from reconciler.backends.base import NewRecord
from reconciler.backends.providers.base import Observed, Provider, timestamp
from reconciler.backends.providers.plan_review import Rules
from reconciler.errors import RegistryError
from reconciler.models import Record

TOKEN_ENV = "AIRBYTE_AGENTS_TOKEN"
PATH = "/api/v1/integrations/connectors"
CREDENTIALS = "credentials."
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_WORKSPACE = ("workspace_name", "workspace_id")


class AirbyteAgentsRegistry(Provider):
    rules = Rules(
        provider="airbyte-agents",
        type_word="CONNECTOR_TYPE",
        in_place=(),  # no update endpoint: every API field replaces
        state_only=("description", "tags"),
    )
    token_env = TOKEN_ENV
    api_name = "Airbyte Agents"
    noun = "connector"
    params = _WORKSPACE
    url_query = "?workspace_name=NAME"

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        given = [p for p in _WORKSPACE if self.query.get(p)]
        if len(given) != 1:
            raise RegistryError(
                f"invalid registry URL '{self.display_url}' (expected "
                "airbyte-agents+https://HOST[:PORT][/PREFIX]?workspace_name=NAME, or "
                "?workspace_id=ID: exactly one workspace)"
            )
        self.workspace = {given[0]: self.query[given[0]]}

    # -- reading -------------------------------------------------------------------------
    def observe_all(self) -> list[Observed]:
        what = "listing connectors"
        found: list[Observed] = []
        path: str | None = PATH
        params: dict[str, str] | None = dict(self.workspace)
        seen: set[str] = set()
        while path:
            body = self.api.json("GET", path, what=what, params=params)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise RegistryError(f"{what}: unexpected answer from {self.display_url}")
            fresh = [self._observed(d, what) for d in body["data"] if str(d.get("id")) not in seen]
            if not fresh:
                break  # a `next` that goes round in circles
            seen.update(o.id for o in fresh)
            found.extend(fresh)
            nxt = body.get("next")
            path, params = (str(nxt), None) if nxt else (None, None)
        return found

    def observe(self, record_id: str, name: str) -> Observed | None:
        found = self._read_one(f"{PATH}/{record_id}", name)
        return None if found is None else self._observed(*found)

    def _observed(self, doc: Any, what: str) -> Observed:
        with self._reading(what, "a connector"):
            template = doc.get("source_template") or doc["summarized_source_template"]
            connection = {"source_template_id": str(template["id"])} if template.get("id") else {}
            return Observed(
                id=str(doc["id"]),
                name=str(doc["name"]),
                type=str(template["actor_definition_id"]),
                connection=connection,
                registered_at=timestamp(doc.get("created_at")),
            )

    def source_type(self, observed: Observed, last: Any) -> str:
        """The type it was created as: a connector never changes type, and the API reports
        only the definition id, not the slug a manifest may have used."""
        if last and last.get("source_type"):
            return str(last["source_type"])
        return f"airbyte-agents/{observed.type}"

    def write_only(self, key: str) -> bool:
        return key.startswith(CREDENTIALS) or key == "replication_config"

    # -- writing -------------------------------------------------------------------------
    def create(self, new: NewRecord) -> str:
        what = f"creating connector '{new.name}'"
        connection = new.connection
        kind = new.source_type.removeprefix("airbyte-agents/")
        body: dict[str, Any] = {**self.workspace, "name": new.name}
        if connection.get("source_template_id"):
            body["source_template_id"] = connection["source_template_id"]
        elif _UUID.match(kind):
            body["definition_id"] = kind
        else:
            body["connector_type"] = kind
        body["credentials"] = {
            k.removeprefix(CREDENTIALS): v
            for k, v in connection.items()
            if k.startswith(CREDENTIALS)
        }
        if "replication_config" in connection:
            body["replication_config"] = connection["replication_config"]
        response, _ = self.api.send("POST", PATH, what=what, json=body, idempotent=False)
        created = self.api.body(response, what)
        if not isinstance(created, dict) or not created.get("id"):
            raise RegistryError(f"{what}: {self.display_url} answered without a connector id")
        return str(created["id"])

    def update(self, record_id: str, new: NewRecord, live: Record) -> None:
        # review() turns every change of an API field into a replace; reaching this is a bug.
        raise RegistryError(f"connector '{new.name}': Airbyte Agents cannot update in place")

    def delete(self, record_id: str, name: str) -> None:
        """DELETE answers 202 with a job id; done when the id has left the list."""
        what = f"deleting connector '{name}'"
        response = self.api.delete(f"{PATH}/{record_id}", what=what, record_id=record_id)
        if response is None:
            return  # a retry found our first attempt had landed
        answer = self.api.body(response, what) if response.content else {}
        job = answer.get("job_id") if isinstance(answer, dict) else None
        label = f"deletion job {job}" if job else "deletion"

        def poll() -> tuple[bool, str]:
            listed = {o.id for o in self.observe_all()}
            return record_id not in listed, f"listed ({label} running)"

        settled = self.waiter.until(poll, what)
        self.notes.append(f"{name}: deleted ({label}, {settled.polls} check(s))")


# `airbyte-agents+https://HOST?workspace_name=NAME`, token from AIRBYTE_AGENTS_TOKEN.
open_airbyte_agents = AirbyteAgentsRegistry.from_env
