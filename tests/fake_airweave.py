"""A contract-faithful Airweave API on 127.0.0.1 (shared/seeds/002), in memory.

POST /source-connections as the seed documents it: `x-api-key`, the request fields and
their limits (name 4-42, description <= 255), the SourceConnection it returns (id,
organization_id, name defaulting to "{Source Name} Connection", auth, schedule with
next_run, sync, entities, federated_search), and FastAPI's 422 `{"detail": [...]}`. The
endpoints the seed's reference lists beside it (list with skip/limit, get, PATCH, delete)
follow Airweave's published shapes (airweave-ai/python-sdk source_connections/raw_client.py;
airweave-ai/airweave backend/airweave/schemas/source_connection.py): the list is a bare
array of light items, paged by skip/limit, and the server caps `limit` at `max_limit`
(small, so every test crosses pages); a schedule comes back with the server's defaults
(`continuous`, `cursor_field`, `cursor_value`, `next_run`); unknown body properties are
ignored (pydantic's default: the models do not forbid extras); DELETE answers the deleted
connection. Credentials are stored and never returned; a source in `reauth` comes back as
needs_reauth with an error_message.
"""

from __future__ import annotations

import contextlib
import copy
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from fake_http import FakeServer, Reply, Request

# short_name -> display name and the direct-auth credential fields it requires.
SOURCES = {
    "github": ("GitHub", ("personal_access_token",)),
    "linear": ("Linear", ("api_key",)),
    "postgresql": ("PostgreSQL", ("host", "user", "password")),
    "stripe": ("Stripe", ("api_key",)),
}
ORG = "123e4567-e89b-12d3-a456-426614174000"
# Config fields a source fills in when left out, echoed back on every read.
CONFIG_DEFAULTS = {"github": {"branch": "main"}}
_ITEM = re.compile(r"^/source-connections/([^/]+)$")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Airweave(FakeServer):
    def __init__(self, *, token: str = "aw-key") -> None:
        super().__init__()
        self.token = token
        self.collections = {"support-tickets", "docs", "warehouse"}
        self.connections: dict[str, dict[str, Any]] = {}
        self.reauth: set[str] = set()  # names that come back as needs_reauth
        self.bodies: list[tuple[str, Any]] = []  # (method, body) of every POST and PATCH
        self.max_limit = 3  # the most connections one list page answers

    # -- what a person does in the Airweave UI --------------------------------------------
    def add(self, name: str, short_name: str = "github", **fields: Any) -> dict[str, Any]:
        fields.setdefault("readable_collection_id", "docs")
        fields.setdefault("authentication", {"credentials": {"personal_access_token": "x"}})
        status, body = self._create({"name": name, "short_name": short_name, **fields})
        assert status == 200, body
        return self.connections[body["id"]]

    def by_name(self, name: str) -> dict[str, Any]:
        found = [c for c in self.connections.values() if c["name"] == name]
        assert len(found) == 1, f"{len(found)} connections named {name}"
        return found[0]

    def names(self) -> list[str]:
        return sorted(c["name"] for c in self.connections.values())

    # -- the API ---------------------------------------------------------------------------
    def route(self, request: Request) -> Reply:
        if request.headers.get("x-api-key") != self.token:
            return 401, {"detail": "Invalid or missing API key"}
        if request.method in ("POST", "PATCH"):
            with contextlib.suppress(ValueError):
                self.bodies.append((request.method, request.json()))
        if request.path == "/source-connections":
            if request.method == "GET":
                skip = int(request.query.get("skip", 0))
                limit = int(request.query.get("limit", 100))
                if not 1 <= limit <= 1000:
                    return 422, _detail("query", "limit", "Input should be between 1 and 1000")
                with self._lock:
                    every = list(self.connections.values())
                listed = every[skip : skip + min(limit, self.max_limit)]
                return 200, [_light(c) for c in listed]
            if request.method == "POST":
                try:
                    body = request.json()
                except ValueError:
                    return 422, _detail("body", "body", "Invalid JSON")
                status, out = self._create(body)
                return status, _shown(out) if status == 200 else out
            return 405, {"detail": "Method Not Allowed"}
        match = _ITEM.match(request.path)
        found = self.connections.get(match.group(1)) if match else None
        if found is None:
            return 404, {"detail": "Source connection not found"}
        if request.method == "GET":
            return 200, _shown(found)
        if request.method == "PATCH":
            return self._patch(found, request.json())
        if request.method == "DELETE":
            with self._lock:
                self.connections.pop(found["id"], None)
            return 200, _shown(found)
        return 405, {"detail": "Method Not Allowed"}

    def _create(self, body: Any) -> tuple[int, dict[str, Any]]:
        problems = _invalid(body, create=True)
        if problems:
            return 422, {"detail": problems}
        if body["short_name"] not in SOURCES:
            return 404, {"detail": f"Source '{body['short_name']}' not found"}
        if body["readable_collection_id"] not in self.collections:
            return 404, {"detail": f"Collection '{body['readable_collection_id']}' not found"}
        display, needed = SOURCES[body["short_name"]]
        credentials = ((body.get("authentication") or {}).get("credentials")) or {}
        missing = [f for f in needed if f not in credentials]
        if missing:
            return 422, _detail("body", "authentication", f"Field required: {missing[0]}")
        now = _now()
        name = body.get("name") or f"{display} Connection"
        connection = {
            "id": str(uuid.uuid4()),
            "organization_id": ORG,
            "name": name,
            "short_name": body["short_name"],
            "readable_collection_id": body["readable_collection_id"],
            "status": "needs_reauth" if name in self.reauth else "active",
            "created_at": now,
            "modified_at": now,
            "auth": {"method": "direct", "authenticated": True, "authenticated_at": now},
            "description": body.get("description"),
            "config": _config(body["short_name"], body.get("config")),
            "schedule": _schedule(body.get("schedule")),
            "sync": {"total_runs": 0, "successful_runs": 0, "failed_runs": 0, "last_job": None},
            "entities": {"total_entities": 0, "by_type": {}},
            "federated_search": False,
            "credentials": credentials,  # stored, never shown
        }
        if connection["status"] == "needs_reauth":
            connection["error_category"] = "oauth_credentials_expired"
            connection["error_message"] = "The token was revoked"
        with self._lock:
            self.connections[connection["id"]] = connection
        return 200, connection

    def _patch(self, found: dict[str, Any], body: Any) -> Reply:
        problems = _invalid(body, create=False)
        if problems:
            return 422, {"detail": problems}
        for key in ("name", "description"):
            if key in body and body[key] is not None:
                found[key] = body[key]
        if body.get("config") is not None:  # replaced whole, the source's defaults filled in
            found["config"] = _config(found["short_name"], body["config"])
        if body.get("schedule") is not None:
            found["schedule"] = _schedule(body["schedule"])
        credentials = (body.get("authentication") or {}).get("credentials")
        if credentials:
            found["credentials"] = credentials
        found["modified_at"] = _now()
        return 200, _shown(found)


def _config(short_name: str, config: Any) -> dict[str, Any] | None:
    defaults = CONFIG_DEFAULTS.get(short_name, {})
    if config is None and not defaults:
        return None
    return {**defaults, **(config or {})}


def _schedule(schedule: Any) -> dict[str, Any] | None:
    if not schedule or schedule.get("cron") is None:
        return None
    return {
        "cron": schedule["cron"],
        "next_run": "2024-03-15T18:00:00Z",
        "continuous": bool(schedule.get("continuous", False)),
        "cursor_field": schedule.get("cursor_field"),
        "cursor_value": None,
    }


def _shown(connection: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy({k: v for k, v in connection.items() if k != "credentials"})


def _light(connection: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "short_name", "readable_collection_id", "created_at", "modified_at")
    out = {k: connection[k] for k in keys}
    out.update(is_authenticated=True, entity_count=0, federated_search=False)
    out.update(auth_method="direct", status=connection["status"])
    return out


def _detail(where: str, field: str, msg: str) -> dict[str, Any]:
    return {"detail": [{"loc": [where, field], "msg": msg, "type": "value_error"}]}


def _invalid(body: Any, *, create: bool) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict"}]
    problems = []

    def bad(loc: str, msg: str) -> None:
        problems.append({"loc": ["body", loc], "msg": msg, "type": "value_error"})

    if create:
        for key in ("short_name", "readable_collection_id"):
            if not isinstance(body.get(key), str):
                bad(key, "Field required")
    name = body.get("name")
    if name is not None and not (isinstance(name, str) and 4 <= len(name) <= 42):
        bad("name", "String should have at least 4 and at most 42 characters")
    description = body.get("description")
    if description is not None and not (isinstance(description, str) and len(description) <= 255):
        bad("description", "String should have at most 255 characters")
    if body.get("config") is not None and not isinstance(body["config"], dict):
        bad("config", "Input should be a valid dictionary")
    schedule = body.get("schedule")
    if schedule is not None and not isinstance(schedule, dict):
        bad("schedule", "Input should be a valid dictionary")
    if body.get("sync_immediately") not in (None, True, False):
        bad("sync_immediately", "Input should be a valid boolean")
    return problems
