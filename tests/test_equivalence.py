"""Each shortcut taken for speed gives exactly what the code it replaced gave.

- planning's field diff: DeepDiff's paths (pinned by example), imported only when needed;
- the JSON columns' decoder against json.loads;
- the cached canonical document against a fresh one, and the fingerprint memo;
- finding manifest files against the rglob/suffix/is_file selection it replaced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.errors import ReconcilerError
from reconciler.manifests.documents import (
    DesiredDocuments,
    canonical,
    desired_document,
    diff_fields,
)
from reconciler.manifests.loading import find_manifest_files
from reconciler.models import Manifest
from reconciler.planning import plan as planning
from reconciler.planning.plan import SecretFingerprints


def paths(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [f.path for f in diff_fields(old, new)]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"a": 1}, {"a": 1}, []),
        ({"a": 1, "b": 2}, {"a": 1, "b": 3}, ["b"]),
        ({"a": 1}, {"a": 1.0}, []),  # equal documents: no diff at all
        ({"a": 1, "b": 2}, {"a": 1.0, "b": 3}, ["a", "b"]),  # once they differ, types count
        ({"a": 0, "b": 2}, {"a": False, "b": 3}, ["a", "b"]),
        ({"tags": ["a"]}, {"tags": ["a", "b"]}, ["tags"]),  # a list is one field
        ({"tags": [{"x": 1}]}, {"tags": [{"x": 2}]}, ["tags"]),
        ({"c": {"host": "h", "port": 1}}, {"c": {"host": "h"}}, ["c.port"]),  # removed key
        ({"c": {"host": "h"}}, {"c": {"host": "h", "port": 1}}, ["c.port"]),  # added key
        # Mappings sharing too few keys differ as a whole (a connection of another type).
        (
            {"tags": ["a"], "c": {"host": "h", "port": 1}},
            {"tags": ["b"], "c": {"file": "f"}},
            ["c", "tags"],
        ),
        ({"a": (1, 2), "b": 1}, {"a": (1, 3), "b": 1}, ["a"]),
        ({"a": {"b": {"c": None}}}, {"a": {"b": {"c": ""}}}, ["a.b.c"]),
        ({"c": {"port": 1}, "d": "x"}, {"c": {"port": 1.0}, "d": "y"}, ["c.port", "d"]),
        ({"tags": [1], "d": "x"}, {"tags": [1.0], "d": "y"}, ["d", "tags"]),
        ({"c": {"a": 1}, "d": "x"}, {"c": "a", "d": "x"}, ["c"]),
    ],
)
def test_field_diff_paths(old: dict[str, Any], new: dict[str, Any], expected: list[str]) -> None:
    """DeepDiff's paths, each cut at its first list index: what plans, reports and saved
    plans name as fields."""
    assert paths(old, new) == expected


def test_deepdiff_is_imported_only_when_mappings_differ() -> None:
    """Its import takes a tenth of a second: a plan with nothing to change, or changing only
    top-level scalars and lists (a description, tags), never pays it."""
    code = (
        "import sys\n"
        "from reconciler.models import Manifest\n"
        "from reconciler.manifests.documents import desired_document\n"
        "from reconciler.planning.plan import diff_fields, plan\n"
        "m = Manifest(name='a', source_type='csv', connection={'file_path': '/x'})\n"
        "doc = desired_document(m)\n"
        "assert diff_fields(doc, dict(doc)) == ()\n"
        "plan([m], [], owner='o')\n"
        "diff_fields(doc, {**doc, 'description': 'x', 'tags': ['t']})\n"
        "print('deepdiff' in sys.modules)\n"
        "diff_fields(doc, {**doc, 'connection': {'file_path': '/y'}})\n"
        "print('deepdiff' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "True"]


json_leaves = (
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2) | st.text(max_size=3)
)
values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["x", "y", "z"]), inner, max_size=3)
    ),
    max_leaves=6,
)
documents = st.dictionaries(st.sampled_from(["a", "b", "c", "tags"]), values, max_size=4)
# Pairs with the same fields, as canonical documents always are: the shortcut's case.
same_fields = st.lists(st.sampled_from(["a", "b", "c", "tags"]), unique=True).flatmap(
    lambda keys: st.tuples(
        st.fixed_dictionaries({k: values for k in keys}),
        st.fixed_dictionaries({k: values for k in keys}),
    )
)


@settings(max_examples=400, deadline=None)
@given(st.tuples(documents, documents) | same_fields)
def test_field_diff_paths_are_deepdiffs(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """The top-level shortcut gives exactly the paths DeepDiff gives on the whole documents."""
    from deepdiff import DeepDiff

    from reconciler.manifests.field_diff import changed_paths

    old, new = pair
    expected = set()
    for levels in DeepDiff(old, new, view="tree").values():
        for level in levels:
            path = level.path(output_format="list")
            cut = next((i for i, p in enumerate(path) if isinstance(p, int)), len(path))
            expected.add(tuple(path[:cut]))
    assert changed_paths(old, new) == expected


json_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


def test_desired_document_is_computed_once_per_run_and_equal_to_a_fresh_one() -> None:
    def sizes() -> dict[str, int]:
        return {k: len(v) for k, v in vars(planning).items() if isinstance(v, dict | list | set)}

    before = sizes()
    m = Manifest(name="a", source_type="csv", connection={"file_path": "/x"}, tags=("b", "a"))
    documents = DesiredDocuments()
    first = documents(m)
    assert documents(m) is first
    assert first == canonical(m.model_dump(mode="json")) == desired_document(m)
    twin = m.model_copy()  # equal, but another object: its own entry
    assert documents(twin) == first and documents(twin) is not first
    seen: list[Manifest] = []

    class Counted(DesiredDocuments):
        def __call__(self, manifest: Manifest) -> dict[str, Any]:
            seen.append(manifest)
            return super().__call__(manifest)

    (change,) = planning.plan([m], [], owner="o", documents=Counted()).changes
    assert seen == [m] and change.document == first  # the run's documents are the ones used
    assert DesiredDocuments()(m) is not first  # nothing kept beyond the run's own cache
    assert sizes() == before  # planning kept nothing in its module


def test_fingerprints_are_computed_once_per_distinct_value() -> None:
    calls: list[Any] = []

    def of(value: Any) -> str:
        calls.append(value)
        return f"fp:{value!r}"

    memo = planning.memoized(of)
    assert memo is not None and planning.memoized(None) is None
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
