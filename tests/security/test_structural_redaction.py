"""Issue 12.3: resolved secrets are never stored or printed, and redaction is structural.

Structured output (reports in every format, saved plans, `--report`) holds references and
`(sensitive)` markers, never values, so it is never scrubbed as text: a secret equal to a
common word or number cannot corrupt it, and a guess written elsewhere is never confirmed
by a `***`. Free text from outside (an error body that echoes the request) is scrubbed, also
in its escaped forms, before it reaches stderr, `--report` or the run log.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner, Result
from conftest import sql_exec
from sources_api import SourcesApi

from reconciler.cli import cli
from reconciler.redaction import Redactor


def _run(*args: str, secret: str, **env: str) -> Result:
    result = CliRunner().invoke(
        cli, list(args), env={"ORDERS_DB_PASSWORD": secret, "NO_COLOR": "1", **env}
    )
    assert "Traceback" not in result.output + result.stderr
    return result


@pytest.mark.parametrize("secret", ["null", "true", "5432", "name", "orders", "postgres"])
def test_a_common_word_as_secret_corrupts_nothing(
    secret: str, registry_url: str, sources: Path, tmp_path: Path
) -> None:
    common = ["--registry", registry_url, "--sources-dir", str(sources)]
    files = {fmt: tmp_path / f"report.{fmt}" for fmt in ("json", "markdown", "junit", "github")}
    outputs = [opt for fmt, path in files.items() for opt in ("-o", f"{fmt}={path}")]
    saved, report = tmp_path / "plan.json", tmp_path / "run.json"

    planned = _run("plan", *common, "-o", "json", *outputs, secret=secret)
    assert planned.exit_code == 0, planned.output
    data = json.loads(planned.stdout)  # still JSON, with its values intact
    assert json.loads(files["json"].read_text()) == data
    ET.fromstring(files["junit"].read_text())
    text = json.dumps(data)
    assert "5432" in text and '"name"' in text and "null" in text and "true" in text
    registry = data["registry"]  # an empty URL password shows as *** too: not a value
    shown = text + files["markdown"].read_text() + files["github"].read_text()
    assert "***" not in shown.replace(json.dumps(registry)[1:-1], "").replace(registry, "")

    assert _run("plan", *common, "--out", str(saved), secret=secret).exit_code == 0
    assert "***" not in saved.read_text().replace(registry, "")
    applied = _run("apply", str(saved), *common, "--report", str(report), secret=secret)
    assert applied.exit_code == 0, applied.output + applied.stderr  # the saved plan loads
    assert json.loads(report.read_text())["run"]["success"] is True
    assert "***" not in report.read_text().replace(registry, "")


def test_a_guess_in_a_description_is_shown_as_written(
    registry_url: str, sources: Path, tmp_path: Path
) -> None:
    """Were the description masked, the `***` would confirm that the guess is the password."""
    secret = "hunter2-the-real-one"
    orders = sources / "shop" / "orders.yaml"
    orders.write_text(
        orders.read_text().replace(
            "description: Orders placed in the web shop.", f"description: is it {secret}?"
        )
    )
    common = ["--registry", registry_url, "--sources-dir", str(sources)]
    for fmt in ("text", "json", "markdown", "junit", "github"):
        result = _run("plan", *common, "-o", fmt, secret=secret)
        assert result.exit_code == 0, result.output
        if fmt not in ("junit", "github"):  # these name the fields of a create, not values
            assert f"is it {secret}?" in result.stdout
        assert "***" not in result.stdout


# -- an error body that echoes the request ----------------------------------------------

ECHOED_SECRET = 'Pa"ss/wörd+1 &x=%'


def _escaped(secret: str) -> list[str]:
    return [
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret),
    ]


@pytest.fixture
def echoing_api() -> Iterator[SourcesApi]:
    with SourcesApi.running(token="tok-structural-1") as server:
        yield server


def test_an_error_body_echoing_the_secret_is_scrubbed_everywhere(
    echoing_api: SourcesApi, sources: Path, tmp_path: Path
) -> None:
    echoed = " / ".join(_escaped(ECHOED_SECRET))
    echoing_api.fail(method="POST", status=400, detail=f"bad request body: {echoed}", times=99)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    report = tmp_path / "run.json"
    common = ["--registry", echoing_api.url, "--state", state, "--sources-dir", str(sources)]
    env = {"RECONCILER_TOKEN": "tok-structural-1"}
    failed = _run("apply", *common, "--report", str(report), secret=ECHOED_SECRET, **env)
    assert failed.exit_code == 1
    assert "bad request body: ***" in failed.stderr  # the error is there, the secret is not
    history = _run("history", "--registry", echoing_api.url, "--state", state,
                   "-o", "json", secret=ECHOED_SECRET, **env)  # fmt: skip
    runs = json.loads(history.stdout)
    assert any("bad request body: ***" in json.dumps(r) for r in runs["runs"]), runs
    everything = failed.output + failed.stderr + report.read_text() + history.stdout
    for form in _escaped(ECHOED_SECRET):
        assert form not in everything, form
    assert "bad request body: ***" in json.loads(report.read_text())["run"]["error"]


def test_a_short_secret_is_scrubbed_from_free_text_only_as_a_whole_token() -> None:
    redactor = Redactor()
    for secret in ("null", "5432", "name"):
        redactor.add(secret)
    said = "password null rejected; nullable column, port 5432 of 154320, rename name"
    assert redactor.scrub(said) == (
        "password *** rejected; nullable column, port *** of 154320, rename ***"
    )


def test_a_live_value_named_like_a_secret_is_never_shown(registry_url: str, sources: Path) -> None:
    """A key written into the registry behind git's back whose name says it holds a secret
    (`api_token`) is shown as `(sensitive)`, in drift and in the plan that reverts it."""
    common = ["--registry", registry_url, "--sources-dir", str(sources)]
    assert _run("apply", *common, secret="orders-pw-1").exit_code == 0
    live = json.dumps({"file_path": "data/customers.csv", "api_token": "live-Token-77aa"})
    cast = "?" if registry_url.startswith("sqlite") else "?::jsonb"
    sql_exec(registry_url, f"UPDATE sources SET connection = {cast} WHERE name = 'customers'",
             (live,))  # fmt: skip
    for command in ("drift", "plan"):
        for fmt in ("text", "json", "markdown"):
            result = _run(command, *common, "-o", fmt, secret="orders-pw-1")
            assert "live-Token-77aa" not in result.output + result.stderr
            assert "connection.api_token" in result.stdout and "(sensitive)" in result.stdout
