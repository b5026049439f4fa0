"""The Sources API on the wire: its documented endpoints over the shared transport.

Retries, `Retry-After`, one-line errors and parallel reads are `transport.Transport`'s, the
same for every registry reached over an API; a registration (POST) is retried only when the
server certainly did not process it (see there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.backends.remote.transport import (
    Credential,
    RetryPolicy,
    Transport,
    UnreadableAnswer,
)
from reconciler.errors import RegistryError

__all__ = ["BASE_PATH", "RetryPolicy", "SourceUnreachable", "SourcesApi"]

BASE_PATH = "/v1/sources"
TOKEN_ENV = "RECONCILER_TOKEN"


class SourceUnreachable(RegistryError):
    """The registry is up, but the database behind one source is not (schema: HTTP 503)."""


class SourcesApi:
    """A client for one registry service; safe to share between threads (httpx pools)."""

    def __init__(
        self,
        base_url: str,
        display_url: str,
        *,
        token: str | None,
        timeout: float,
        retry: RetryPolicy | None = None,
        concurrency: int = 16,
    ) -> None:
        self.display_url = display_url
        self.transport = Transport(
            base_url,
            display_url,
            credential=Credential(token, TOKEN_ENV),
            timeout=timeout,
            retry=retry,
            concurrency=concurrency,
            created="registered",
        )
        self._send = self.transport.send

    # -- the documented endpoints --------------------------------------------------------
    def list_summaries(self) -> list[dict[str, Any]]:
        """GET /v1/sources: every source, without its connection."""
        what = "listing sources"
        body = self.transport.body(self._send("GET", BASE_PATH, what=what)[0], what)
        if not isinstance(body, list) or not all(isinstance(s, dict) and "id" in s for s in body):
            raise RegistryError(f"listing sources: unexpected answer from {self.display_url}")
        return body

    def get(self, record_id: str, name: str) -> dict[str, Any] | None:
        """GET /v1/sources/{id}: the full record; None when it is gone (404)."""
        what = f"reading source '{name}'"
        response, _ = self._send("GET", f"{BASE_PATH}/{record_id}", what=what, absent=(404,))
        if response.status_code == 404:
            return None
        record = self.transport.body(response, what)
        if not isinstance(record, dict):
            raise RegistryError(f"{what}: unexpected answer from {self.display_url}")
        return record

    def get_many(self, summaries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The full records of `summaries`, fetched in parallel (at most `concurrency` at once).

        Records deleted between the list and their GET are left out, as if listed a moment
        later; the first failure cancels the rest and is raised.
        """
        found = self.transport.parallel(
            lambda s: self.get(s["id"], s.get("name", s["id"])), summaries
        )
        return [record for record in found if record is not None]

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/sources: the new full record (with the id the server gave it)."""
        what = f"registering source '{body['name']}'"
        response, _ = self._send("POST", BASE_PATH, what=what, json=body, idempotent=False)
        record = self.transport.body(response, what)
        if not isinstance(record, dict) or "id" not in record:
            raise UnreadableAnswer(f"{what}: {self.display_url} answered without a record id")
        return record

    def delete(self, record_id: str, name: str) -> None:
        """DELETE /v1/sources/{id}; a record already gone means someone else deleted it."""
        path = f"{BASE_PATH}/{record_id}"
        self.transport.delete(path, what=f"deleting source '{name}'", record_id=record_id)

    def schema(self, record_id: str, name: str) -> dict[str, Any]:
        """GET /v1/sources/{id}/schema: `{source_id, source_name, columns, inspected_at}`.

        503 is an answer here (the source's database is down), raised as SourceUnreachable
        at once rather than retried, so one dead database costs one request.
        """
        what = f"reading the schema of source '{name}'"
        response, _ = self._send(
            "GET", f"{BASE_PATH}/{record_id}/schema", what=what, absent=(404, 503)
        )
        if response.status_code == 404:
            raise RegistryError(f"{what}: HTTP 404 from {self.display_url}: no such source")
        if response.status_code == 503:
            raise SourceUnreachable(f"HTTP 503: {self.transport.detail(response)}")
        body = self.transport.body(response, what)
        if not isinstance(body, dict) or not isinstance(body.get("columns"), list):
            raise RegistryError(f"{what}: unexpected answer from {self.display_url}")
        return body

    def close(self) -> None:
        self.transport.close()
