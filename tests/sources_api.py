"""A contract-faithful Sources API for tests: a real HTTP server on 127.0.0.1, in memory.

It implements exactly the documented endpoints, status codes and `{"detail": ...}` error
bodies (shared/seeds/004), plus knobs the real service may turn (masking secrets in
responses) and fault injection (429 with Retry-After, 503, slow or dropped responses, a
failure of the N-th matching request), so the HTTP backend is tested against the wire,
never against a mock.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from fake_http import FakeServer, Fault, Reply, Request

__all__ = ["Fault", "SourcesApi"]

SOURCE_TYPES = ("postgres", "csv")
MASK = "***"
_ITEM = re.compile(r"^/v1/sources/([^/]+)(/schema)?$")


class SourcesApi(FakeServer):
    """The server, its store and its knobs; use `running()` to serve it for a test."""

    def __init__(self, *, token: str | None = "test-token", read_token: str | None = None):
        super().__init__()
        self.token = token
        self.read_token = read_token  # may GET, gets 403 on writes
        self.mask_secrets = False
        self.records: dict[str, dict[str, Any]] = {}
        self.schemas: dict[str, list[dict[str, str]]] = {}  # by source name
        self.unreachable: set[str] = set()  # source names whose backend is down

    # -- what a person or another tool does to the registry directly ---------------------
    def add(self, name: str, source_type: str = "csv", **fields: Any) -> dict[str, Any]:
        """Register a source behind the reconciler's back."""
        body = {
            "name": name,
            "source_type": source_type,
            "connection": fields.pop("connection", {"file_path": f"/data/{name}.csv"}),
            **fields,
        }
        status, record = self.register(body, key="tdbk_by_hand")
        assert status == 201, record
        return record

    def register(self, body: Any, *, key: str) -> tuple[int, dict[str, Any]]:
        problems = _invalid(body)
        if problems:
            return 422, {"detail": problems}
        if body["source_type"] not in SOURCE_TYPES:
            detail = f"Invalid source_type '{body['source_type']}'. Available: csv, postgres"
            return 400, {"detail": detail}
        with self._lock:
            if self.find(body["name"]) is not None:
                return 409, {"detail": f"A source named '{body['name']}' already exists"}
            record = {
                "id": str(uuid.uuid4()),
                "name": body["name"],
                "source_type": body["source_type"],
                "connection": dict(body["connection"]),
                "description": body.get("description") or "",
                "tags": list(body.get("tags") or []),
                "registered_by": key,
                "registered_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "status": "active",
            }
            self.records[record["id"]] = record
        return 201, self.shown(record)

    def find(self, id_or_name: str) -> dict[str, Any] | None:
        """The id path parameter may be the UUID or the name (names: case-insensitive)."""
        if id_or_name in self.records:
            return self.records[id_or_name]
        wanted = id_or_name.casefold()
        return next((r for r in self.records.values() if r["name"].casefold() == wanted), None)

    def shown(self, record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(json.dumps(record))
        if self.mask_secrets:
            for key in out["connection"]:
                if key == "password":
                    out["connection"][key] = MASK
        return out

    def by_name(self, name: str) -> dict[str, Any]:
        record = self.find(name)
        assert record is not None, f"no source {name}"
        return record

    def route(self, request: Request) -> Reply:
        return _route(self, request.method, request.path, request.raw, request.bearer())


def _invalid(body: Any) -> list[dict[str, Any]]:
    """FastAPI-style 422 details for a body that does not fit the documented schema."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict"}]
    problems = []

    def bad(loc: str, msg: str) -> None:
        problems.append({"loc": ["body", loc], "msg": msg, "type": "value_error"})

    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        bad("name", "String should have 1 to 100 characters")
    if not isinstance(body.get("source_type"), str):
        bad("source_type", "Field required")
    if not isinstance(body.get("connection"), dict):
        bad("connection", "Input should be a valid dictionary")
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 500):
        bad("description", "String should have at most 500 characters")
    tags = body.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        bad("tags", "Input should be a valid list of strings")
    return problems


def _route(
    api: SourcesApi, method: str, path: str, raw: bytes, token: str | None
) -> tuple[int, Any]:
    if api.token is not None and token not in (api.token, api.read_token):
        return 401, {"detail": "Invalid or missing API key"}
    if method != "GET" and token is not None and token == api.read_token:
        return 403, {"detail": "This API key may not modify sources"}
    if path == "/v1/sources":
        if method == "GET":
            keys = ("id", "name", "source_type", "description", "tags", "registered_at")
            with api._lock:
                listed = list(api.records.values())
            return 200, [{k: r[k] for k in keys} for r in listed]
        if method == "POST":
            try:
                body = json.loads(raw or b"null")
            except ValueError:
                return 422, {"detail": [{"loc": ["body"], "msg": "Invalid JSON"}]}
            return api.register(body, key="tdbk_" + (token or "anonymous")[:6])
        return 405, {"detail": "Method Not Allowed"}
    match = _ITEM.match(path)
    if match is None:
        return 404, {"detail": "Not Found"}
    record = api.find(match.group(1))
    if match.group(2):  # /schema
        if method != "GET":
            return 405, {"detail": "Method Not Allowed"}
        if record is None:
            return 404, {"detail": "Source not found"}
        if record["name"] in api.unreachable:
            return 503, {"detail": "Source is registered but its backend is unreachable"}
        return 200, {
            "source_id": record["id"],
            "source_name": record["name"],
            "columns": api.schemas.get(record["name"], []),
            "inspected_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
    if method == "GET":
        return (200, api.shown(record)) if record else (404, {"detail": "Source not found"})
    if method == "DELETE":
        if record is None:
            return 404, {"detail": "Source not found"}
        with api._lock:
            api.records.pop(record["id"], None)
        return 204, None
    return 405, {"detail": "Method Not Allowed"}
