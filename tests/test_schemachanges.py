"""Schema change classification, driven by tests/cases/schema_changes.yaml.

The case file is the specification of what is breaking: changing a verdict is a deliberate
edit there, next to the rule it concerns.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from reconciler.models import Column, ObservedColumn, ObservedTable, TableMissing, Unreachable
from reconciler.tableschema.classification import (
    TYPE_TRANSITIONS,
    SchemaChange,
    classify_type,
    compare,
    compare_with_contract,
    has_breaking,
    normalise_type,
)

CASES: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "cases" / "schema_changes.yaml").read_text(encoding="utf-8")
)
_SPEC = re.compile(r"(?P<name>\S+) (?P<type>.+?)(?P<notnull> NOT NULL)?(?: @(?P<pos>\d+))?")


def column(spec: str, index: int) -> ObservedColumn:
    """ "name type [NOT NULL] [@position]" as a column; position defaults to the index."""
    match = _SPEC.fullmatch(spec)
    assert match, spec
    return ObservedColumn(
        name=match["name"],
        type=match["type"],
        nullable=not match["notnull"],
        position=int(match["pos"] or index + 1),
    )


def columns(specs: list[str]) -> tuple[ObservedColumn, ...]:
    return tuple(column(s, i) for i, s in enumerate(specs))


def triples(changes: list[SchemaChange]) -> list[list[str | None]]:
    return [[c.kind, c.column, c.severity] for c in changes]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    perspective = case.get("perspective", "consumer")
    old, new = columns(case["old"]), columns(case["new"])
    if case.get("against", "snapshot") == "contract":
        contract = [{"name": c.name, "type": c.type, "nullable": c.nullable} for c in old]
        changes = compare_with_contract(contract, new, perspective=perspective)
    else:
        changes = compare(old, new, perspective=perspective)
    assert triples(changes) == case["expect"]


def test_case_file_covers_every_rule_of_the_table() -> None:
    covered: set[tuple[str, str]] = set()
    for case in CASES:
        old, new = columns(case["old"]), columns(case["new"])
        for a, b in zip(old, new, strict=False):
            covered.add((_base(a.type), _base(b.type)))
    assert set(TYPE_TRANSITIONS) <= covered
    assert len(CASES) >= 25


def _base(type_: str) -> str:
    return normalise_type(type_).split("(")[0].replace("[]", "")


def test_messages_read_as_sentences() -> None:
    old = columns(["id integer NOT NULL", "total numeric(10,2)", "name text", "email text"])
    new = columns(["id integer", "total numeric(12,2)", "full_name text", "vip bool @9"])
    assert [c.message for c in compare(old, new)] == [
        'column "id" NOT NULL → NULL (breaking for consumers)',
        'column "total" type numeric(10,2) → numeric(12,2) (widened, non-breaking)',
        'column "name" renamed to "full_name" (breaking)',
        'column "email" dropped (breaking)',
        'column "vip" added (bool, NULL) (non-breaking)',
    ]


def test_rename_records_old_and_new_names() -> None:
    (change,) = compare(columns(["name text"]), columns(["full_name text"]))
    assert (change.kind, change.old, change.new) == ("column_renamed", "name", "full_name")


def test_outcomes_of_introspection_are_changes_too() -> None:
    old = columns(["id integer"])
    (missing,) = compare(old, TableMissing(source="orders"))
    assert (missing.kind, missing.severity) == ("table_missing", "breaking")
    (down,) = compare_with_contract(
        [Column(name="id", type="int")], Unreachable(source="orders", reason="db:5432: refused")
    )
    assert (down.kind, down.severity) == ("unreachable", "error")
    assert "refused" in down.message
    assert has_breaking([missing]) and not has_breaking([down])


def test_observed_table_and_model_columns_are_accepted() -> None:
    live = ObservedTable(source="orders", columns=columns(["id bigint NOT NULL"]))
    contract = [Column(name="id", type="int", nullable=False)]
    assert triples(compare_with_contract(contract, live)) == [["type_widened", "id", "info"]]


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("VARCHAR(50)", "character varying(50)"),
        ("character varying (50)", "character varying(50)"),
        ("int", "integer"),
        ("int8", "bigint"),
        ("float8", "double precision"),
        ("float(10)", "real"),
        ("decimal(12)", "numeric(12,0)"),
        ("char", "character(1)"),
        ("timestamptz", "timestamp with time zone"),
        ("timestamp(3)", "timestamp(3) without time zone"),
        ("bool", "boolean"),
        ("pg_catalog.int4", "integer"),
        ("text[]", "text[]"),
        ("integer array", "integer[]"),
    ],
)
def test_normalise_type(spelling: str, canonical: str) -> None:
    assert normalise_type(spelling) == canonical
    assert normalise_type(canonical) == canonical


# Every spelling the table and the aliases know, to check the rules as a whole.
TYPES = [
    "smallint", "integer", "int", "bigint", "int8", "numeric", "numeric(5,0)", "numeric(12,2)",
    "numeric(10,2)", "numeric(12,3)", "real", "double precision", "varchar(50)", "varchar(100)",
    "character varying", "text", "character(3)", "timestamp", "timestamptz", "date", "boolean",
]  # fmt: skip


@given(st.sampled_from(TYPES), st.sampled_from(TYPES))
def test_a_widening_is_never_a_widening_back(a: str, b: str) -> None:
    there, back = classify_type(a, b), classify_type(b, a)
    assert (there is None) == (back is None)
    if there == ("type_widened", "info"):
        # varchar and text are one type in PostgreSQL; nothing else widens both ways.
        same = {normalise_type(a), normalise_type(b)} == {"text", "character varying"}
        assert same or back == ("type_changed", "breaking")


@given(st.lists(st.tuples(st.sampled_from(TYPES), st.booleans()), max_size=6))
def test_identical_columns_have_no_changes(spec: list[tuple[str, bool]]) -> None:
    cols = [
        ObservedColumn(name=f"c{i}", type=t, nullable=n, position=i + 1)
        for i, (t, n) in enumerate(spec)
    ]
    assert compare(cols, cols) == []
    assert compare_with_contract(cols, cols, perspective="producer") == []
