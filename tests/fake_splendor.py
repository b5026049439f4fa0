"""A contract-faithful Splendor API on 127.0.0.1 (shared/seeds/000 and Splendor's API
reference, docs.withsplendor.com/api-reference/connectors-&-airbyte/...), in memory.

Documented: POST /v1/admin/airbyte-sources (create an Airbyte source: its required fields
and their lengths, the `{airbyte, connector, source}` answer) and POST
/v1/admin/airbyte-sources/{source_id}/provision (`source_configuration`, the `{airbyte,
source}` answer); bearer token, the required `x-splendor-tenant-id` header (FastAPI's 422
when missing), integer source ids. A created source already carries its `airbyte` object,
with no Airbyte source and every status `pending`, before it is provisioned. Beside them,
what the provider assumes: the list (`?limit=&offset=`, an array of `{source, airbyte}`;
the server caps `limit` at `max_limit`, small so every test crosses pages) and GET of one
source. Provisioning is asynchronous: the statuses are pending until `ready_after` reads of
the source, then active/ready, or `credential_status: invalid` for the source keys in
`failing`. `console()` makes a source as a person does in Splendor.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

from fake_http import FakeServer, Reply, Request

# provider_key -> Airbyte definition name and the configuration fields it requires.
PROVIDERS = {
    "stripe": ("Stripe", ("account_id", "client_secret")),
    "hubspot": ("HubSpot", ("client_secret",)),
    "github": ("GitHub", ("personal_access_token",)),
}
# The create body's required fields and their lengths (Splendor's API reference).
CREATE = {
    "bucket": 255,
    "connector_key": 128,
    "connector_name": 255,
    "dataset_id": 128,
    "iam_role_arn": 2048,
    "provider_key": 64,
    "source_key": 128,
    "source_name": 255,
}
_ITEM = re.compile(r"^/v1/admin/airbyte-sources/([^/]+)(/provision)?$")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Splendor(FakeServer):
    def __init__(self, *, token: str = "sp-token", tenant: str = "acme") -> None:
        super().__init__()
        self.token = token
        self.tenant = tenant
        self.sources: dict[int, dict[str, Any]] = {}
        self.ready_after = 1  # reads of a source before provisioning is done
        self.failing: set[str] = set()  # source keys whose credentials turn out invalid
        self.provisions: list[tuple[int, str | None, Any]] = []  # (source_id, tenant, body)
        self.creates: list[Any] = []  # the body of every POST /v1/admin/airbyte-sources
        self.max_limit = 40  # the most sources one list page answers

    # -- what a person does in the Splendor console ---------------------------------------
    def console(self, source_key: str, provider_key: str = "stripe") -> dict[str, Any]:
        """A source made in Splendor, not provisioned yet."""
        status, body, *_ = self._create(
            {
                "bucket": f"{self.tenant}-{source_key}",
                "connector_key": provider_key,
                "connector_name": PROVIDERS[provider_key][0],
                "dataset_id": source_key,
                "iam_role_arn": f"arn:aws:iam::123456789012:role/{self.tenant}-splendor",
                "provider_key": provider_key,
                "source_key": source_key,
                "source_name": source_key.replace("-", " ").title(),
            }
        )
        assert status == 200, body
        return self.sources[body["source"]["source_id"]]

    def _create(self, body: Any) -> Reply:
        if not isinstance(body, dict):
            return 422, _missing("body", "Input should be a valid dictionary")
        for key, longest in CREATE.items():
            value = body.get(key)
            if not isinstance(value, str) or not 1 <= len(value) <= longest:
                return 422, _missing(key, f"String should have 1 to {longest} characters")
        if body.get("schedule_type", "manual") not in ("manual", "cron"):
            return 422, _missing("schedule_type", "Input should be 'manual' or 'cron'")
        provider_key = body["provider_key"]
        if provider_key not in PROVIDERS:
            return 400, {"detail": f"Unknown provider '{provider_key}'"}
        source_key = body["source_key"]
        if any(e["source"]["source_key"] == source_key for e in self.sources.values()):
            return 409, {"detail": f"A source with source_key '{source_key}' already exists"}
        with self._lock:
            source_id = max(self.sources, default=11) + 1
            connector_id = source_id + 100
        now = _now()
        entry = {
            "provider_key": provider_key,
            "configuration": None,
            "reads": 0,
            "provisioned": False,
            "airbyte": {
                "airbyte_connection_id": None,
                "airbyte_destination_id": None,
                "airbyte_source_definition_id": f"def_{provider_key}",
                "airbyte_source_definition_name": PROVIDERS[provider_key][0],
                "airbyte_source_id": None,
                "connection_status": "pending",
                "credential_status": "pending",
                "cron_expression": body.get("cron_expression"),
                "destination_status": "pending",
                "oauth_mode": "airbyte",
                "provider_key": provider_key,
                "schedule_type": body.get("schedule_type", "manual"),
                "source_id": source_id,
                "stream_config": {"streams": list(body.get("streams") or [])},
            },
            "connector": {
                "config": {},
                "connector_id": connector_id,
                "connector_key": body["connector_key"],
                "connector_type": "airbyte",
                "created_at": now,
                "enabled": True,
                "name": body["connector_name"],
                "tenant_id": self.tenant,
                "updated_at": now,
            },
            "source": {
                "bucket": body["bucket"],
                "connector_id": connector_id,
                "created_at": now,
                "dataset_id": body["dataset_id"],
                "enabled": body.get("enabled", True),
                "external_id_configured": False,
                "format": "jsonl",
                "iam_role_arn": body["iam_role_arn"],
                "ingest_token_configured": True,
                "ingest_token_created_at": now,
                "ingest_token_last_used_at": None,
                "ingest_token_revoked_at": None,
                "intake_role_arn": None,
                "name": body["source_name"],
                "parse_config": body.get("parse_config") or {},
                "prefix": body.get("prefix") or "",
                "retention_days": body.get("retention_days"),
                "search_config": {"text_fields": []},
                "semantic_config": {
                    "document_embeddings": {"fields": []},
                    "vocabulary": {"fields": []},
                },
                "source_id": source_id,
                "source_key": source_key,
                "source_type": "airbyte",
                "tenant_id": self.tenant,
                "transform_config": body.get("transform_config") or {},
                "updated_at": now,
            },
        }
        with self._lock:
            self.sources[source_id] = entry
        return 200, copy.deepcopy({k: entry[k] for k in ("airbyte", "connector", "source")})

    def add(self, source_key: str, provider_key: str = "stripe") -> dict[str, Any]:
        """A source made and provisioned in the console, behind the reconciler's back."""
        entry = self.console(source_key, provider_key)
        config = {k: "by-hand" for k in PROVIDERS[provider_key][1]}
        status, body, *_ = self._provision(entry, {"source_configuration": config})
        assert status == 200, body
        entry["reads"] = self.ready_after
        self._advance(entry)
        return entry

    def by_key(self, source_key: str) -> dict[str, Any]:
        (entry,) = [e for e in self.sources.values() if e["source"]["source_key"] == source_key]
        return entry

    def names(self) -> list[str]:
        return sorted(e["source"]["source_key"] for e in self.sources.values() if e["provisioned"])

    # -- the API ---------------------------------------------------------------------------
    def route(self, request: Request) -> Reply:
        if request.bearer() != self.token:
            return 401, {"detail": "Invalid authentication credentials"}
        tenant = request.headers.get("x-splendor-tenant-id")
        if tenant is None:
            return 422, {
                "detail": [
                    {
                        "loc": ["header", "x-splendor-tenant-id"],
                        "msg": "Field required",
                        "type": "missing",
                    }
                ]
            }
        if tenant != self.tenant:
            return 403, {"detail": f"No access to tenant '{tenant}'"}
        if request.path == "/v1/admin/airbyte-sources":
            if request.method == "POST":
                try:
                    body = request.json()
                except ValueError:
                    return 422, _missing("body", "Invalid JSON")
                self.creates.append(body)
                return self._create(body)
            if request.method != "GET":
                return 405, {"detail": "Method Not Allowed"}
            limit = min(int(request.query.get("limit", 50)), self.max_limit)
            offset = int(request.query.get("offset", 0))
            with self._lock:
                listed = sorted(self.sources)[offset : offset + limit]
            return 200, [self._shown(self.sources[i]) for i in listed]
        match = _ITEM.match(request.path)
        if match is None:
            return 404, {"detail": "Not Found"}
        if not match.group(1).isdigit():
            return 422, {
                "detail": [
                    {
                        "loc": ["path", "source_id"],
                        "msg": "Input should be a valid integer",
                        "type": "int_parsing",
                    }
                ]
            }
        entry = self.sources.get(int(match.group(1)))
        if entry is None:
            return 404, {"detail": "Source not found"}
        if match.group(2):
            if request.method != "POST":
                return 405, {"detail": "Method Not Allowed"}
            try:
                body = request.json()
            except ValueError:
                return 422, {"detail": [{"loc": ["body"], "msg": "Invalid JSON"}]}
            self.provisions.append((entry["source"]["source_id"], tenant, body))
            return self._provision(entry, body)
        if request.method != "GET":
            return 405, {"detail": "Method Not Allowed"}
        entry["reads"] += 1
        self._advance(entry)
        return 200, self._shown(entry)

    def _provision(self, entry: dict[str, Any], body: Any) -> Reply:
        config = body.get("source_configuration") if isinstance(body, dict) else None
        if not isinstance(config, dict):
            return 422, {
                "detail": [
                    {
                        "loc": ["body", "source_configuration"],
                        "msg": "Field required",
                        "type": "missing",
                    }
                ]
            }
        provider = entry["provider_key"]
        missing = [f for f in PROVIDERS[provider][1] if f not in config]
        if missing:
            return 400, {"detail": f"source_configuration is missing '{missing[0]}' for {provider}"}
        source_id = entry["source"]["source_id"]
        entry["configuration"] = config
        entry["reads"] = 0
        entry["provisioned"] = True
        entry["airbyte"] = {
            **(entry["airbyte"] or {}),
            "airbyte_connection_id": f"conn_{source_id}",
            "airbyte_destination_id": f"dst_{source_id}",
            "airbyte_source_id": f"airbyte_src_{source_id}",
            "connection_status": "pending",
            "credential_status": "pending",
            "destination_status": "provisioning",
        }
        entry["source"]["updated_at"] = _now()
        return 200, self._shown(entry)

    def _advance(self, entry: dict[str, Any]) -> None:
        airbyte = entry["airbyte"]
        if not entry["provisioned"] or airbyte is None or airbyte["connection_status"] != "pending":
            return
        if entry["reads"] >= self.ready_after:
            if entry["source"]["source_key"] in self.failing:
                airbyte.update(credential_status="invalid", destination_status="ready")
            else:
                airbyte.update(
                    connection_status="active",
                    credential_status="ready",
                    destination_status="ready",
                )

    @staticmethod
    def _shown(entry: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy({"airbyte": entry["airbyte"], "source": entry["source"]})


def _missing(field: str, msg: str) -> dict[str, Any]:
    return {"detail": [{"loc": ["body", field], "msg": msg, "type": "value_error"}]}
