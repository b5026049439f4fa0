"""A contract-faithful Airbyte Agents API on 127.0.0.1 (shared/seeds/003), in memory.

/api/v1/integrations/connectors as the seed documents it: create (200; exactly one of
connector_type, definition_id or source_template_id, else 422 with the seed's message;
credentials checked against the connector's auth schemes, 400 with "Credentials do not
match any auth scheme"; GitHub's required `replication_config.repositories`, 422), list
(`{"data": [...]}` for one workspace, by name or id; 404 for an unknown one; optional
definition_id filter), get, and delete (202 with a job id; the connector stays listed for
`delete_after` list reads, then is gone). Errors use the seed's envelope
`{"message", "errors": [{field, message, error_code}]}`; a create body with a property the
API does not know is a 422 (the seed: "unknown property"). With `page_size` set, the list is
paged through a `next` link (the seed shows none; the client follows one if sent).
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from fake_http import FakeServer, Reply, Request

# slug -> (definition id, display name, auth schemes: the credential keys of each).
DEFINITIONS = {
    "github": ("ef69ef6e-aa7f-4af1-a01d-ef775033524e", "GitHub", ({"personal_access_token"},)),
    "hubspot": (
        "36c891d9-4bd9-43ac-bad2-10e12756272c",
        "HubSpot",
        ({"client_id", "client_secret", "refresh_token"}, {"access_token"}),
    ),
    "linear": ("1c5d8316-ed42-4473-8fbc-2626f03f070c", "Linear", ({"api_key"},)),
    "stripe": ("e094cb9a-26de-4645-8761-65c0c425d1de", "Stripe", ({"client_secret"},)),
}
WORKSPACES = {"default": "0b3a5f9e-0000-4000-8000-000000000001"}
_ITEM = re.compile(r"^/api/v1/integrations/connectors/([^/]+)$")
IDENTIFIERS = ("connector_type", "definition_id", "source_template_id")
# The create body's properties (seed 003; airbytehq/airbyte-agent-sdk cloud_utils/client.py
# create_source): anything else is a 422, as the seed says of an unknown property.
BODY = {
    *IDENTIFIERS,
    "workspace_name",
    "name",
    "credentials",
    "replication_config",
    "server_side_oauth_secret_id",
}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _error(status: int, message: str, field: str = "body", code: str = "value_error") -> Reply:
    return status, {
        "message": message,
        "errors": [{"field": field, "message": message, "error_code": code}],
    }


class AirbyteAgents(FakeServer):
    def __init__(self, *, token: str = "ab-token") -> None:
        super().__init__()
        self.token = token
        self.connectors: dict[str, dict[str, Any]] = {}
        # One default template per definition: its id is what source_template_id pins.
        self.templates = {
            slug: {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, slug)), "slug": slug}
            for slug in DEFINITIONS
        }
        self.delete_after = 1  # list reads a deleted connector still appears in
        self.page_size: int | None = None

    def error(self, status: int, message: str) -> Any:
        return _error(status, message)[1]

    # -- what a person does in the Airbyte UI ---------------------------------------------
    def add(self, name: str, slug: str = "linear") -> dict[str, Any]:
        status, body, *_ = self._create(
            {
                "workspace_name": "default",
                "connector_type": slug,
                "name": name,
                "credentials": {"api_key": "lin"},
            }
        )
        assert status == 200, body
        return self.connectors[body["id"]]

    def by_name(self, name: str) -> dict[str, Any]:
        found = [c for c in self.connectors.values() if c["name"] == name and not c["deleting"]]
        assert len(found) == 1, f"{len(found)} connectors named {name}"
        return found[0]

    def names(self) -> list[str]:
        return sorted(c["name"] for c in self.connectors.values() if not c["deleting"])

    # -- the API ---------------------------------------------------------------------------
    def route(self, request: Request) -> Reply:
        if request.bearer() != self.token:
            return _error(401, "Invalid or missing bearer token", "authorization", "unauthorized")
        if request.path == "/api/v1/integrations/connectors":
            if request.method == "GET":
                return self._list(request.query)
            if request.method == "POST":
                try:
                    return self._create(request.json())
                except ValueError:
                    return _error(422, "Invalid JSON body")
            return _error(405, "Method Not Allowed")
        match = _ITEM.match(request.path)
        found = self.connectors.get(match.group(1)) if match else None
        if found is None:
            return _error(404, "Connector not found", "connector_id", "not_found")
        if request.method == "GET":
            return 200, self._full(found)
        if request.method == "DELETE":
            if found["deleting"]:
                return _error(404, "Connector not found", "connector_id", "not_found")
            found["deleting"] = True
            found["reads_left"] = self.delete_after
            return 202, {"job_id": str(uuid.uuid4())}
        return _error(405, "Method Not Allowed")

    def _list(self, query: dict[str, str]) -> Reply:
        workspace = query.get("workspace_name")
        if workspace is None and query.get("workspace_id") in WORKSPACES.values():
            workspace = next(k for k, v in WORKSPACES.items() if v == query["workspace_id"])
        if workspace is None and not query.get("workspace_id"):
            return _error(422, "workspace_name or workspace_id is required", "query")
        if workspace not in WORKSPACES:
            return _error(404, f"Workspace '{workspace}' not found", "workspace_name", "not_found")
        with self._lock:
            for c in list(self.connectors.values()):
                if c["deleting"]:
                    if c["reads_left"] <= 0:
                        del self.connectors[c["id"]]
                    c["reads_left"] -= 1
            listed = [
                c
                for c in self.connectors.values()
                if c["workspace"] == workspace
                and query.get("definition_id") in (None, c["definition_id"])
            ]
        start = int(query.get("cursor", 0))
        size = self.page_size or len(listed) or 1
        page = listed[start : start + size]
        body: dict[str, Any] = {"data": [self._summary(c) for c in page]}
        if self.page_size and start + size < len(listed):
            body["next"] = (
                f"/api/v1/integrations/connectors?workspace_name={workspace}&cursor={start + size}"
            )
        return 200, body

    def _create(self, body: Any) -> Reply:
        if not isinstance(body, dict):
            return _error(422, "Input should be a valid dictionary")
        unknown = sorted(set(body) - BODY)
        if unknown:
            return _error(422, f"Extra inputs are not permitted: {unknown[0]}", unknown[0])
        given = [k for k in IDENTIFIERS if body.get(k)]
        if not given:
            return _error(
                422,
                "Value error, One of connector_type, definition_id, or "
                "source_template_id must be provided",
            )
        if len(given) > 1:
            return _error(
                422,
                "Value error, Only one of connector_type, definition_id, or "
                "source_template_id may be provided",
            )
        workspace = body.get("workspace_name") or "default"
        if workspace not in WORKSPACES:
            return _error(404, f"Workspace '{workspace}' not found", "workspace_name", "not_found")
        slug = self._slug(body[given[0]], given[0])
        if slug is None:
            return _error(422, f"Unknown {given[0]} '{body[given[0]]}'", given[0])
        credentials = body.get("credentials") or {}
        keys = set(credentials) - {"option_title"}
        schemes = DEFINITIONS[slug][2]
        if keys not in schemes:
            available = "; ".join(", ".join(sorted(s)) for s in schemes)
            return _error(
                400,
                f"Credentials do not match any auth scheme. Provided keys: {sorted(keys)}. "
                f"Available schemes: {available}",
                "credentials",
            )
        replication = body.get("replication_config") or {}
        if slug == "github" and "repositories" not in replication:
            return _error(422, "required property 'repositories' not found", "replication_config")
        if not isinstance(body.get("name"), str) or not body["name"]:
            return _error(422, "Field required", "name")
        now = _now()
        connector = {
            "id": str(uuid.uuid4()),
            "name": body["name"],
            "workspace": workspace,
            "slug": slug,
            "definition_id": DEFINITIONS[slug][0],
            "template_id": self.templates[slug]["id"],
            "credentials": credentials,  # stored, never returned
            "replication_config": replication,  # never returned either
            "created_at": now,
            "updated_at": now,
            "deleting": False,
            "reads_left": 0,
        }
        with self._lock:
            self.connectors[connector["id"]] = connector
        return 200, self._full(connector)

    def _slug(self, value: str, kind: str) -> str | None:
        for slug, (definition, _, _) in DEFINITIONS.items():
            if (kind, value) in (
                ("connector_type", slug),
                ("definition_id", definition),
                ("source_template_id", self.templates[slug]["id"]),
            ):
                return slug
        return None

    def _template(self, c: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": c["template_id"],
            "name": DEFINITIONS[c["slug"]][1],
            "actor_definition_id": c["definition_id"],
            "icon": f"https://connectors.airbyte.com/files/metadata/airbyte/source-{c['slug']}/latest/icon.svg",
            "mode": "REPLICATION",
        }

    def _summary(self, c: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": c["id"],
            "name": c["name"],
            "summarized_source_template": self._template(c),
            "created_at": c["created_at"],
            "updated_at": c["updated_at"],
        }

    def _full(self, c: dict[str, Any]) -> dict[str, Any]:
        template = {**self._template(c), "user_config_spec": {"type": "object"}}
        return copy.deepcopy(
            {
                "id": c["id"],
                "name": c["name"],
                "source_template": template,
                "entities": [],
                "created_at": c["created_at"],
                "updated_at": c["updated_at"],
            }
        )
