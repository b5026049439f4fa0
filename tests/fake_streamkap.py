"""A contract-faithful Streamkap API on 127.0.0.1 (shared/seeds/001), in memory.

POST /sources as the seed documents it: the body (name, connector, config, created_from,
desired_state, their enums), the Source it returns, `secret_returned` (secret properties
are left out unless true), and FastAPI's `{"detail": ...}` errors. GET /sources pages as
Streamkap's API does (`page` from 1, `page_size`, capped by the server at `max_page_size`,
small by default so every test crosses pages) and answers an envelope `{"result": [...],
"total", "page", "page_size", "has_next"}`; GET /sources/{id} answers the same envelope with
one source (an empty `result` when there is none), as the Streamkap Terraform provider reads
it (internal/api/source.go, GetSourceResponse). PUT/DELETE /sources/{id} as that provider
calls them. Connectors start asynchronously: `connector_status` is Pending until
`start_after` reads, then the desired state, or Broken for the names in `broken`.
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from fake_http import FakeServer, Reply, Request

CONNECTORS = {
    "postgresql": "PostgreSQL",
    "mysql": "MySQL",
    "mongodb": "MongoDB",
    "dynamodb": "DynamoDB",
    "sqlserveraws": "SQL Server on AWS",
}
CREATED_FROM = ("terraform", "web", "api")
STATES = ("Pending", "Active", "Paused", "Stopped")
SECRET = re.compile(r"(password|passphrase|secret|token|key)$")
_ITEM = re.compile(r"^/sources/([^/]+)$")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Streamkap(FakeServer):
    def __init__(self, *, token: str = "sk-token") -> None:
        super().__init__()
        self.token = token
        self.sources: dict[str, dict[str, Any]] = {}
        self.start_after = 1  # reads of a source before its connector leaves Pending
        self.broken: set[str] = set()  # names whose connector ends Broken
        # Properties the server fills in when a config leaves them out, and echoes back (the
        # defaults the Streamkap Terraform provider documents for its connectors).
        self.defaults: dict[str, Any] = {
            "slot.name": "streamkap_pgoutput_slot",
            "publication.name": "streamkap_pub",
            "heartbeat.enabled": True,
        }
        self.mask = False  # secrets shown as "********" instead of left out
        self.max_page_size = 7  # the server's cap on page_size: lists always cross pages

    # -- what a person does in the Streamkap console -------------------------------------
    def add(self, name: str, connector: str = "postgresql", **config: Any) -> dict[str, Any]:
        status, body = self._create(
            {"name": name, "connector": connector, "config": config or {"database.hostname": "h"}}
        )
        assert status == 200, body
        return self.sources[body["id"]]

    def by_name(self, name: str) -> dict[str, Any]:
        found = [s for s in self.sources.values() if s["name"] == name]
        assert len(found) == 1, f"{len(found)} sources named {name}"
        return found[0]

    def names(self) -> list[str]:
        return sorted(s["name"] for s in self.sources.values())

    # -- the API ---------------------------------------------------------------------------
    def route(self, request: Request) -> Reply:
        if request.bearer() != self.token:
            return 401, {"detail": "Not authenticated"}
        secrets = request.query.get("secret_returned", "false") == "true"
        if request.path == "/sources":
            if request.method == "POST":
                try:
                    body = request.json()
                except ValueError:
                    return 422, {"detail": [{"loc": ["body"], "msg": "Invalid JSON"}]}
                status, out = self._create(body)
                return status, self._shown(out, secrets) if status == 200 else out
            if request.method == "GET":
                page = int(request.query.get("page", 1))
                size = min(int(request.query.get("page_size", 10)), self.max_page_size)
                with self._lock:
                    every = list(self.sources.values())
                listed = every[(page - 1) * size : page * size]
                shown = [self._shown(s, secrets) for s in listed]
                return 200, _envelope(shown, len(every), page, size)
            return 405, {"detail": "Method Not Allowed"}
        match = _ITEM.match(request.path)
        source = self.sources.get(match.group(1)) if match else None
        if source is None:
            if match and request.method == "GET":
                return 200, _envelope([], 0, 1, 1)
            return 404, {"detail": "Source not found"}
        if request.method == "GET":
            source["reads"] += 1
            if source["connector_status"] == "Pending" and source["reads"] >= self.start_after:
                broken = source["name"] in self.broken
                source["connector_status"] = "Broken" if broken else source["desired_state"]
                if broken:
                    source["task_statuses"] = {"0": {"state": "FAILED", "trace": "auth failed"}}
            return 200, _envelope([self._shown(source, secrets)], 1, 1, 1)
        if request.method == "PUT":
            body = request.json()
            problems = _invalid(body)
            if problems:
                return 422, {"detail": problems}
            if body["connector"] != source["connector"]:
                return 400, {"detail": "The connector of a source cannot be changed"}
            source.update(name=body["name"], config={**self.defaults, **body["config"]})
            source.update(connector_status="Pending", reads=0, task_statuses={})
            return 200, self._shown(source, secrets)
        if request.method == "DELETE":
            with self._lock:
                self.sources.pop(source["id"], None)
            return 204, None
        return 405, {"detail": "Method Not Allowed"}

    def _create(self, body: Any) -> tuple[int, dict[str, Any]]:
        problems = _invalid(body)
        if problems:
            return 422, {"detail": problems}
        if body["connector"] not in CONNECTORS:
            return 400, {"detail": f"Unknown connector '{body['connector']}'"}
        source = {
            "id": uuid.uuid4().hex[:24],
            "name": body["name"],
            "connector": body["connector"],
            "connector_display_name": CONNECTORS[body["connector"]],
            "created_timestamp": _now(),
            "sub_id": "sub_1",
            "tenant_id": "tenant_1",
            "service_id": "svc_1",
            "config": {**self.defaults, **body["config"]},
            "topic_ids": [],
            "topic_map": {},
            "topics": [],
            "tasks": [0],
            "connector_status": "Pending",
            "desired_state": body.get("desired_state") or "Pending",
            "task_statuses": {},
            "created_from": body.get("created_from") or "api",
            "reads": 0,
        }
        with self._lock:
            self.sources[source["id"]] = source
        return 200, source

    def _shown(self, source: dict[str, Any], secrets: bool) -> dict[str, Any]:
        out = copy.deepcopy({k: v for k, v in source.items() if k not in ("reads", "created_from")})
        if not secrets:
            for key in [k for k in out["config"] if SECRET.search(k)]:
                if self.mask:
                    out["config"][key] = "********"
                else:
                    del out["config"][key]
        return out


def _envelope(result: list[dict[str, Any]], total: int, page: int, size: int) -> dict[str, Any]:
    return {
        "result": result,
        "total": total,
        "page": page,
        "page_size": size,
        "has_next": page * size < total,
    }


def _invalid(body: Any) -> list[dict[str, Any]]:
    """FastAPI-style 422 details for a body that does not fit the documented schema."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict"}]
    problems = []

    def bad(loc: str, msg: str) -> None:
        problems.append({"loc": ["body", loc], "msg": msg, "type": "value_error"})

    for key in ("name", "connector"):
        if not isinstance(body.get(key), str) or not body[key]:
            bad(key, "Field required")
    if not isinstance(body.get("config"), dict):
        bad("config", "Input should be a valid dictionary")
    if body.get("created_from") not in (None, *CREATED_FROM):
        bad("created_from", "Input should be 'terraform', 'web' or 'api'")
    if body.get("desired_state") not in (None, *STATES):
        bad("desired_state", "Input should be 'Pending', 'Active', 'Paused' or 'Stopped'")
    return problems
