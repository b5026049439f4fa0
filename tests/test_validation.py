"""Manifest validation, driven by the cases in tests/cases/*.yaml.

Every invalid case lists the exact, complete, ordered problems a user sees, so a change to any
message, line number or ordering is a deliberate edit of the case file. Valid cases list the
source names loaded, in order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from reconciler.cli import cli
from reconciler.errors import InvalidManifests
from reconciler.manifests.loading import describe, load_manifests

CASES = Path(__file__).parent / "cases"
SCHEMAS = Path(__file__).parents[1] / "schemas"
SOURCES = "sources.d"


def _load_cases(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = yaml.safe_load((CASES / name).read_text(encoding="utf-8"))
    return cases


INVALID = _load_cases("invalid_manifests.yaml")
VALID = _load_cases("valid_manifests.yaml")


def _params(cases: list[dict[str, Any]]) -> list[Any]:
    return [pytest.param(case, id=case["id"]) for case in cases]


@pytest.fixture
def sources_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty `sources.d` in a fresh directory that is also the working directory."""
    monkeypatch.chdir(tmp_path)
    directory = tmp_path / SOURCES
    directory.mkdir()
    return directory


def _write(sources_dir: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = sources_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")


def _problems() -> list[str]:
    with pytest.raises(InvalidManifests) as caught:
        load_manifests(Path(SOURCES))
    return [str(problem) for problem in caught.value.problems]


def test_case_files_are_well_formed() -> None:
    for cases, result_key in ((INVALID, "errors"), (VALID, "sources")):
        ids = [case["id"] for case in cases]
        assert len(ids) == len(set(ids)), "case ids must be unique"
        for case in cases:
            assert set(case) <= {"id", "files", result_key, "secrets"}, case["id"]
            assert isinstance(case["files"], dict), case["id"]
            assert isinstance(case[result_key], list), case["id"]


@pytest.mark.parametrize("case", _params(INVALID))
def test_invalid_manifests_report_exactly_these_problems(
    case: dict[str, Any], sources_dir: Path
) -> None:
    _write(sources_dir, case["files"])
    problems = _problems()
    assert problems == case["errors"]
    for secret in case.get("secrets", []):
        assert not [line for line in problems if secret in line], f"{secret!r} leaked"


@pytest.mark.parametrize("case", _params(VALID))
def test_valid_manifests_load_in_order(case: dict[str, Any], sources_dir: Path) -> None:
    _write(sources_dir, case["files"])
    manifests = load_manifests(Path(SOURCES))
    assert [manifest.name for manifest in manifests] == case["sources"]


def test_merge_key_explicit_value_wins(sources_dir: Path) -> None:
    case = next(c for c in VALID if c["id"] == "merge_key_overridden_by_an_explicit_key")
    _write(sources_dir, case["files"])
    by_name = {manifest.name: manifest for manifest in load_manifests(Path(SOURCES))}
    assert by_name["customers"].connection["table"] == "customers"
    assert by_name["customers"].connection["host"] == "db.internal"


def test_merge_key_list_first_mapping_wins(sources_dir: Path) -> None:
    case = next(c for c in VALID if c["id"] == "merge_key_list_first_mapping_wins")
    _write(sources_dir, case["files"])
    (manifest,) = load_manifests(Path(SOURCES))
    assert manifest.connection["host"] == "primary.internal"
    assert manifest.connection["dbname"] == "shop"


# Schema keywords no manifest case reaches today still read as sentences, never as jsonschema's
# own messages (which quote the value, secret or not).
@pytest.mark.parametrize(
    ("schema", "value", "message"),
    [
        ({"minLength": 1}, "", "must not be empty"),
        ({"minLength": 3}, "ab", "must be at least 3 characters long"),
        ({"maxLength": 3}, "abcd", "must be at most 3 characters long"),
        ({"maxLength": 1}, "ab", "must be at most 1 character long"),
        ({"minimum": 1}, 0, "must be at least 1"),
        ({"maximum": 65535}, 65536, "must be at most 65535"),
        ({"exclusiveMinimum": 0}, 0, "must be greater than 0"),
        ({"enum": ["warn", "fail"]}, "strict", 'must be one of: warn, fail (got "strict")'),
        ({"const": "csv"}, "tsv", 'must be csv (got "tsv")'),
        ({"minItems": 1}, [], "must not be empty"),
        ({"minItems": 2}, ["a"], "must have at least 2 items"),
        ({"maxItems": 1}, ["a", "b"], "must have at most 1 item"),
        ({"uniqueItems": True}, ["a", "a"], "must not contain duplicates"),
        ({"pattern": "^[a-z]+$"}, "A1", "must match the pattern ^[a-z]+$"),
        ({"type": ["integer", "string"]}, None, "expected an integer or a string, got null"),
        ({"type": "object"}, [1], "expected a mapping, got a list"),
        ({"type": "array"}, "x", 'expected a list, got a string "x"'),
        ({"not": {"type": "string"}}, "x", "invalid value (fails the schema rule 'not')"),
    ],
)
def test_schema_errors_read_as_sentences(schema: dict[str, Any], value: Any, message: str) -> None:
    (error,) = Draft202012Validator(schema).iter_errors(value)
    assert describe(error, secret=False) == message


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "object"}, "postgresql://reader:Tr0ub4dor@db/shop"),
        ({"enum": ["a"]}, "Tr0ub4dor"),
        ({"const": "a"}, "Tr0ub4dor"),
        ({"minLength": 20}, "Tr0ub4dor"),
        ({"pattern": "^x$"}, "Tr0ub4dor"),
    ],
)
def test_schema_errors_never_show_a_sensitive_value(schema: dict[str, Any], value: Any) -> None:
    (error,) = Draft202012Validator(schema).iter_errors(value)
    assert "Tr0ub4dor" not in describe(error, secret=True)


@pytest.mark.parametrize("case", _params(INVALID))
def test_cli_validate_reports_every_problem_on_stderr(
    case: dict[str, Any], sources_dir: Path
) -> None:
    _write(sources_dir, case["files"])
    result = CliRunner().invoke(cli, ["validate", "--sources-dir", SOURCES])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    stderr_lines = result.stderr.splitlines()
    for line in case["errors"]:
        assert line in stderr_lines
    for secret in case.get("secrets", []):
        assert secret not in result.output


def test_cli_validate_accepts_a_valid_directory(sources_dir: Path) -> None:
    case = next(c for c in VALID if c["id"] == "secret_references")
    _write(sources_dir, case["files"])
    result = CliRunner().invoke(cli, ["validate", "--sources-dir", SOURCES])
    assert result.exit_code == 0, result.output
    assert result.stdout == "2 sources in 2 files: all valid.\n"
    assert result.stderr == ""


# The schema files on their own, as an editor or any other JSON Schema validator reads them:
# each keyed by its file URI, the relative `$ref`s resolved against the file's location.


def _standalone_validator() -> Draft202012Validator:
    resources = []
    for path in sorted(SCHEMAS.glob("*.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(contents)
        resources.append((path.resolve().as_uri(), Resource.from_contents(contents)))
    registry: Registry[Any] = Registry().with_resources(resources)
    root = (SCHEMAS / "source.schema.json").resolve().as_uri()
    return Draft202012Validator({"$ref": root}, registry=registry)


def _manifest(**connection: Any) -> dict[str, Any]:
    return {
        "name": "orders",
        "source_type": "postgres",
        "connection": {
            "host": "db.internal",
            "dbname": "shop",
            "user": "reader",
            "table": "orders",
            **connection,
        },
    }


@pytest.mark.parametrize(
    "manifest",
    [
        pytest.param(_manifest(), id="minimal"),
        pytest.param(
            _manifest(port="5432", password="${file:/run/secrets/x}"), id="string-port-file-ref"
        ),
        pytest.param(_manifest(port=5432, password="${env:ORDERS_DB_PASSWORD}"), id="env-ref"),
    ],
)
def test_schema_files_alone_accept_a_valid_manifest(manifest: dict[str, Any]) -> None:
    assert [error.message for error in _standalone_validator().iter_errors(manifest)] == []


@pytest.mark.parametrize(
    ("manifest", "field"),
    [
        pytest.param(_manifest(port="abc"), "port", id="port-abc"),
        pytest.param(_manifest(port="99999"), "port", id="port-string-out-of-range"),
        pytest.param(_manifest(password="Tr0ub4dor&3"), "password", id="literal-password"),
    ],
)
def test_schema_files_alone_reject_bad_connections(manifest: dict[str, Any], field: str) -> None:
    errors = list(_standalone_validator().iter_errors(manifest))
    assert [list(error.absolute_path) for error in errors] == [["connection", field]]
