"""Each shortcut taken for speed gives exactly what the code it replaced gave.

- planning's field diff against DeepDiff (what it used before), on generated documents;
- the JSON columns' decoder against json.loads;
- the cached canonical document against a fresh one, and the fingerprint memo;
- finding manifest files against the rglob/suffix/is_file selection it replaced.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from deepdiff import DeepDiff
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.backends.sql.shared import _loads
from reconciler.errors import ReconcilerError
from reconciler.manifests.documents import canonical, diff_fields
from reconciler.manifests.loading import find_manifest_files
from reconciler.models import Manifest
from reconciler.planning import plan as planning
from reconciler.planning.plan import SecretFingerprints, desired_document

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.0, -0.0, 2.5, math.nan, math.inf]),
    st.sampled_from(["", "a", "b", "1", "true"]),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abcd"), inner, max_size=3)
    ),
    max_leaves=10,
)
documents = st.dictionaries(st.sampled_from(["name", "tags", "connection", "x"]), values)


def deepdiff_paths(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The implementation diff_fields had, with DeepDiff."""
    if old == new:
        return []
    paths: set[tuple[Any, ...]] = set()
    for levels in DeepDiff(old, new, view="tree").values():
        for level in levels:
            path = level.path(output_format="list")
            cut = next((i for i, p in enumerate(path) if isinstance(p, int)), len(path))
            paths.add(tuple(path[:cut]))
    return [".".join(map(str, p)) for p in sorted(paths)]


@settings(max_examples=1500, deadline=None)
@given(documents, documents)
def test_field_diff_is_deepdiffs(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert [f.path for f in diff_fields(old, new)] == deepdiff_paths(old, new)


@settings(max_examples=500, deadline=None)
@given(documents)
def test_field_diff_of_a_small_edit_is_deepdiffs(old: dict[str, Any]) -> None:
    new = json.loads(json.dumps(old, allow_nan=True))  # equal, but no shared objects
    new["x"] = {"a": [1, {"b": 1.0}], "c": True}
    assert [f.path for f in diff_fields(old, new)] == deepdiff_paths(old, new)


def test_field_diff_of_other_types_is_deepdiffs() -> None:
    from datetime import date

    for old, new in (
        ({"a": (1, 2), "b": 1}, {"a": (1, 3), "b": 1}),
        ({"a": date(2024, 1, 1)}, {"a": date(2024, 1, 2)}),
        ({"a": {1: "x"}}, {"a": {1: "y"}}),
        ({"tags": ["a"], "c": {"host": "h", "port": 1}}, {"tags": ["b"], "c": {"file": "f"}}),
    ):
        assert [f.path for f in diff_fields(old, new)] == deepdiff_paths(old, new)


json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=500, deadline=None)
@given(json_values, st.sampled_from(["", " ", "\n", "x", "}", ","]))
def test_json_columns_decode_as_json_loads(value: Any, tail: str) -> None:
    for text in (json.dumps(value), json.dumps(value, indent=1), tail + json.dumps(value) + tail):
        try:
            expected: Any = json.loads(text)
        except ValueError as exc:
            with pytest.raises(type(exc)) as caught:
                _loads(text)
            assert str(caught.value) == str(exc)
        else:
            assert _loads(text) == expected


def test_desired_document_is_computed_once_and_equal_to_a_fresh_one() -> None:
    m = Manifest(name="a", source_type="csv", connection={"file_path": "/x"}, tags=("b", "a"))
    first = desired_document(m)
    assert desired_document(m) is first
    assert first == canonical(m.model_dump(mode="json"))
    twin = m.model_copy()  # equal, but another object: its own entry
    assert desired_document(twin) == first and desired_document(twin) is not first
    planning.plan([m], [], owner="o")
    assert desired_document(m) is not first  # plan() emptied the cache
    assert desired_document(m) == first


def test_fingerprints_are_computed_once_per_distinct_value() -> None:
    calls: list[Any] = []

    def of(value: Any) -> str:
        calls.append(value)
        return f"fp:{value!r}"

    memo = planning._memo(of)
    assert memo is not None and planning._memo(None) is None
    assert [memo(v) for v in ("s", "s", 0.0, -0.0, 0.0, 1, True)] == [
        "fp:'s'",
        "fp:'s'",
        "fp:0.0",
        "fp:-0.0",
        "fp:0.0",
        "fp:1",
        "fp:True",
    ]
    assert calls == ["s", 0.0, -0.0, 1, True]
    assert SecretFingerprints().of is None


def test_manifest_files_follow_the_discovery_rules(tmp_path: Path) -> None:
    """rglob's selection, except on purpose: hidden entries skipped, extensions in any case,
    a link out of the directory or a broken one refused (tests/security/test_discovery.py)."""
    root = tmp_path / "sources.d"
    for name in (
        "a.yaml",
        "b.yml",
        "c.YAML",
        ".yaml",
        ".hidden.yaml",
        "d.yaml.bak",
        "e.",
        "x..yaml",
        "sub/f.yaml",
        "sub/deeper/g.yml",
        "sub/.dot/h.yaml",
        "z/ü.yaml",
    ):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("name: x\n")
    (root / "dir.yaml").mkdir()
    (root / "dir.yaml" / "i.yaml").write_text("name: i\n")
    os.symlink(root / "sub", root / "linked-dir")  # not entered: read where it really is
    os.symlink(root / "a.yaml", root / "link.yaml")  # a link to a file inside is a file
    expected = [
        "a.yaml",
        "b.yml",
        "c.YAML",
        "dir.yaml/i.yaml",
        "link.yaml",
        "sub/deeper/g.yml",
        "sub/f.yaml",
        "x..yaml",
        "z/ü.yaml",
    ]
    for relative in (Path("sources.d"), root):
        os.chdir(tmp_path)
        assert find_manifest_files(relative) == [relative / name for name in expected]
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "outside-dir")
    os.symlink(root / "missing.yaml", root / "broken.yaml")
    with pytest.raises(ReconcilerError) as refused:
        find_manifest_files(root)
    assert str(refused.value) == (
        f"{root}/broken.yaml: dangling symbolic link; "
        f"{root}/outside-dir: symbolic link to a path outside the sources directory; "
        "nothing was read"
    )


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_shared_json_values_are_equal(value: Any) -> None:
    from reconciler.interning import shared

    assert shared(value) == value
    assert json.dumps(shared(value)) == json.dumps(value)


def test_big_registries_read_the_same_records(
    registry_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reconciler.backends.sql.shared as sql
    from reconciler.backends import open_registry
    from reconciler.workflow.writes import apply_plan

    registry = open_registry(registry_url, writable=True)
    registry.init()
    manifests = [
        Manifest(name=f"s{i}", source_type="csv", connection={"file_path": f"/{i}"}, tags=("t",))
        for i in range(5)
    ]
    apply_plan(planning.plan(manifests, [], owner="o"), registry)
    plain = registry.list_records()
    monkeypatch.setattr(sql, "_SHARE_FROM", 1)
    shared = registry.list_records()
    with registry.locked():  # inside the write transaction too
        assert registry.list_records() == plain
    registry.close()
    assert shared == plain and not sql._share
    assert shared[1].last_applied is not None and shared[2].last_applied is not None
    assert next(iter(shared[1].last_applied)) is next(iter(shared[2].last_applied))


def test_created_fields_are_the_validated_ones() -> None:
    from reconciler.models import FieldChange

    m = Manifest(name="a", source_type="csv", connection={"file_path": "/x"}, tags=("t",))
    (change,) = planning.plan([m], [], owner="o").changes
    validated = tuple(FieldChange(path=f.path, old=f.old, new=f.new) for f in change.fields)
    assert change.fields == validated and [f.path for f in change.fields][:2] == [
        "name",
        "source_type",
    ]
    for built, checked in zip(change.fields, validated, strict=True):
        assert built.model_fields_set == checked.model_fields_set
        assert built.model_dump_json() == checked.model_dump_json()
    copied = change.fields[0].model_copy(update={"new": "b"})
    assert copied.new == "b" and change.fields[1].model_fields_set == {"path", "old", "new"}
