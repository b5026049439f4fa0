"""A hostile or broken HTTP server on 127.0.0.1, for the transport's trust-boundary tests.

Each test gives it `answer(handler)`, which writes whatever it likes on the socket: a
redirect, HTML, a body dripped one byte at a time, an endless body, a `next` link to another
origin. Every request is recorded with its headers, so a test can assert what a server that
should never have been called received (a credential, above all).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]

    def credentials(self) -> dict[str, str]:
        """The headers that carry a credential, whatever the API calls them."""
        return {
            k: v
            for k, v in self.headers.items()
            if k.lower() in ("authorization", "x-api-key", "api-key", "cookie")
        }


class Hostile:
    """The server; `answer` decides what each request gets."""

    def __init__(self, answer: Callable[[Handler], None]) -> None:
        self.answer = answer
        self.seen: list[Seen] = []
        self.stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])


class Handler(BaseHTTPRequestHandler):
    server_obj: Hostile
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        self.server_obj.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
        with contextlib.suppress(ConnectionError, OSError):  # the client gave up, as it should
            self.server_obj.answer(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

    # -- what an answer writes -----------------------------------------------------------
    def reply(
        self,
        status: int,
        body: bytes | str | Any,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        if not isinstance(body, bytes):
            body = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def drip(self, interval: float = 0.05, *, in_headers: bool = False) -> None:
        """One byte every `interval` seconds, for as long as the client listens: in the
        body of an answer that claims to be long, or in a header that never ends."""
        self.close_connection = True
        if in_headers:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"[")
        deadline = time.monotonic() + 30  # a safety net for the test suite only
        while not self.server_obj.stop.is_set() and time.monotonic() < deadline:
            self.wfile.flush()
            time.sleep(interval)
            self.wfile.write(b"a" if in_headers else b" ")

    def endless(self, chunk: bytes = b" " * 65536, *, declared: bool = False) -> None:
        """A chunked (or hugely declared) body that goes on and on."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if declared:
            self.send_header("Content-Length", str(10**12))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = 0  # a safety net for the test suite: 64 MiB, far past any limit tested
        while not self.server_obj.stop.is_set() and sent < 64 * 1024 * 1024:
            data = chunk if declared else b"%x\r\n%s\r\n" % (len(chunk), chunk)
            self.wfile.write(data)
            sent += len(chunk)
        if not declared:
            self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up on a hostile answer is the expected outcome


@contextmanager
def hostile(answer: Callable[[Handler], None]) -> Iterator[Hostile]:
    server_obj = Hostile(answer)
    handler = type("H", (Handler,), {"server_obj": server_obj})
    server = _Server(("127.0.0.1", 0), handler)
    server_obj._server = server
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server_obj
    finally:
        server_obj.stop.set()
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
