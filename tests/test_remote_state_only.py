"""Reconciler-only fields never reach an API, and `prevent_destroy` guards a replace.

Against a real Sources API server on 127.0.0.1 (it has no update endpoint: a change of an
API field is a replace, under a new id).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from conftest import reconcile
from sources_api import SourcesApi

TOKEN = "tok-StateOnly-9a1e"


@pytest.fixture
def api() -> Iterator[SourcesApi]:
    with SourcesApi.running(token=TOKEN) as server:
        yield server


def http(*args: str, api: SourcesApi, sources: Path, tmp_path: Path) -> Result:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    return reconcile(
        *args, "--state", state, registry=api.url, sources=sources, RECONCILER_TOKEN=TOKEN
    )


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    "added",
    [
        "lifecycle: {prevent_destroy: true}\n",
        "lifecycle: {ignore_changes: [description]}\n",
        "schema_policy: fail\n",
        "columns: [{name: id, type: integer}]\n",
    ],
    ids=["prevent_destroy", "ignore_changes", "schema_policy", "columns"],
)
def test_a_reconciler_only_field_updates_the_state_only(
    api: SourcesApi, sources: Path, tmp_path: Path, added: str
) -> None:
    assert http(api=api, sources=sources, tmp_path=tmp_path).exit_code == 0
    before = api.by_name("customers")["id"]
    path = sources / "customers.yml"
    path.write_text(path.read_text() + added)
    plan = http("plan", api=api, sources=sources, tmp_path=tmp_path)
    assert plan.exit_code == 0, plan.output
    assert "~ update customers" in plan.stdout and "replace" not in plan.stdout
    applied = http(api=api, sources=sources, tmp_path=tmp_path)
    assert applied.exit_code == 0, applied.output
    assert "0 created, 1 updated, 0 deleted" in applied.stdout
    assert api.by_name("customers")["id"] == before  # the same record: nothing was sent
    again = http("plan", api=api, sources=sources, tmp_path=tmp_path)
    assert again.stdout.startswith("No changes."), again.output


def test_prevent_destroy_blocks_a_replace_unless_forced(
    api: SourcesApi, sources: Path, tmp_path: Path
) -> None:
    path = sources / "customers.yml"
    path.write_text(path.read_text() + "lifecycle: {prevent_destroy: true}\n")
    assert http(api=api, sources=sources, tmp_path=tmp_path).exit_code == 0
    before = api.by_name("customers")["id"]
    _edit(path, "Customer export from the CRM.", "Nightly.")
    plan = http("plan", api=api, sources=sources, tmp_path=tmp_path)
    assert plan.exit_code == 1
    assert "prevent_destroy is set and this change replaces the record" in plan.stdout
    assert "--force-replaces" in plan.stdout
    refused = http(api=api, sources=sources, tmp_path=tmp_path)
    assert refused.exit_code == 1 and api.by_name("customers")["id"] == before

    forced = http("--force-replaces", api=api, sources=sources, tmp_path=tmp_path)
    assert forced.exit_code == 0, forced.output
    assert "1 replaced" in forced.stdout
    assert api.by_name("customers")["id"] != before
    assert api.by_name("customers")["description"] == "Nightly."


def test_the_owner_tag_is_written_kept_by_a_replace_and_never_shown(
    api: SourcesApi, sources: Path, tmp_path: Path
) -> None:
    assert http(api=api, sources=sources, tmp_path=tmp_path).exit_code == 0
    tag = "managed-by:reconciler/reconciler"
    assert all(tag in r["tags"] for r in api.records.values())
    _edit(sources / "customers.yml", "Customer export from the CRM.", "Nightly.")
    assert http(api=api, sources=sources, tmp_path=tmp_path).exit_code == 0
    assert api.by_name("customers")["tags"] == ["crm", tag]  # the replace wrote it again
    plan = http("plan", "-o", "json", api=api, sources=sources, tmp_path=tmp_path)
    assert plan.exit_code == 0 and "managed-by:" not in plan.stdout


def test_the_owner_tag_is_reserved_in_a_manifest(
    api: SourcesApi, sources: Path, tmp_path: Path
) -> None:
    _edit(sources / "customers.yml", "tags: [crm]", "tags: [crm, 'managed-by:reconciler/x']")
    plan = http("plan", api=api, sources=sources, tmp_path=tmp_path)
    assert plan.exit_code == 1 and "are reserved" in plan.stdout
    assert http(api=api, sources=sources, tmp_path=tmp_path).exit_code == 1
    assert api.records == {}
