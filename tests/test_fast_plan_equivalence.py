"""The content-addressed plan equals the full plan, over generated histories.

Each example starts from an empty registry (SQLite, PostgreSQL) and plays a history: applies
(through either path), edits in git, edits in the registry behind the reconciler's back
(SQL), secret rotations and missing secrets, files moved, renamed and merged into
multi-document files, unreadable rows, unmanaged rows, lifecycle flags, a changed
canonicalisation version. After every step, the plan through the digests
(planning/fast_plan.py) must equal the full plan (RECONCILER_FULL_PLAN), or the fast path
must decline where the full plan fails (invalid manifests, ...). A no-op's document is the
only field the fast plan leaves out (no report shows it).

The histories also cover what the digests cannot vouch for, so the fast path must read it
the full way: `${var:...}` values changed between runs, `environments:` lists and the run's
--environment, renames through `previous_names` (and a previous name that is another
unread source's current name).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import BACKENDS, insert_raw, sql_exec, with_database
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reconciler.errors import ReconcilerError
from reconciler.manifests import digests
from reconciler.manifests.variables import Scope
from reconciler.models import Change, Plan
from reconciler.workflow import fast_run, run, run_options

NAMES = ("alpha", "beta", "gamma", "delta", "omega")
SECRET_ENV = "FAST_PLAN_TEST_PW"


@dataclass
class Source:
    kind: str = "csv"
    rev: int = 0
    file: str = ""
    ignore: bool = False
    protect: bool = False
    variable: bool = False  # description from ${var:DESC}
    environments: tuple[str, ...] = ()
    previous: tuple[str, ...] = ()

    def text(self, name: str) -> str:
        lines = [f"name: {name}", f"source_type: {'postgres' if self.kind == 'pg' else 'csv'}"]
        if self.variable:
            lines.append("description: ${var:DESC}")
        else:
            lines.append(f"description: {name} revision {self.rev}")
        if self.environments:
            lines.append(f"environments: [{', '.join(self.environments)}]")
        if self.previous:
            lines.append(f"previous_names: [{', '.join(self.previous)}]")
        if self.kind == "pg":
            lines += [
                "connection:",
                "  host: db.internal",
                "  port: 5432",
                "  dbname: shop",
                "  user: reporting",
                f"  password: ${{env:{SECRET_ENV}}}",
                f"  table: {name}",
            ]
        else:
            lines += ["connection:", f"  file_path: /data/{name}.csv"]
        lines.append("tags: [a, b]")
        if self.ignore or self.protect:
            lines.append("lifecycle:")
            if self.ignore:
                lines.append("  ignore_changes: [description]")
            if self.protect:
                lines.append("  prevent_destroy: true")
        return "\n".join(lines) + "\n"


@dataclass
class World:
    root: Path
    registry: str
    sources: dict[str, Source] = field(default_factory=dict)
    fast_used: int = 0
    desc: str = "first"  # the value of ${var:DESC}
    environment: str | None = None

    def write(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        files: dict[str, list[str]] = {}
        for name, source in sorted(self.sources.items()):
            files.setdefault(source.file or f"{name}.yaml", []).append(source.text(name))
        for file, docs in files.items():
            path = self.root / file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("---\n".join(docs) if len(docs) > 1 else docs[0])

    def options(self, prune: bool) -> run.Options:
        return run.Options(
            sources_dir=self.root,
            registry=self.registry,
            prune=prune,
            max_deletes=100,
            scope=Scope({"DESC": self.desc}, self.environment),
        )


def _normal(plan: Plan) -> dict[str, Any]:
    dump = plan.model_dump()
    for change in dump["changes"]:
        if change["action"] == "noop":
            change["document"] = None
    return dump


@contextmanager
def _full_plan() -> Iterator[None]:
    run_options.FULL_PLAN = True
    try:
        yield
    finally:
        run_options.FULL_PLAN = False


def check_same(world: World) -> None:
    """Both plans, with and without --prune."""
    world.write()
    for prune in (False, True):
        options = world.options(prune)
        fast = fast_run.dry_run(options)
        with _full_plan():
            try:
                full = run.dry_run(options)
            except ReconcilerError:
                assert fast is None, "the fast path planned what the full path refuses"
                continue
        if fast is None:
            continue
        world.fast_used += 1
        assert _normal(fast[0].plan) == _normal(full.plan)
        for change in fast[0].plan.changes:  # built without validation: still a valid Change
            dumped = change.model_dump()
            assert Change.model_validate(dumped).model_dump() == dumped
        assert fast[0].sources == full.sources


def play(world: World, step: tuple[Any, ...]) -> None:
    op, index, flag = step
    name = NAMES[index]
    source = world.sources.get(name)
    if op == "apply":
        world.write()
        if flag:
            with _full_plan():
                _apply(world)
        else:
            _apply(world)
    elif op == "add" and source is None:
        world.sources[name] = Source(kind="pg" if flag else "csv")
    elif op == "remove":
        world.sources.pop(name, None)
    elif op == "edit" and source is not None:
        source.rev += 1
    elif op == "move" and source is not None:
        source.file = f"moved/{name}-{source.rev}.yml" if flag else ""
    elif op == "merge" and source is not None:
        other = world.sources.get(NAMES[(index + 1) % len(NAMES)])
        source.file = "together.yaml"
        if other is not None:
            other.file = "together.yaml"
    elif op == "ignore" and source is not None:
        source.ignore = not source.ignore
    elif op == "protect" and source is not None:
        source.protect = not source.protect
    elif op == "oob_update":
        column = "description = 'edited outside'" if flag else "tags = '[\"x\"]'"
        if world.registry.startswith("postgresql") and not flag:
            column = "tags = '[\"x\"]'::jsonb"
        sql_exec(world.registry, f"UPDATE sources SET {column} WHERE lower(name) = ?", (name,))
    elif op == "oob_secret":
        sql_exec(
            world.registry,
            "UPDATE sources SET connection = "
            + (
                '\'{"password": "leaked"}\''
                if world.registry.startswith("sqlite")
                else "jsonb_set(connection, '{password}', '\"leaked\"')"
            )
            + " WHERE lower(name) = ?",
            (name,),
        )
    elif op == "oob_delete":
        sql_exec(world.registry, "DELETE FROM sources WHERE lower(name) = ?", (name,))
    elif op == "oob_unreadable":
        bad = "'nope'" if world.registry.startswith("sqlite") else "'\"nope\"'::jsonb"
        sql_exec(world.registry, f"UPDATE sources SET tags = {bad} WHERE lower(name) = ?", (name,))
    elif op == "oob_insert":
        with suppress(Exception):  # already there (unique name)
            insert_raw(world.registry, f"{name}-other", managed_by="someone" if flag else None)
    elif op == "rotate":
        os.environ[SECRET_ENV] = f"secret-{uuid.uuid4().hex[:6]}"
    elif op == "unset_secret":
        os.environ.pop(SECRET_ENV, None)
    elif op == "variable" and source is not None:
        source.variable = not source.variable
    elif op == "set_var":
        world.desc = f"value {index} {flag}"
    elif op == "environments" and source is not None:
        source.environments = () if source.environments else (("prod",) if flag else ("dev",))
    elif op == "run_in":
        world.environment = ("prod", "dev", None)[index % 3]
    elif op == "rename" and source is not None:
        # A new name that keeps the record; with flag, a previous name that is the current
        # name of another source (the loader's clash: the full path reports it).
        new = f"{name}-{index}{'x' if flag else ''}"
        if new not in world.sources:
            world.sources.pop(name)
            taken = NAMES[(index + 1) % len(NAMES)]
            world.sources[new] = replace(source, previous=(name, taken) if flag else (name,))
    elif op == "canon":
        digests.CANON_VERSION = f"test-{index}"
        digests._salt.cache_clear()
    check_same(world)


def _apply(world: World) -> None:
    had = SECRET_ENV in os.environ
    os.environ.setdefault(SECRET_ENV, "initial-secret")
    try:
        run.apply(world.options(prune=False))
    except ReconcilerError:
        pass  # blocked, conflicts, invalid...: nothing written, the plans still must agree
    finally:
        if not had:
            os.environ.pop(SECRET_ENV, None)


OPS = st.tuples(
    st.sampled_from(
        [
            "apply",
            "apply",
            "add",
            "add",
            "remove",
            "edit",
            "move",
            "merge",
            "ignore",
            "protect",
            "oob_update",
            "oob_secret",
            "oob_delete",
            "oob_unreadable",
            "oob_insert",
            "rotate",
            "unset_secret",
            "canon",
            "variable",
            "set_var",
            "environments",
            "run_in",
            "rename",
        ]
    ),
    st.integers(0, len(NAMES) - 1),
    st.booleans(),
)


@contextmanager
def _registry(backend: str, pg_server_url: str) -> Iterator[str]:
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="fastplan-")
        try:
            yield f"sqlite:///{folder}/registry.db"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    dbname = f"fp_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    try:
        yield with_database(pg_server_url, dbname)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@contextmanager
def _restored() -> Iterator[None]:
    version, secret = digests.CANON_VERSION, os.environ.get(SECRET_ENV)
    os.environ[SECRET_ENV] = "initial-secret"
    try:
        yield
    finally:
        digests.CANON_VERSION = version
        digests._salt.cache_clear()
        if secret is None:
            os.environ.pop(SECRET_ENV, None)
        else:
            os.environ[SECRET_ENV] = secret


def _history(backend: str, pg_server_url: str, steps: list[tuple[Any, ...]]) -> World:
    with _restored(), _registry(backend, pg_server_url) as registry:
        world = World(Path(tempfile.mkdtemp(prefix="fastplan-src-")) / "sources.d", registry)
        try:
            world.sources = {
                "alpha": Source(),
                "beta": Source(kind="pg"),
                "gamma": Source(kind="pg", ignore=True, protect=True),
            }
            play(world, ("apply", 0, False))
            for step in steps:
                play(world, step)
            play(world, ("apply", 0, False))
            return world
        finally:
            shutil.rmtree(world.root.parent, ignore_errors=True)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(OPS, max_size=10))
# Histories each shortcut must get right, always played (each fails when its guard goes):
@example(steps=[("oob_update", 0, True)])  # an edit outside git moves the row's version
@example(steps=[("variable", 0, False), ("apply", 0, False), ("set_var", 1, False)])
@example(
    steps=[("environments", 0, True), ("run_in", 0, False), ("apply", 0, False), ("run_in", 1, 0)]
)
@example(steps=[("rename", 0, False), ("apply", 0, False), ("edit", 1, False)])
@example(steps=[("rename", 0, False), ("apply", 0, False), ("add", 0, False)])
@example(steps=[("rename", 0, True)])  # a previous name that is another's current name
@example(steps=[("rotate", 1, False)])
@example(steps=[("move", 0, True), ("merge", 1, False), ("apply", 0, False)])
def test_fast_plan_equals_full_plan(backend: str, pg_server_url: str, steps: list[Any]) -> None:
    _history(backend, pg_server_url, steps)


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_op_reads_no_record_and_parses_no_manifest(backend: str, pg_server_url: str) -> None:
    """The shortcut is taken: after an apply, a plan of unchanged sources parses nothing."""
    with _restored(), _registry(backend, pg_server_url) as registry:
        world = World(Path(tempfile.mkdtemp(prefix="fastplan-src-")) / "sources.d", registry)
        try:
            world.sources = {n: Source(kind="pg" if i % 2 else "csv") for i, n in enumerate(NAMES)}
            play(world, ("apply", 0, False))
            fast = fast_run.dry_run(world.options(prune=True))
            assert fast is not None
            outcome = fast[0]
            assert outcome.manifests == [] and outcome.sources == len(NAMES)
            assert outcome.plan.count("noop") == len(NAMES)
            assert world.fast_used >= 1
            # One edit in git, one outside: only those two are read.
            play(world, ("edit", 0, False))
            play(world, ("oob_update", 1, True))
            fast = fast_run.dry_run(world.options(prune=True))
            assert fast is not None
            assert [m.name for m in fast[0].manifests] == ["alpha", "beta"]
        finally:
            shutil.rmtree(world.root.parent, ignore_errors=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_records_in_sync_get_their_digest_at_the_next_apply(
    backend: str, pg_server_url: str
) -> None:
    """After a new canonicalisation version (or an upgrade), every source is planned in full
    until an apply stores the new digests of the records it finds in sync."""
    with _restored(), _registry(backend, pg_server_url) as registry:
        world = World(Path(tempfile.mkdtemp(prefix="fastplan-src-")) / "sources.d", registry)
        try:
            world.sources = {n: Source(kind="pg" if i % 2 else "csv") for i, n in enumerate(NAMES)}
            play(world, ("apply", 0, False))
            play(world, ("canon", 1, False))
            fast = fast_run.dry_run(world.options(prune=False))
            assert fast is not None and len(fast[0].manifests) == len(NAMES)  # all in full
            play(world, ("apply", 0, False))
            fast = fast_run.dry_run(world.options(prune=False))
            assert fast is not None and fast[0].manifests == []
            assert fast[0].plan.count("noop") == len(NAMES)
        finally:
            shutil.rmtree(world.root.parent, ignore_errors=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_shortcut_is_not_taken_where_it_cannot_vouch(backend: str, pg_server_url: str) -> None:
    """A selection, drift (the registry must exist) and --schema plan in full; an apply that
    checks declared schemas reads every file that may declare one."""
    with _restored(), _registry(backend, pg_server_url) as registry:
        world = World(Path(tempfile.mkdtemp(prefix="fastplan-src-")) / "sources.d", registry)
        try:
            world.sources = {n: Source() for n in NAMES}
            play(world, ("apply", 0, False))
            options = world.options(prune=False)
            assert fast_run.dry_run(options) is not None
            assert fast_run.dry_run(replace(options, select=("alpha",))) is None
            assert fast_run.dry_run(replace(options, exclude=("beta",))) is None
            assert fast_run.dry_run(replace(options, digests=False)) is None
            (world.root / "alpha.yaml").write_text(
                Source().text("alpha") + "columns:\n  - {name: id, type: integer}\n"
            )
            _apply(world)  # written by an apply: alpha has a digest again
            plain = run.apply(options)
            assert plain.manifests == [] and plain.sources == len(NAMES)
            declared = run.apply(replace(options, declared=True))
            assert [m.name for m in declared.manifests] == ["alpha"]
            assert declared.sources == len(NAMES) and declared.plan.count("noop") == len(NAMES)
        finally:
            shutil.rmtree(world.root.parent, ignore_errors=True)


def test_models_the_planner_builds_equal_validated_ones(tmp_path: Path) -> None:
    """models.built skips validation (a million per big plan): what it makes must be what
    validation makes, every field present (a missing one breaks attribute access)."""
    from reconciler.manifests.loading import load_manifests
    from reconciler.models import FieldChange
    from reconciler.planning.plan import plan

    (tmp_path / "alpha.yaml").write_text(Source(kind="pg").text("alpha"))
    (change,) = plan(load_manifests(tmp_path), [], owner="o").changes
    assert change.fields
    for built_change in change.fields:
        validated = FieldChange.model_validate(
            {"path": built_change.path, "old": built_change.old, "new": built_change.new}
        )
        assert built_change == validated
        assert built_change.sensitive is False


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_row_cannot_make_the_plan_resolve_references_its_document_does_not_name(
    backend: str, pg_server_url: str, tmp_path: Path
) -> None:
    """secret_refs comes from whoever can write the table. A row rewritten to name another
    file (and carry that file's fingerprint, computed with the registry's key) with its
    versions kept consistent would otherwise have the plan read that file and confirm its
    content by skipping the source; the plan resolves only references written in the
    document, so that source is read the full way instead."""
    import json

    from reconciler.backends import open_registry
    from reconciler.backends.base import ConnectOptions
    from reconciler.secret_refs import fingerprint

    private = tmp_path / "private.txt"
    private.write_text("hunter2")
    with _restored(), _registry(backend, pg_server_url) as registry:
        world = World(Path(tempfile.mkdtemp(prefix="fastplan-src-")) / "sources.d", registry)
        try:
            world.sources = {"alpha": Source(), "beta": Source(kind="pg")}
            play(world, ("apply", 0, False))
            opened = open_registry(registry, writable=False, options=ConnectOptions())
            try:
                key = opened.fingerprint_key()
            finally:
                opened.close()
            assert key is not None
            hostile = json.dumps(
                {"connection.password": [f"${{file:{private}}}", fingerprint(key, "hunter2")]}
            )
            sql_exec(
                registry,
                "UPDATE sources SET secret_refs = ?, version = version + 1, "
                "applied_version = version + 1 WHERE name = 'beta'",
                (hostile,),
            )
            fast = fast_run.dry_run(world.options(prune=False))
            assert fast is not None
            assert [m.name for m in fast[0].manifests] == ["beta"]  # read, not vouched for
        finally:
            shutil.rmtree(world.root.parent, ignore_errors=True)
