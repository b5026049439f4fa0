"""--notify URL: a cron run that needs a human posts once per distinct finding, to a real
HTTP server on 127.0.0.1; the message and the output never hold a secret, nor the URL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CANARY, reconcile, sql_exec
from fake_http import FakeServer, Reply, Request

# The webhook URL is a credential (Slack's are): its path token must never be printed.
HOOK_TOKEN = "T000-hook-Secret-9b2e"


class Hook(FakeServer):
    """A chat webhook: records every message, answers 200 (or a redirect when told)."""

    def __init__(self) -> None:
        super().__init__()
        self.posts: list[dict[str, Any]] = []
        self.redirect = False

    def route(self, request: Request) -> Reply:
        if self.redirect:
            return 302, None, {"Location": "http://127.0.0.1:9/elsewhere"}
        self.posts.append(request.json())
        return 200, {"ok": True}


@pytest.fixture
def hook() -> Iterator[Hook]:
    with Hook.running() as server:
        yield server


def url(hook: Hook) -> str:
    return f"{hook.url}/services/{HOOK_TOKEN}"


def run(*args: str, registry: str, sources: Path, hook: Hook) -> str:
    result = reconcile(*args, "--notify", url(hook), registry=registry, sources=sources)
    out = result.output + result.stderr
    assert HOOK_TOKEN not in out
    return out


def test_drift_posts_once_then_again_for_a_new_finding(
    registry_url: str, sources: Path, hook: Hook
) -> None:
    assert reconcile("apply", registry=registry_url, sources=sources).exit_code == 0
    run("apply", registry=registry_url, sources=sources, hook=hook)
    assert hook.posts == []  # nothing needs a human
    sql_exec(registry_url, "UPDATE sources SET description = 'by hand' WHERE name = 'events'")
    # A secret changed outside git too: reported by path, never by value.
    sql_exec(
        registry_url,
        "UPDATE sources SET connection = ? WHERE name = 'orders'",
        (
            json.dumps(
                {"host": "db.internal", "port": 5432, "dbname": "shop", "user": "reporting",
                 "password": CANARY + "-new", "table": "orders"}
            ),
        ),
    )  # fmt: skip
    run("drift", registry=registry_url, sources=sources, hook=hook)
    assert len(hook.posts) == 1
    text = hook.posts[0]["text"]
    assert set(hook.posts[0]) == {"text"}
    assert "drift: events: changed outside git: description" in text
    assert "drift: orders" in text and CANARY not in text and HOOK_TOKEN not in text
    # The same findings again: no post.
    run("drift", registry=registry_url, sources=sources, hook=hook)
    assert len(hook.posts) == 1
    # A new finding: one more post, with only the new one.
    sql_exec(registry_url, "UPDATE sources SET description = 'again' WHERE name = 'customers'")
    run("drift", registry=registry_url, sources=sources, hook=hook)
    assert len(hook.posts) == 2
    assert "customers" in hook.posts[1]["text"] and "events" not in hook.posts[1]["text"]


def test_a_failed_apply_is_posted_without_secrets(
    registry_url: str, sources: Path, hook: Hook
) -> None:
    assert reconcile("apply", registry=registry_url, sources=sources).exit_code == 0
    # Blocked: the name of a new manifest is taken by a record another owner manages.
    sql_exec(registry_url, "UPDATE sources SET managed_by = 'team-b' WHERE name = 'events'")
    out = run("apply", registry=registry_url, sources=sources, hook=hook)
    assert len(hook.posts) == 1, out
    assert hook.posts[0]["text"].count("failed: apply") == 1
    assert CANARY not in json.dumps(hook.posts)
    run("apply", registry=registry_url, sources=sources, hook=hook)
    assert len(hook.posts) == 1  # the same failure: not posted again


def test_a_conflict_is_posted(registry_url: str, sources: Path, hook: Hook) -> None:
    assert reconcile("apply", registry=registry_url, sources=sources).exit_code == 0
    sql_exec(registry_url, "UPDATE sources SET description = 'ui' WHERE name = 'customers'")
    manifest = sources / "customers.yml"
    manifest.write_text(manifest.read_text().replace("from the CRM", "from the new CRM"))
    run("apply", registry=registry_url, sources=sources, hook=hook)
    assert "conflict: customers: changed in git and outside: description" in hook.posts[0]["text"]


def test_a_redirect_is_not_followed_and_the_finding_stays_new(
    registry_url: str, sources: Path, hook: Hook
) -> None:
    assert reconcile("apply", registry=registry_url, sources=sources).exit_code == 0
    sql_exec(registry_url, "UPDATE sources SET description = 'by hand' WHERE name = 'events'")
    hook.redirect = True
    out = run("drift", registry=registry_url, sources=sources, hook=hook)
    assert "warning: notification to" in out and "failed: HTTP 302" in out
    assert hook.count("POST") == 1  # the redirect's target was never asked
    hook.redirect = False
    run("drift", registry=registry_url, sources=sources, hook=hook)
    assert len(hook.posts) == 1  # posted now: the failed post had not marked it notified


def test_notify_refuses_a_dry_run(registry_url: str, sources: Path, hook: Hook) -> None:
    result = reconcile("--dry-run", "--notify", url(hook), registry=registry_url, sources=sources)
    assert result.exit_code == 1 and "--notify needs an apply" in result.stderr


def test_a_breaking_schema_change_is_posted_once(
    registry_url: str, tmp_path: Path, hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECONCILER_DATA_DIRS", str(tmp_path))
    data = tmp_path / "payments.csv"
    data.write_text("id,amount\n1,10.5\n")
    sources = tmp_path / "schema-sources"
    sources.mkdir()
    manifest = {
        "name": "payments",
        "source_type": "csv",
        "connection": {"file_path": str(data)},
        "schema_policy": "fail",
    }
    (sources / "payments.yaml").write_text(json.dumps(manifest))
    run("apply", "--schema", registry=registry_url, sources=sources, hook=hook)
    assert hook.posts == []  # first observation: nothing to compare with
    data.write_text("id,amount\n1,ten\n")
    for _ in range(2):
        run("apply", "--schema", registry=registry_url, sources=sources, hook=hook)
    assert len(hook.posts) == 1
    assert 'schema: payments: column "amount" type' in hook.posts[0]["text"]


def test_a_failure_before_the_registry_exists_creates_nothing(
    tmp_path: Path, sources: Path, hook: Hook
) -> None:
    registry = f"sqlite:///{tmp_path / 'new' / 'registry.db'}"
    (sources / "bad.yaml").write_text("name: bad\nsource_type: csv\n")  # no connection
    run("apply", registry=registry, sources=sources, hook=hook)
    assert len(hook.posts) == 1 and "failed: apply" in hook.posts[0]["text"]
    assert not (tmp_path / "new").exists()  # nothing written, not even what was notified
