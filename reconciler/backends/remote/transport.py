"""HTTP on the wire for every registry reached over an API: retries, one-line errors, paging.

Every call goes through `Transport.send`, the one place where transport failures and HTTP
statuses become retries or a `RegistryError` naming what was being done and the status,
never the credential. Retries back off exponentially with jitter and honour `Retry-After`;
a write that is not idempotent (a POST that creates) is retried only when the server
certainly did not process it, since none of these APIs has an idempotency key and a blind
retry could create an object twice. The Sources API backend and every provider share it, so
they all wait, give up and explain in the same way.

It is also where a broken or hostile server is contained: each attempt has a total deadline
(`--http-timeout`, from connecting to the last byte; httpx's own timeouts are per read, so
a server dripping a byte at a time would hold the run forever), an answer is read up to
`max_bytes` and no further, redirects are refused, and a link (a `next` page) to another
scheme, host or port is refused before anything is sent, so the credential never leaves the
origin it was given for.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx

from reconciler.backends.remote.deadline import deadline_in, deadline_transport
from reconciler.backends.remote.error_envelopes import envelope_message
from reconciler.backends.remote.origins import call, format_origin, origin
from reconciler.errors import RegistryError, StaleRecordError
from reconciler.redaction import REDACTOR

T = TypeVar("T")
R = TypeVar("R")
# Statuses that mean "try again later" (rate limit, overloaded or restarting gateway).
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Statuses and errors after which a POST certainly never reached the application.
_POST_RETRY_STATUSES = frozenset({429, 503})
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# The largest answer read (decoded): a registry listing is far below it, a runaway or
# hostile server is cut off.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
# Headers that describe the body as it came over the wire, not as it was read.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class AmbiguousWrite(RegistryError):
    """A create whose outcome is unknown (a timeout, a dropped connection or a gateway's 5xx
    after the request was sent): the object may exist. The state store's intent lets the
    next run find it (`shell.py`)."""


class UnreadableAnswer(AmbiguousWrite):
    """The server answered, but not with what the call expects (not JSON, the wrong shape,
    too large): after a create, the object may exist all the same."""


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


@dataclass(frozen=True)
class HttpSettings:
    """How a client talks to its API: the timeout of a request, retries, parallel requests."""

    timeout: float
    retry: RetryPolicy | None = None
    concurrency: int = 16


@dataclass(frozen=True)
class Credential:
    """The secret a registry is called with and where it came from, for 401/403 messages.

    `header` is where it goes: "Authorization" sends `Bearer <value>`, any other header
    name sends the value as is (Airweave's `x-api-key`).
    """

    value: str | None
    env: str
    noun: str = "token"
    header: str = "Authorization"

    def headers(self) -> dict[str, str]:
        if not self.value:
            return {}
        if self.header == "Authorization":
            return {"Authorization": f"Bearer {self.value}"}
        return {self.header: self.value}


class Transport:
    """A pooled client for one API; safe to share between threads (httpx pools)."""

    def __init__(
        self,
        base_url: str,
        display_url: str,
        *,
        credential: Credential,
        timeout: float,
        retry: RetryPolicy | None = None,
        concurrency: int = 16,
        headers: Mapping[str, str] | None = None,
        created: str = "created",
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.display_url = display_url
        self.retry = retry or RetryPolicy()
        self.concurrency = concurrency
        self.timeout = timeout
        self.credential = credential
        # The past participle of a creating POST, for "it may or may not have been ...".
        self.created = created
        sent = {"Accept": "application/json", "User-Agent": "reconciler"}
        sent.update(headers or {})
        sent.update(credential.headers())
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.max_bytes = max_bytes
        self._client = httpx.Client(
            base_url=base_url,
            headers=sent,
            timeout=httpx.Timeout(timeout),
            limits=limits,
            transport=deadline_transport(limits),
            follow_redirects=False,
        )
        self._origin = origin(base_url)

    def close(self) -> None:
        self._client.close()

    # -- sending -------------------------------------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
        absent: Iterable[int] = (),
    ) -> tuple[httpx.Response, int]:
        """Send with retries; statuses in `absent` are answers, returned with the attempt count."""
        answers = set(absent)
        request = self._client.build_request(method, path, json=json, params=params)
        self._same_origin(request, what, link=str(path))
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self.retry.attempts
            try:
                response = self._exchange(request, what)
            except httpx.TransportError as exc:
                retryable = idempotent or isinstance(exc, _NOT_SENT)
                if last or not retryable:
                    message = self._transport_message(what, exc, attempt, idempotent)
                    unknown = not idempotent and not isinstance(exc, _NOT_SENT)
                    raise (AmbiguousWrite if unknown else RegistryError)(message) from None
                self.retry.sleep(self._backoff(attempt))
                continue
            status = response.status_code
            if 300 <= status < 400 and status not in answers:
                raise RegistryError(self._redirect_message(what, response))
            if status < 400 or status in answers:
                return response, attempt
            retryable = status in (RETRY_STATUSES if idempotent else _POST_RETRY_STATUSES)
            if not retryable or last:
                # A 5xx other than 503 may come after the service made the object.
                unknown = not idempotent and status >= 500 and status != 503
                error = AmbiguousWrite if unknown else RegistryError
                raise error(self.status_message(what, response, attempt))
            wait = self._server_wait(response)
            if wait is not None and wait > self.retry.max_retry_after:
                raise RegistryError(
                    f"{self.status_message(what, response, attempt)} (the registry asks to "
                    f"wait {wait:.0f} s, more than the {self.retry.max_retry_after:.0f} s this "
                    "run waits)"
                )
            jitter = random.uniform(0, 0.1 * wait) if wait else 0.0
            self.retry.sleep(wait + jitter if wait is not None else self._backoff(attempt))

    def delete(self, path: str, *, what: str, record_id: str) -> httpx.Response | None:
        """DELETE `path`. A 404 means someone else deleted the object since it was read
        (StaleRecordError), unless it answers a retry: then our own first attempt landed, and
        the answer is None."""
        response, attempts = self.send("DELETE", path, what=what, absent=(404,))
        if response.status_code != 404:
            return response
        if attempts == 1:
            raise StaleRecordError(
                f"{what}: record {record_id} is no longer in the registry (HTTP 404): it "
                "changed since it was read. Run again to see the new plan."
            )
        return None

    def json(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        """`send`, then the body as JSON; a body that is not JSON is one clear line."""
        response, _ = self.send(method, path, what=what, **kwargs)
        return self.body(response, what)

    def body(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise UnreadableAnswer(
                f"{what}: HTTP {response.status_code} from {self.display_url} is not JSON "
                f"({call(response.request)})"
            ) from None

    def _exchange(self, request: httpx.Request, what: str) -> httpx.Response:
        """One attempt, read whole within the deadline and the size limit: a response
        whose body is already in memory."""
        with deadline_in(self.timeout):
            streamed = self._client.send(request, stream=True)
            try:
                body = self._read(streamed, what)
            finally:
                streamed.close()
        headers = [(k, v) for k, v in streamed.headers.multi_items() if k not in _WIRE_HEADERS]
        return httpx.Response(
            streamed.status_code,
            headers=headers,
            content=body,
            request=request,
            extensions={"reason_phrase": streamed.extensions.get("reason_phrase", b"")},
        )

    def _read(self, response: httpx.Response, what: str) -> bytes:
        declared = response.headers.get("Content-Length", "")
        too_big = UnreadableAnswer(
            f"{what}: the answer from {self.display_url} is larger than "
            f"{self.max_bytes:,} bytes ({call(response.request)}); not read"
        )
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise too_big
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():  # decoded: a compressed bomb is cut off too
            size += len(chunk)
            if size > self.max_bytes:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    def _same_origin(self, request: httpx.Request, what: str, link: str) -> None:
        """Refuse, before sending, a request to another scheme, host or port than the
        registry's (a `next` link from a hostile or misconfigured server): the credential
        goes only where it was given for. The link as given is checked too, since httpx
        would quietly send a scheme-relative `//host/path` to the registry's host."""
        for target in (origin(link, self._origin), origin(str(request.url))):
            if target == self._origin:
                continue
            raise RegistryError(
                f"{what}: {self.display_url} gave a link to another origin "
                f"({format_origin(target)}); not followed, as the {self.credential.noun} is sent "
                f"only to {format_origin(self._origin)}"
            )

    def _redirect_message(self, what: str, response: httpx.Response) -> str:
        location = response.headers.get("Location", "")
        where = f" to {format_origin(origin(location, self._origin))}" if location else ""
        return (
            f"{what}: HTTP {response.status_code} redirect{where} from {self.display_url} "
            f"({call(response.request)}): redirects are not followed; set the registry URL to "
            "the address the API answers at"
        )

    def parallel(self, fetch: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """`fetch` of every item, at most `concurrency` at once, results in input order.

        The first failure cancels what has not started and is raised.
        """
        if not items:
            return []
        workers = min(self.concurrency, len(items))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="registry-http") as pool:
            futures = [pool.submit(fetch, item) for item in items]
            try:
                return [f.result() for f in futures]
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise

    # -- messages ------------------------------------------------------------------------
    def status_message(self, what: str, response: httpx.Response, attempt: int = 1) -> str:
        status = response.status_code
        tries = f" after {attempt} attempts" if attempt > 1 else ""
        head = f"{what}: HTTP {status} from {self.display_url}{tries}"
        cred = self.credential
        if status == 401:
            hint = (
                f"the registry rejected the {cred.noun} in {cred.env}"
                if cred.value
                else f"{cred.env} is not set and the registry requires {_article(cred.noun)}"
            )
            return f"{head}: {hint}"
        if status == 403:
            detail = self.detail(response)
            return f"{head}: the {cred.noun} in {cred.env} is not allowed to do this ({detail})"
        return f"{head}: {self.detail(response)}"

    def detail(self, response: httpx.Response) -> str:
        """The error body as one short line, whatever envelope the API uses."""
        try:
            body = response.json()
        except ValueError:
            body = response.text
        text = " ".join(envelope_message(body).split()) or response.reason_phrase
        return self.scrub(text[:300])

    def scrub(self, text: str) -> str:
        value = self.credential.value
        return REDACTOR.scrub(text.replace(value, "***") if value else text)

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
                f"; it may or may not have been {self.created}: if it was, the next run "
                "finds it and records it as created"
            )
        return self.scrub(f"{what}: {why} ({self.display_url}{tries}: {type(exc).__name__})")

    # -- waiting -------------------------------------------------------------------------
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


def _article(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def pages(fetch: Callable[[int], Sequence[T]], key: Callable[[T], str]) -> Iterator[T]:
    """Every item of an offset-paged list: `fetch(offset)` is the page that starts at item
    `offset` (0, then the number of items read so far), and an empty page ends it.

    The next offset counts what came back, not what was asked for: a server that caps the
    page size below the requested limit (Airweave's 1-1000) must not make us skip items.
    Ending on an empty page rather than a short one is robust to that cap too; a page with
    nothing new ends it, so a server that ignores the paging parameters costs one extra
    request, not an endless loop.
    """
    seen: set[str] = set()
    offset = 0
    while True:
        page = fetch(offset)
        fresh = [item for item in page if key(item) not in seen]
        if not fresh:
            return
        for item in fresh:
            seen.add(key(item))
            yield item
        offset += len(page)
