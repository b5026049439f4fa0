"""The Sources API on the wire: one pooled client, bounded retries, one-line errors.

Every call goes through `_send`, the one place where transport failures and HTTP statuses
become retries or a `RegistryError` naming what was being done and the status, never the
bearer token. Retries back off exponentially with jitter and honour `Retry-After`; a
registration (POST) is retried only when the server certainly did not process it, since
this API has no idempotency key and a blind retry could register a source twice.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ..errors import RegistryError, StaleRecordError

BASE_PATH = "/v1/sources"
# Statuses that mean "try again later" (rate limit, overloaded or restarting gateway).
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Statuses and errors after which a POST certainly never reached the application.
_POST_RETRY_STATUSES = frozenset({429, 503})
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class SourceUnreachable(RegistryError):
    """The registry is up, but the database behind one source is not (schema: HTTP 503)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: `attempts` in all, waits doubling from `base_delay` up to `max_delay`.

    A `Retry-After` (or `X-RateLimit-Reset`) longer than `max_retry_after` is not waited for:
    the run fails at once with the server's figure rather than hanging a CI job.
    """

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], None] = time.sleep


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
        self.retry = retry or RetryPolicy()
        self.concurrency = concurrency
        self.timeout = timeout
        self._token = token
        headers = {"Accept": "application/json", "User-Agent": "reconciler"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

    # -- the documented endpoints --------------------------------------------------------
    def list_summaries(self) -> list[dict[str, Any]]:
        """GET /v1/sources: every source, without its connection."""
        body = self._send("GET", BASE_PATH, what="listing sources")[0].json()
        if not isinstance(body, list):
            raise RegistryError(f"listing sources: unexpected answer from {self.display_url}")
        return body

    def get(self, record_id: str, name: str) -> dict[str, Any] | None:
        """GET /v1/sources/{id}: the full record; None when it is gone (404)."""
        response, _ = self._send(
            "GET", f"{BASE_PATH}/{record_id}", what=f"reading source '{name}'", absent=(404,)
        )
        return None if response.status_code == 404 else dict(response.json())

    def get_many(self, summaries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The full records of `summaries`, fetched in parallel (at most `concurrency` at once).

        Records deleted between the list and their GET are left out, as if listed a moment
        later; the first failure cancels the rest and is raised.
        """
        if not summaries:
            return []
        workers = min(self.concurrency, len(summaries))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sources-api") as pool:
            futures = [pool.submit(self.get, s["id"], s.get("name", s["id"])) for s in summaries]
            try:
                found = [f.result() for f in futures]
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        return [record for record in found if record is not None]

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /v1/sources: the new full record (with the id the server gave it)."""
        what = f"registering source '{body['name']}'"
        response, _ = self._send("POST", BASE_PATH, what=what, json=body, idempotent=False)
        record = response.json()
        if not isinstance(record, dict) or "id" not in record:
            raise RegistryError(f"{what}: {self.display_url} answered without a record id")
        return record

    def delete(self, record_id: str, name: str) -> None:
        """DELETE /v1/sources/{id}; a record already gone means someone else deleted it."""
        what = f"deleting source '{name}'"
        response, attempts = self._send(
            "DELETE", f"{BASE_PATH}/{record_id}", what=what, absent=(404,)
        )
        # After a retry, a 404 may be our own first attempt having landed: that is success.
        if response.status_code == 404 and attempts == 1:
            raise StaleRecordError(
                f"{what}: record {record_id} is no longer in the registry (HTTP 404): it "
                "changed since it was read. Run again to see the new plan."
            )

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
            raise SourceUnreachable(f"HTTP 503: {self._detail(response)}")
        body = response.json()
        if not isinstance(body, dict) or not isinstance(body.get("columns"), list):
            raise RegistryError(f"{what}: unexpected answer from {self.display_url}")
        return body

    def close(self) -> None:
        self._client.close()

    # -- transport -----------------------------------------------------------------------
    def _send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json: Any = None,
        idempotent: bool = True,
        absent: Iterable[int] = (),
    ) -> tuple[httpx.Response, int]:
        """Send with retries; statuses in `absent` are answers, returned with the attempt count."""
        answers = set(absent)
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self.retry.attempts
            try:
                response = self._client.request(method, path, json=json)
            except httpx.TransportError as exc:
                retryable = idempotent or isinstance(exc, _NOT_SENT)
                if last or not retryable:
                    message = self._transport_message(what, exc, attempt, idempotent)
                    raise RegistryError(message) from None
                self.retry.sleep(self._backoff(attempt))
                continue
            status = response.status_code
            if status < 400 or status in answers:
                return response, attempt
            retryable = status in (RETRY_STATUSES if idempotent else _POST_RETRY_STATUSES)
            if not retryable or last:
                raise RegistryError(self._status_message(what, response, attempt))
            wait = self._server_wait(response)
            if wait is not None and wait > self.retry.max_retry_after:
                raise RegistryError(
                    f"{self._status_message(what, response, attempt)} (the registry asks to "
                    f"wait {wait:.0f} s, more than the {self.retry.max_retry_after:.0f} s this "
                    "run waits)"
                )
            jitter = random.uniform(0, 0.1 * wait) if wait else 0.0
            self.retry.sleep(wait + jitter if wait is not None else self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        """Exponential with "equal jitter": half fixed, half random, so clients spread out."""
        delay = min(self.retry.max_delay, self.retry.base_delay * 2.0 ** (attempt - 1))
        return delay / 2 + random.uniform(0, delay / 2)

    @staticmethod
    def _server_wait(response: httpx.Response) -> float | None:
        """Seconds the server asks us to wait: Retry-After (seconds or a date), else the
        X-RateLimit-Reset of a 429 (epoch seconds or seconds from now)."""
        value = response.headers.get("Retry-After")
        now = datetime.now(UTC)
        if value:
            if value.strip().isdigit():
                return float(value)
            try:
                return max((parsedate_to_datetime(value) - now).total_seconds(), 0.0)
            except (TypeError, ValueError):
                return None
        reset = response.headers.get("X-RateLimit-Reset")
        if response.status_code == 429 and reset and reset.strip().isdigit():
            seconds = float(reset)
            return max(seconds - now.timestamp(), 0.0) if seconds > 1e9 else seconds
        return None

    def _status_message(self, what: str, response: httpx.Response, attempt: int) -> str:
        status = response.status_code
        tries = f" after {attempt} attempts" if attempt > 1 else ""
        head = f"{what}: HTTP {status} from {self.display_url}{tries}"
        if status == 401:
            hint = (
                "the registry rejected the token in RECONCILER_TOKEN"
                if self._token
                else "RECONCILER_TOKEN is not set and the registry requires a token"
            )
            return f"{head}: {hint}"
        if status == 403:
            detail = self._detail(response)
            return f"{head}: the token in RECONCILER_TOKEN is not allowed to do this ({detail})"
        return f"{head}: {self._detail(response)}"

    def _transport_message(
        self, what: str, exc: httpx.TransportError, attempt: int, idempotent: bool
    ) -> str:
        tries = f" after {attempt} attempts" if attempt > 1 else ""
        if isinstance(exc, httpx.TimeoutException):
            why = f"no answer within {self.timeout:g} s (--http-timeout)"
        elif isinstance(exc, httpx.ConnectError):
            why = "cannot connect"
        else:
            why = "the connection was dropped"
        if not idempotent and not isinstance(exc, _NOT_SENT):
            why += (
                "; it may or may not have been registered: the next run shows it as an "
                "unmanaged record if it was"
            )
        return self._scrub(f"{what}: {why} ({self.display_url}{tries}: {type(exc).__name__})")

    def _detail(self, response: httpx.Response) -> str:
        """The error body's `detail` as one short line: a string, or FastAPI's list of errors."""
        try:
            detail = response.json().get("detail", "")
        except (ValueError, AttributeError):
            detail = response.text
        if isinstance(detail, list):
            detail = "; ".join(
                ".".join(str(p) for p in d.get("loc", ())[1:]) + ": " + str(d.get("msg", ""))
                if isinstance(d, dict)
                else str(d)
                for d in detail
            )
        text = " ".join(str(detail).split()) or response.reason_phrase
        return self._scrub(text[:300])

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text
