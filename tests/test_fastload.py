"""The fast path (reconciler/fastload.py) never changes what loading manifests gives.

Texts are generated around the fast path's subset: realistic manifests, then scalars that
YAML 1.1 and 1.2 read differently, keys pyyaml and the fast parser read differently,
duplicate keys, tags, anchors, aliases, merge keys, bad indentation and document markers.
Whenever the fast parser accepts a text, the exact path must accept it too and give the
same documents, value for value and type for type; whenever the compiled validator accepts
a document, jsonschema must find nothing wrong with it. And a whole directory loads the same
with and without the fast path: the same manifests at the same lines, or the same problems.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import InvalidManifests
from reconciler.manifests import fast_path as fastload
from reconciler.manifests.json_schemas import manifest_validator
from reconciler.manifests.loading import load_manifests
from reconciler.manifests.yaml_lines import parse_documents

CASES = Path(__file__).parent / "cases"

# Scalars as written in a file: plain, quoted, and every spelling the two YAML versions
# resolve differently (booleans, octal, sexagesimal, exponents, dates, nulls, ...).
SCALARS = [
    *["orders", "postgres", "csv", "db.internal", "reader", "shop", "public", "x y z"],
    *["5432", "0", "7", "65535", "65536", "123456789012345678901234", "017", "0o17", "0x1F"],
    *["0b101", "1_000", "_1", "1:30", "190:20:30.15", "-1", "+1", "1e3", "1.5", "1.0e+3"],
    *[".5", "5.", ".inf", "-.inf", ".NaN", "nan", "~", "null", "Null", "NULL", "true", "True"],
    *["TRUE", "false", "False", "yes", "Yes", "YES", "no", "No", "on", "On", "off", "OFF"],
    *["y", "n", "Y", "N", "2024-01-01", "2001-12-14 21:59:43.10 -5", "2001-12-14t21:59:43.10"],
    *["12:30:00", "10.0.0.1", "1.2.3", "${env:PW}", "${env:X Y}", "${file:/run/secrets/db}"],
    *["/data/x.csv", "a:b", "a: b", "a :b", "a #b", "a#b", "a # b", "C#", "é", "café", "日本"],
    *["'single'", "'it''s'", "''", '"double"', '""', '"x\\ty"', '"\\u00e9"', "'a\n  b'"],
    *["=", "<<", "-", "- x", "--", "---", "...", "?", "? x", ":", "|", ">", "@x", "`x", "%x"],
    *["!!str 5", "!!int 5", "!!python/object:os.system x", "!custom x", "!!binary aGk="],
    *["&a x", "*a", "&a [x, y]", "[a, b]", "[]", "{}", "{a: 1}", "{a: 1, a: 2}", "[no, yes]"],
    *["[1, 2]", "[a, b,]", "[a , b]", "[a, [b]]", "{a: {b: c}}", "[${env:X}]", "{<<: {a: 1}}"],
    *["a\u2028b", "a\x85b", "\ufeffx", "a\tb", "x\x07", "\u00a0x", "x\u00a0y", "a\\b"],
]
KEYS = [
    *["name", "source_type", "connection", "description", "tags", "columns", "lifecycle"],
    *["schema_policy", "host", "port", "dbname", "user", "password", "table", "file_path"],
    *["type", "nullable", "prevent_destroy", "ignore_changes", "schema", "extra", "a-b", "x1"],
    *["on", "yes", "No", "y", "true", "True", "null", "NULL", "~", "1", "0x1", "1.5", "<<"],
    *["'quoted'", '"dq"', "name ", "? complex", "é", "a b", "!!str k", "&k key", "*k"],
]
SMALL = settings(max_examples=500, deadline=None)
# Half the texts use only what the subset admits, so that the fast path is taken often.
INSIDE_SCALARS = [s for s in SCALARS if fastload.in_subset(f"k: {s}\n")]
INSIDE_KEYS = [k for k in KEYS if fastload.in_subset(f"{k}: x\n")]


@st.composite
def texts(draw: st.DrawFn) -> str:
    """A YAML text in or near the subset: nested mappings and lists, maybe mutated."""
    clean = draw(st.booleans())
    scalars = st.sampled_from(INSIDE_SCALARS if clean else SCALARS)
    keys = st.sampled_from(INSIDE_KEYS if clean else KEYS)
    lines: list[str] = []

    def block(indent: int, depth: int) -> None:
        for _ in range(draw(st.integers(1, 4))):
            pad = " " * indent
            kind = draw(st.sampled_from(["scalar", "scalar", "map", "list", "comment"]))
            key = draw(keys)
            if kind == "comment":
                lines.append(pad + draw(st.sampled_from(["# note", "#", "", "  # x"])))
            elif kind == "scalar" or depth > 2:
                tail = draw(st.sampled_from(["", "", "  # c", " ", *([] if clean else ["#c"])]))
                lines.append(f"{pad}{key}: {draw(scalars)}{tail}")
            elif kind == "map":
                lines.append(f"{pad}{key}:")
                block(indent + draw(st.sampled_from([2, 2, 4, 1])), depth + 1)
            else:
                lines.append(f"{pad}{key}:")
                inner = indent + draw(st.sampled_from([0, 2, 2]))
                for _ in range(draw(st.integers(1, 3))):
                    if draw(st.booleans()):
                        lines.append(f"{' ' * inner}- {draw(scalars)}")
                    else:
                        lines.append(f"{' ' * inner}- {draw(keys)}: x")
                        lines.append(f"{' ' * (inner + 2)}{draw(keys)}: y")

    for document in range(draw(st.integers(1, 3))):
        if document or draw(st.booleans()):
            lines.append(
                draw(st.sampled_from(["---", "--- # doc", *([] if clean else ["...\n---"])]))
            )
        if draw(st.integers(0, 4)):  # the fast path wants a top-level name to locate
            lines.append(f"name: {draw(st.sampled_from(SCALARS[:8]))}")
            block(0, 0)
        else:
            block(draw(st.sampled_from([0, 2])), 0)
    for _ in range(draw(st.integers(0, 1 if clean else 3))):  # re-indent, repeat or drop
        if not lines:
            break
        at = draw(st.integers(0, len(lines) - 1))
        match draw(st.sampled_from(["indent", "dedent", "repeat", "drop"])):
            case "indent":
                lines[at] = " " + lines[at]
            case "dedent":
                lines[at] = lines[at].removeprefix(" ")
            case "repeat":
                lines.insert(at, lines[at])
            case "drop":
                del lines[at]
    return "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))


@st.composite
def manifest_texts(draw: st.DrawFn) -> str:
    """A realistic manifest, with one of its values replaced by an arbitrary scalar."""
    values = {
        "name": "orders",
        "source_type": draw(st.sampled_from(["postgres", "csv"])),
        "description": "Orders, from the shop database.",
        "host": "db.internal",
        "port": "5432",
        "password": "${env:PW}",
        "file_path": "/data/orders.csv",
        "tags": "[sales, finance]",
    }
    values[draw(st.sampled_from(sorted(values)))] = draw(st.sampled_from(SCALARS))
    connection = (
        f"  host: {values['host']}\n  port: {values['port']}\n  dbname: shop\n"
        f"  user: reader\n  password: {values['password']}\n  table: orders\n"
        if values["source_type"] == "postgres"
        else f"  file_path: {values['file_path']}\n"
    )
    return (
        f"name: {values['name']}\nsource_type: {values['source_type']}\n"
        f"description: {values['description']}\nconnection:\n{connection}"
        f"tags: {values['tags']}\n"
    )


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 == True, but not here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) or (a != a and b != b)  # NaN


def check_parse(text: str) -> bool:
    """If the fast parser accepts the text, the exact path reads exactly the same from it."""
    fast = fastload.parse(text)
    if fast is None:
        return False
    exact, problems = parse_documents(text, "f.yaml")
    assert problems == [], (text, problems)
    assert len(fast) == len(exact), text
    for quick, slow in zip(fast, exact, strict=True):
        assert same(quick.data, slow.data), (text, quick.data, slow.data)
        assert quick.line == slow.line_of(("name",)), text
    return True


@SMALL
@given(texts())
def test_fast_parse_agrees_with_the_exact_path(text: str) -> None:
    check_parse(text)


@SMALL
@given(manifest_texts())
def test_fast_parse_agrees_on_manifests(text: str) -> None:
    check_parse(text)


@SMALL
@given(st.sampled_from(SCALARS), st.sampled_from(KEYS), st.sampled_from(["", " # c", "  "]))
def test_every_scalar_and_key_reads_alike(scalar: str, key: str, tail: str) -> None:
    for text in (
        f"name: x\n{key}: {scalar}{tail}\n",
        f"name: x\nlist:\n  - {scalar}{tail}\n",
        f"name: x\nflow: [{scalar}, b]\n",
        f"name: x\nmap: {{{key}: {scalar}}}\n",
    ):
        check_parse(text)


def test_typical_manifests_take_the_fast_path() -> None:
    """The property tests above would pass vacuously if nothing ever took the fast path."""
    valid = yaml.safe_load((CASES / "valid_manifests.yaml").read_text(encoding="utf-8"))
    fast = [t for case in valid for t in case["files"].values() if check_parse(t)]
    assert len(fast) >= 12


@pytest.mark.parametrize(
    "text",
    [
        "name: a\nname: b\n",
        "name: a\nconnection:\n  host: x\n  host: y\n",
        "name: a\nconnection: {host: x, host: y}\n",
        "name: a\ncolumns:\n  - name: id\n    name: id2\n",
        "name: a\nport: 1\nport: 1\n",
        "name: a\n'name': b\n",
    ],
)
def test_duplicate_keys_never_take_the_fast_path(text: str) -> None:
    assert fastload.parse(text) is None
    _, problems = parse_documents(text, "f.yaml")
    assert any("duplicate key" in p.message for p in problems)


@pytest.mark.parametrize(
    "text",
    [
        "name: !!python/object:os.system x\n",
        "name: a\nport: !!int 5\n",
        "name: a\nconnection: !custom {host: x}\n",
        "name: a\ntags: !!set {a, b}\n",
        "!!map\nname: a\n",
        "name: a\nb: &x [1, 2]\nc: *x\n",
        "name: a\nbase: &b {host: x}\nconnection:\n  <<: *b\n",
        "name: a\nconnection:\n  <<: {host: x}\n",
        "%YAML 1.1\n---\nname: a\n",
        "name: a\ndescription: |\n  text\n",
        "name: a\ndescription: >\n  text\n",
        "? name\n: a\n",
        (CASES / "invalid_manifests.yaml").read_text(encoding="utf-8"),
    ],
)
def test_tags_aliases_merges_and_other_syntax_never_take_the_fast_path(text: str) -> None:
    assert fastload.parse(text) is None


def test_alias_bombs_never_take_the_fast_path() -> None:
    invalid = yaml.safe_load((CASES / "invalid_manifests.yaml").read_text(encoding="utf-8"))
    bombs = [t for case in invalid if "bomb" in case["id"] for t in case["files"].values()]
    assert len(bombs) == 2
    for text in bombs:
        assert not fastload.in_subset(text)
        assert fastload.parse(text) is None
    many = "name: a\ntags: [" + ", ".join(["x"] * 40_000) + "]\n"  # over the size bound
    assert fastload.parse(many) is None


documents = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**63 - 1),
        st.sampled_from(["5432", "0", "65536", "${env:PW}", "secret", "", "x" * 101, "csv"]),
        st.text(max_size=5),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """A valid manifest document with a few values replaced, added or removed."""
    doc: dict[str, Any] = {
        "name": "orders",
        "source_type": draw(st.sampled_from(["postgres", "csv", "mysql"])),
        "connection": draw(
            st.sampled_from(
                [
                    {"host": "h", "dbname": "d", "user": "u", "table": "t"},
                    {"host": "h", "port": 5432, "dbname": "d", "user": "u", "table": "t"},
                    {"file_path": "/x.csv"},
                ]
            )
        ),
        "tags": ["a"],
        "columns": [{"name": "id", "type": "int"}],
        "lifecycle": {"prevent_destroy": False, "ignore_changes": ["description"]},
    }
    for _ in range(draw(st.integers(0, 3))):
        inner = doc.get("connection")
        where = inner if isinstance(inner, dict) and draw(st.booleans()) else doc
        key = draw(st.sampled_from(KEYS))
        if draw(st.integers(0, 3)) == 0:
            where.pop(key, None)
        else:
            where[key] = draw(documents)
    return doc


@settings(max_examples=400, deadline=None)
@given(near_valid())
def test_compiled_validator_never_accepts_what_jsonschema_refuses(doc: dict[str, Any]) -> None:
    if fastload.is_valid(doc):
        assert list(manifest_validator().iter_errors(doc)) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(manifest_texts(), texts()), min_size=1, max_size=4))
def test_a_directory_loads_the_same_with_and_without_the_fast_path(files: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for index, text in enumerate(files):
            (root / f"m{index}.yaml").write_text(text, encoding="utf-8", newline="")
        assert load(root, fast=True) == load(root, fast=False)


def load(root: Path, *, fast: bool) -> Any:
    previous, fastload.ENABLED = fastload.ENABLED, fast
    try:
        manifests = load_manifests(root, allow_empty=True)
    except InvalidManifests as exc:
        return [str(p) for p in exc.problems]
    finally:
        fastload.ENABLED = previous
    return [(m.model_dump(), m.file, m.line) for m in manifests]


def write_mixed(root: Path, count: int, *, invalid: bool) -> None:
    """Manifests in and outside the fast path's subset, and (optionally) invalid ones."""
    root.mkdir()
    for i in range(count):
        name = f"s{i:03d}"
        text = f"name: {name}\nsource_type: csv\nconnection: {{file_path: /d/{i}.csv}}\n"
        if i % 3 == 1:
            text += 'description: "a\\tb"\n'  # an escape: outside the subset
        elif i % 3 == 2 and invalid:
            text += "port: 5432\n"  # not a top-level key: the exact path reports it
        (root / f"{name}.yaml").write_text(text, encoding="utf-8")


@pytest.mark.parametrize("share", [False, True])
@pytest.mark.parametrize("invalid", [False, True])
def test_batches_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, invalid: bool, share: bool
) -> None:
    """Small batches, with and without shared keys and strings, load what the exact path
    loads (the forked helper these batches once fed was removed: it did not pay, issue 15)."""
    from reconciler.manifests import batches as fastscan

    if share:  # keys and short strings shared between manifests, as for big directories
        monkeypatch.setattr(fastscan, "SHARE_FROM", 2)
    monkeypatch.setattr(fastscan, "BATCH", 7)
    root = tmp_path / "sources.d"
    write_mixed(root, 40, invalid=invalid)
    expected = load(root, fast=False)
    assert isinstance(expected[0], str) == invalid  # problems, or manifests
    assert load(root, fast=True) == expected
