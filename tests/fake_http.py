"""The base of every fake registry API in the suite: a real threaded HTTP server on 127.0.0.1.

A subclass implements `route` (the documented endpoints, status codes and error envelope of
one API); this base serves it with keep-alive, records every request, and injects faults
(a status such as 429 with Retry-After or a 5xx, a slow answer, a dropped connection) on
the N-th matching request, so clients are tested against the wire, never against a mock.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

S = TypeVar("S", bound="FakeServer")
# What `route` returns: (status, JSON body or None) or (status, body, extra headers).
Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]]


@dataclass
class Fault:
    """Fires on the matching requests after the first `skip` of them, `times` times.

    `status` answers with that status (and `headers`, and the API's error envelope around
    `detail`); `delay` sleeps first (past the client's timeout, a slow response); `drop`
    closes the connection without an answer.
    """

    method: str | None = None
    path: str | None = None  # a prefix of the request path
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    detail: str = "injected failure"
    delay: float = 0.0
    drop: bool = False
    skip: int = 0
    times: int = 1
    seen: int = 0
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or path.startswith(self.path)
        )


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    raw: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.raw or b"null")

    def bearer(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[len("Bearer ") :] if auth.startswith("Bearer ") else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (the timeout tests) makes the late answer fail: expected, and
        # a traceback on stderr would land in whatever CLI output is being captured then.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeServer:
    """Serving, request log and fault injection; subclasses route. Use `running()`."""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT, what a test puts after `PROVIDER+`."""
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @classmethod
    @contextmanager
    def running(cls: type[S], **kwargs: Any) -> Iterator[S]:
        api = cls(**kwargs)
        handler = type("Handler", (_Handler,), {"api": api})
        server = _Server(("127.0.0.1", 0), handler)
        api._server = server
        thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        try:
            yield api
        finally:
            server.shutdown()
            server.server_close()

    def fail(self, **fault: Any) -> Fault:
        injected = Fault(**fault)
        self.faults.append(injected)
        return injected

    def count(self, method: str, prefix: str = "") -> int:
        """How many requests of `method` were made under the path `prefix`."""
        return sum(1 for m, p in self.requests if m == method and p.startswith(prefix))

    def _fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.fired >= fault.times or not fault.matches(method, path):
                    continue
                fault.seen += 1
                if fault.seen > fault.skip:
                    fault.fired += 1
                    return fault
        return None

    # -- what a subclass writes ----------------------------------------------------------
    def route(self, request: Request) -> Reply:
        raise NotImplementedError

    def error(self, status: int, message: str) -> Any:
        """The API's error envelope around `message` (FastAPI's by default)."""
        return {"detail": message}


class _Handler(BaseHTTPRequestHandler):
    api: FakeServer
    protocol_version = "HTTP/1.1"  # keep-alive, so the client's pool is exercised

    def setup(self) -> None:
        super().setup()
        # As production servers do: without it, headers and body written separately wait
        # for the client's delayed ACK (Nagle), 40 ms per answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        api = self.api
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with api._lock:
            api.requests.append((method, path))
            api.in_flight += 1
            api.max_in_flight = max(api.max_in_flight, api.in_flight)
        try:
            fault = api._fault(method, path)
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
            if fault is not None and fault.drop:
                self.close_connection = True
                return
            if fault is not None and fault.status is not None:
                self._send(fault.status, api.error(fault.status, fault.detail), fault.headers)
                return
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            reply = api.route(Request(method, path, query, self.headers, raw))
            self._send(*reply)
        finally:
            with api._lock:
                api.in_flight -= 1

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = b"" if status == 204 or body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
