"""A create whose outcome was never recorded converges on the next run.

The state store commits an intent before each create; a run killed (SIGKILL) after the
server made the object, or a create answered with a gateway's 502 or not at all, leaves
the object without an owner in the state, and the next run finds it by name and content
and records it as created instead of reporting it unmanaged. Against a real Sources API
server on 127.0.0.1, with the state store on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from click.testing import Result
from conftest import CANARY, reconcile, sql_rows
from fake_http import Request
from sources_api import SourcesApi

TOKEN = "tok-Crash-41c7"
RECONCILE = str(Path(sys.executable).parent / "reconcile")


class Holding(SourcesApi):
    """Makes the first registration, then holds its answer until released: the client is
    killed (or gives up) after the object exists and before it learns the id."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.made = threading.Event()
        self.release = threading.Event()
        self.held = False

    def route(self, request: Request) -> Any:
        reply = super().route(request)
        if request.method == "POST" and reply[0] == 201 and not self.held:
            self.held = True
            self.made.set()
            self.release.wait(60)
        return reply


class GatewayAfterCreate(SourcesApi):
    """A gateway that answers 502 for the first registration the service did make."""

    answered = False

    def route(self, request: Request) -> Any:
        reply = super().route(request)
        if request.method == "POST" and reply[0] == 201 and not self.answered:
            self.answered = True
            return 502, {"detail": "Bad Gateway"}
        return reply


def http(api: SourcesApi, state: str, sources: Path, *args: str) -> Result:
    return reconcile(
        *args, "--state", state, registry=api.url, sources=sources, RECONCILER_TOKEN=TOKEN
    )


def converged(api: SourcesApi, state: str, sources: Path) -> None:
    """The next apply creates the rest and claims the orphan; then the plan is empty."""
    applied = http(api, state, sources)
    assert applied.exit_code == 0, applied.output
    assert "unmanaged" not in applied.output.lower()
    plan = http(api, state, sources, "plan")
    assert plan.stdout.startswith("No changes."), plan.output
    names = sorted(r["name"] for r in api.records.values())
    assert names == ["customers", "events", "orders"]  # each made once, none twice
    owners = sql_rows(state, "SELECT owner FROM remote_records WHERE record_id LIKE 'intent:%'")
    assert owners == []  # no intent outlives its record


def test_a_run_killed_between_the_create_and_its_record_converges(
    registry_url: str, sources: Path
) -> None:
    state = registry_url
    env = {
        **os.environ,
        "RECONCILER_TOKEN": TOKEN,
        "ORDERS_DB_PASSWORD": CANARY,
        "NO_COLOR": "1",
    }
    with Holding.running(token=TOKEN) as api:
        args = ["--registry", api.url, "--state", state, "--sources-dir", str(sources)]
        child = subprocess.Popen(
            [RECONCILE, "apply", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            assert api.made.wait(60), "the apply never registered anything"
            # The intent was committed before the call, and the lock outlives that commit.
            intents = sql_rows(state, "SELECT name_key FROM remote_records")
            assert len(intents) == 1, intents
            waiting = http(api, state, sources, "--lock-timeout", "0.2")
            assert waiting.exit_code == 1 and "is locked by" in waiting.stderr, waiting.stderr
            child.send_signal(signal.SIGKILL)
            child.wait(60)
        finally:
            api.release.set()
        assert child.returncode == -signal.SIGKILL
        assert len(api.records) == 1  # made, and never recorded as made

        converged(api, state, sources)


def test_a_502_after_the_create_converges(registry_url: str, sources: Path) -> None:
    state = registry_url
    with GatewayAfterCreate.running(token=TOKEN) as api:
        failed = http(api, state, sources)
        assert failed.exit_code == 1
        assert "HTTP 502" in failed.stderr and "may or may not" not in failed.stderr
        assert len(api.records) == 1
        converged(api, state, sources)


def test_a_create_timed_out_converges(registry_url: str, sources: Path) -> None:
    state = registry_url
    with Holding.running(token=TOKEN) as api:
        try:
            failed = http(api, state, sources, "--http-timeout", "0.5")
        finally:
            api.release.set()
        assert failed.exit_code == 1
        assert "it may or may not have been registered" in failed.stderr
        converged(api, state, sources)


def test_an_object_with_other_content_is_not_claimed(registry_url: str, sources: Path) -> None:
    """The intent claims only what it sent: a record made by hand under the name with other
    values stays unmanaged (and blocks the plan, as before)."""
    state = registry_url
    with GatewayAfterCreate.running(token=TOKEN) as api:
        assert http(api, state, sources).exit_code == 1
        (made,) = api.records.values()
        api.records.clear()  # gone; a person registers the name by hand, with other values
        api.add(made["name"], connection={"file_path": "/elsewhere.csv"})
        plan = http(api, state, sources, "plan")
        assert plan.exit_code == 1
        assert "already exists and is not managed by reconciler" in plan.stdout
