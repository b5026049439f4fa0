"""A broken or hostile HTTP registry cannot hang a run, exhaust its memory, or get a traceback.

Every API registry calls through `Transport.send` (backends/remote/transport.py): each
attempt has a total deadline at the socket (backends/remote/deadline.py), an answer is read
up to a size limit, redirects are refused, and a body that is not JSON is one line naming
the call. The servers here are real sockets on 127.0.0.1 that misbehave on purpose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import reconcile
from fake_http import Request
from hostile_http import Handler, hostile
from sources_api import SourcesApi

from reconciler.backends.remote.transport import Credential, RetryPolicy, Transport
from reconciler.errors import RegistryError

TOKEN = "hostile-Secret-91ab"
ONE_TRY = RetryPolicy(attempts=1, sleep=lambda _: None)


def transport(url: str, *, timeout: float = 0.5, **kw: Any) -> Transport:
    credential = Credential(TOKEN, "RECONCILER_TOKEN")
    return Transport(url, url, credential=credential, timeout=timeout, retry=ONE_TRY, **kw)


def refused(url: str, **kw: Any) -> str:
    api = transport(url, **kw)
    try:
        with pytest.raises(RegistryError) as info:
            api.json("GET", "/v1/sources", what="listing sources")
    finally:
        api.close()
    message = str(info.value)
    assert "\n" not in message and TOKEN not in message
    return message


@pytest.mark.parametrize("in_headers", [False, True], ids=["body", "headers"])
def test_a_server_dripping_bytes_is_cut_off_at_the_deadline(in_headers: bool) -> None:
    # Each byte comes well within the per-read timeout: only a total deadline ends the call.
    with hostile(lambda h: h.drip(0.05, in_headers=in_headers)) as server:
        message = refused(server.url, timeout=0.5)
    assert message == (
        f"listing sources: no answer within 0.5 s (--http-timeout) ({server.url}: ReadTimeout)"
    )


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
def test_a_huge_answer_is_refused_at_the_size_limit(declared: bool) -> None:
    with hostile(lambda h: h.endless(declared=declared)) as server:
        message = refused(server.url, timeout=5.0, max_bytes=1_000_000)
    assert message == (
        f"listing sources: the answer from {server.url} is larger than 1,000,000 bytes "
        "(GET /v1/sources); not read"
    )


def test_an_html_answer_is_one_line_naming_the_call() -> None:
    page = "<html><body><h1>Welcome to nginx!</h1>\n<p>Login</p></body></html>"
    with hostile(lambda h: h.reply(200, page, content_type="text/html")) as server:
        message = refused(server.url)
    assert message == f"listing sources: HTTP 200 from {server.url} is not JSON (GET /v1/sources)"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_refused_not_followed(status: int) -> None:
    with hostile(lambda h: h.reply(200, [])) as elsewhere:
        target = f"{elsewhere.url}/v1/sources"
        answer = lambda h: h.reply(status, {}, headers={"Location": target})  # noqa: E731
        with hostile(answer) as server:
            message = refused(server.url)
        assert message == (
            f"listing sources: HTTP {status} redirect to {elsewhere.url} from {server.url} "
            "(GET /v1/sources): redirects are not followed; set the registry URL to the "
            "address the API answers at"
        )
        assert elsewhere.seen == []


def test_an_error_body_echoing_the_request_stays_one_line() -> None:
    def echo(h: Handler) -> None:
        h.reply(400, {"detail": f"bad request:\n{h.headers}\n\x1b[31m{h.body!r}"})

    with hostile(echo) as server:
        message = refused(server.url)
    assert message.startswith(f"listing sources: HTTP 400 from {server.url}: bad request: ")
    assert "Authorization: Bearer ***" in message  # the echoed token, scrubbed


# -- through the CLI: one line on stderr, exit 1, nothing else --------------------------


@pytest.fixture
def state(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def run(server_url: str, sources: Path, state: str, *args: str) -> Any:
    env = {"RECONCILER_TOKEN": TOKEN}
    return reconcile(
        *args,
        "--state",
        state,
        "--http-timeout",
        "0.5",
        registry=server_url,
        sources=sources,
        **env,
    )


@pytest.mark.parametrize(
    "answer",
    [
        lambda h: h.reply(200, "<html>Sign in</html>", content_type="text/html"),
        lambda h: h.reply(200, {"items": "not a list"}),
        lambda h: h.reply(200, [1, 2, 3]),
        lambda h: h.reply(302, {}, headers={"Location": "https://login.example/"}),
        lambda h: h.drip(0.05),
    ],
    ids=["html", "object", "list-of-numbers", "redirect", "drip"],
)
def test_the_cli_reports_a_broken_server_in_one_line(
    answer: Any, sources: Path, state: str
) -> None:
    with hostile(answer) as server:
        result = run(server.url, sources, state, "--dry-run")
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: listing sources: "), result.stderr
    assert "Traceback" not in result.stderr and TOKEN not in result.stderr + result.output


# -- a create whose answer cannot be read ------------------------------------------------


class GarblingCreates(SourcesApi):
    """The Sources API, except that a registration is made and then answered with garbage
    (a proxy's error page, a truncated body): the record exists, its id never arrives."""

    def route(self, request: Request) -> Any:
        status, body, *rest = super().route(request)
        if request.method == "POST" and status == 201:
            return 201, "<html>502 Bad Gateway</html>"
        return (status, body, *rest)


def test_a_create_answered_with_garbage_is_found_by_name_and_owned(
    sources: Path, state: str
) -> None:
    with GarblingCreates.running(token=TOKEN) as api:
        first = run(api.url, sources, state, "apply")
        assert first.exit_code == 0, first.stderr
        again = run(api.url, sources, state, "plan")
        taken = {r["name"] for r in api.records.values()}
    assert again.exit_code == 0, again.stdout + again.stderr
    assert again.stdout.startswith("No changes."), again.stdout
    assert taken == {"orders", "customers", "events"}  # each created once, none twice


def test_a_garbled_create_that_cannot_be_found_is_one_actionable_line(
    sources: Path, state: str
) -> None:
    class Lost(GarblingCreates):
        def route(self, request: Request) -> Any:
            reply = super().route(request)
            if request.method == "POST":
                self.records.clear()  # created, then gone (or renamed) before we look
            return reply

    with Lost.running(token=TOKEN) as api:
        result = run(api.url, sources, state, "apply")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: registering source ")
    assert line.endswith(
        "may have been created all the same: the next run records it as created if it finds "
        "it by name holding what was sent; if the next plan says a record with this name is "
        "not managed by reconciler, check it in the registry and adopt it with "
        "`reconcile import`, or delete it"
    )
