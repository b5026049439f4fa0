"""Opening a provider on a fake server for backend tests: no real sleeping, a fake clock.

Retries record their waits instead of sleeping, and asynchronous operations are polled on
a clock that moves only when the poller sleeps, so timeouts are tested without timing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from conftest import reconcile

from reconciler.backends.base import ConnectOptions, NewRecord, RunEntry
from reconciler.backends.providers.base import Provider
from reconciler.backends.remote.polling import Waiter
from reconciler.backends.remote.transport import RetryPolicy
from reconciler.cli import cli


class Clock:
    """Time that passes only in `sleep`; `sleeps` lists every wait asked for."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def open_provider(
    cls: type[Provider],
    url: str,
    tmp_path: Path,
    clock: Clock,
    *,
    token: str | None,
    timeout: float = 60.0,
    writable: bool = True,
    **retry: Any,
) -> Provider:
    options = ConnectOptions(state=f"sqlite:///{tmp_path / 'state.db'}", http_timeout=5.0)
    registry = cls(
        url,
        writable=writable,
        token=token,
        options=options,
        retry=RetryPolicy(sleep=clock.sleep, **retry),
    )
    registry.waiter = Waiter(timeout, sleep=clock.sleep, clock=clock)
    return registry


class Cli:
    """`reconcile ARGS` as a user runs it on one sources directory against one provider, with
    the state store in `tmp_path`; conftest's `reconcile` fails on the canary or a traceback,
    and `token` must never show either."""

    def __init__(self, registry: str, tmp_path: Path, token_env: str, token: str) -> None:
        self.registry = registry
        self.sources = tmp_path / "sources.d"
        self.sources.mkdir(exist_ok=True)
        self.state = f"sqlite:///{tmp_path / 'state.db'}"
        self.env = {"RECONCILER_OPERATION_TIMEOUT": "30"}
        if token_env:  # a SQL registry has none
            self.env[token_env] = token
        self.token = token

    def __call__(self, *args: str, **env: str) -> Result:
        result = reconcile(
            *args,
            "--state",
            self.state,
            registry=self.registry,
            sources=self.sources,
            **{**self.env, **env},
        )
        assert self.token not in result.output + result.stderr
        return result

    def init(self) -> Result:
        """`reconcile registry init`: this state store is the registry's from now on (a
        registry that already has objects is otherwise refused as unknown to it)."""
        result = CliRunner().invoke(
            cli, ["registry", "init", "--registry", self.registry, "--state", self.state]
        )
        assert result.exit_code == 0, result.output
        return result

    def edit(self, file: str, old: str, new: str) -> None:
        path = self.sources / file
        path.write_text(path.read_text().replace(old, new))


def new(name: str, source_type: str, connection: dict[str, Any], **over: Any) -> NewRecord:
    """A record as execution builds it: `connection` resolved, `last_applied` with the
    references (here: the same values unless given)."""
    last = over.pop("last_connection", connection)
    doc = {
        "name": name,
        "source_type": source_type,
        "connection": last,
        "description": over.get("description", ""),
        "tags": [],
    }
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": name,
        "source_type": source_type,
        "connection": connection,
        "description": "",
        "tags": [],
        "managed_by": "reconciler",
        "last_applied": doc,
    }
    fields.update(over)
    return NewRecord(**fields)


def run() -> RunEntry:
    return RunEntry(
        id=str(uuid.uuid4()), owner="reconciler", actor="test", started_at=datetime.now(UTC)
    )
