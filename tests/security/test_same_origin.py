"""A registry's credential is sent only to the origin (scheme, host, port) it was given for.

Two real servers on 127.0.0.1: the registry, and a second one on another port that records
every header it receives. Whatever the registry answers (a `next` page link, a redirect),
the second server must never see the token or API key. The guard is one check in
`Transport.send` (backends/remote/transport.py), before anything is sent: links to another
origin are refused with one line naming the call; redirects are refused whatever their
target (same origin included: a registry URL should name the address the API answers at).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_airbyte_agents import AirbyteAgents
from fake_http import Request
from hostile_http import Hostile, hostile
from provider_harness import Clock, open_provider

from reconciler.backends.providers.airbyte_agents import AirbyteAgentsRegistry
from reconciler.backends.remote.transport import Credential, RetryPolicy, Transport
from reconciler.errors import RegistryError

TOKEN = "origin-Secret-77c1"


@pytest.fixture
def recorder() -> Iterator[Hostile]:
    """The other origin: answers like the API would, and records what it was sent."""
    with hostile(lambda h: h.reply(200, {"data": []})) as server:
        yield server


class Linking(AirbyteAgents):
    """Airbyte Agents whose `next` links are rewritten by `link(path)`."""

    link: Any = None

    def route(self, request: Request) -> Any:
        status, body, *rest = super().route(request)
        if isinstance(body, dict) and body.get("next") and self.link is not None:
            body = {**body, "next": self.link(body["next"])}
        return (status, body, *rest)


@pytest.fixture
def api() -> Iterator[Linking]:
    with Linking.running(token=TOKEN) as server:
        for i in range(3):
            server.add(f"c{i}")
        server.page_size = 2
        yield server


def listing(api: Linking, tmp_path: Path) -> list[str]:
    url = f"airbyte-agents+{api.url}?workspace_name=default"
    registry = open_provider(AirbyteAgentsRegistry, url, tmp_path, Clock(), token=TOKEN)
    try:
        return sorted(r.name for r in registry.list_records())
    finally:
        registry.close()


@pytest.mark.parametrize(
    "form",
    [
        "http://127.0.0.1:{port}{path}",  # another port
        "//127.0.0.1:{port}{path}",  # scheme-relative
        "http://localhost:{api_port}{path}",  # another host name, the same socket
        "https://127.0.0.1:{api_port}{path}",  # another scheme
        "http://127.0.0.1:{api_port}@127.0.0.1:{port}{path}",  # userinfo that looks alike
    ],
)
def test_a_next_link_to_another_origin_is_refused(
    form: str, api: Linking, recorder: Hostile, tmp_path: Path
) -> None:
    api_port = api.url.rsplit(":", 1)[1]
    api.link = lambda path: form.format(port=recorder.port, api_port=api_port, path=path)
    with pytest.raises(RegistryError) as info:
        listing(api, tmp_path)
    message = str(info.value)
    assert message.startswith(f"listing connectors: airbyte-agents+{api.url}")
    assert "gave a link to another origin" in message and "\n" not in message
    assert f"is sent only to {api.url}" in message
    assert TOKEN not in message
    assert recorder.seen == []  # nothing at all was sent there, least of all the token


def test_a_next_link_to_the_same_origin_is_followed(api: Linking, tmp_path: Path) -> None:
    api.link = lambda path: f"{api.url}{path}"  # absolute, but the registry's own origin
    assert listing(api, tmp_path) == ["c0", "c1", "c2"]


@pytest.mark.parametrize("header", ["Authorization", "x-api-key"])
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_to_another_origin_carries_no_credential(
    header: str, status: int, recorder: Hostile
) -> None:
    target = f"{recorder.url}/v1/sources"
    with hostile(lambda h: h.reply(status, {}, headers={"Location": target})) as server:
        credential = Credential(TOKEN, "TOKEN_ENV", header=header)
        api = Transport(
            server.url,
            server.url,
            credential=credential,
            timeout=1.0,
            retry=RetryPolicy(attempts=2, sleep=lambda _: None),
        )
        try:
            with pytest.raises(RegistryError, match="redirects are not followed"):
                api.json("GET", "/v1/sources", what="listing sources")
        finally:
            api.close()
        [only] = server.seen  # the registry itself got the credential, once: no retry
        assert TOKEN in str(only.credentials())
    assert recorder.seen == []
