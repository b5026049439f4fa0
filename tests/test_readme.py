"""README is executed: every ```console block runs, and its output must be what README shows.

A block is a list of `$ command` lines (continued by `> ` lines) each followed by the output
README promises. Blocks of one scenario (the info string's `scenario=NAME`, else the section
heading) run in order in one fresh directory holding copies of sources.d/, examples/data/ and
schemas/; exported variables carry over to the next block. An HTML comment
`<!-- setup: shell -->` right before a block runs first, its output unchecked. A block with
`norun="REASON"` in its info string is skipped with that reason; one with `postgres` gives
its scenario a fresh database on the test session's server (PGHOST, PGPORT, PGUSER,
PGDATABASE). Ids, times, durations, pids, hosts, versions and the temp path are normalised
before comparing; an output line `...` (or `...(text)...`) stands for any number of lines.

Without the sqlite3 shell (or with README_SHIMS=1) tests/readme_bin/sqlite3 stands in for it.

`README_UPDATE=1 pytest tests/test_readme.py` writes the actual outputs back into README.md,
keeping every line that already matched (so its example ids and times stay), for review.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
UPDATE = os.environ.get("README_UPDATE") == "1"
COPIED = ("sources.d", "examples/data", "schemas")
TOOLS = ("jq",)  # outside Python; a block using a missing one is skipped
SHIMS = ROOT / "tests" / "readme_bin"  # stand-ins for tools that may be missing (sqlite3)
FENCE = re.compile(r"^( *)(`{3,})(\S*)(.*)$")
MARK = "@@readme-output@@"
MARK_LINE = f"rc=$?; printf '\\n%s\\n' '{MARK}'; (exit $rc)"  # between commands; keeps $?


@dataclass
class Command:
    text: str  # the command, continuation lines joined by newlines
    lines: list[str]  # as written in README, prompt included
    expected: list[str] = field(default_factory=list)
    trailer: list[str] = field(default_factory=list)  # blank lines before the next command


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    end: int  # 0-based index of the closing fence
    indent: str
    heading: str
    options: dict[str, str]
    setup: str
    commands: list[Command]

    @property
    def scenario(self) -> str:
        return self.options.get("scenario", self.heading)


def parse(text: str) -> list[Block]:
    lines = text.split("\n")
    blocks: list[Block] = []
    heading, i = "", 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if lines[i].startswith("#") and not fence:
            heading = lines[i].lstrip("#").strip()
        if not fence:
            i += 1
            continue
        indent, ticks, lang, rest = fence.groups()
        close = next(j for j in range(i + 1, len(lines)) if lines[j] == indent + ticks)
        if lang == "console":
            body = [line.removeprefix(indent) for line in lines[i + 1 : close]]
            opts = dict(o.partition("=")[::2] for o in shlex.split(rest))
            blocks.append(
                Block(i + 1, close, indent, heading, opts, setup_before(lines, i), commands(body))
            )
        i = close + 1
    return blocks


def setup_before(lines: list[str], i: int) -> str:
    """The `<!-- setup: ... -->` comment right before line i (blank lines between allowed)."""
    j = i - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j < 0 or not lines[j].rstrip().endswith("-->"):
        return ""
    start = j
    while start >= 0 and "<!--" not in lines[start]:
        start -= 1
    text = "\n".join(lines[start : j + 1]).strip().removeprefix("<!--").removesuffix("-->").strip()
    return text.removeprefix("setup:").strip() if text.startswith("setup:") else ""


def commands(body: list[str]) -> list[Command]:
    cmds: list[Command] = []
    for line in body:
        if line.startswith("$ "):
            cmds.append(Command(line[2:], [line]))
        elif line.startswith("> ") and cmds and not cmds[-1].expected:
            cmds[-1].text += "\n" + line[2:]
            cmds[-1].lines.append(line)
        elif cmds:
            cmds[-1].expected.append(line)
    for cmd in cmds:
        while cmd.expected and not cmd.expected[-1].strip():
            cmd.trailer.append(cmd.expected.pop())
    return cmds


def normalise(line: str, workdir: Path) -> str:
    """Placeholders for what changes from run to run; paths as if run in the checkout."""
    line = line.replace(str(workdir) + "/", "").replace(str(workdir), ".")
    depth = len(workdir.parts) - 1  # a relative path out of the scenario into the checkout
    line = re.sub(
        rf"((?:\.\./){{{depth},}}){re.escape(ROOT.as_posix().lstrip('/'))}/",
        lambda m: "../" * (m.group(1).count("../") - depth),
        line,
    )
    rules = [
        (r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>"),
        (r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:\d\d|Z)?", "<time>"),
        (r"\d{4}-\d\d-\d\d", "<date>"),
        (r"\b\d+\.\d+ ?s\b", "<secs>"),
        (r"\bpid \d+", "pid <pid>"),
        (r"\bversion \d+\.\d+\S*", "version <v>"),
    ]
    if len(host := socket.gethostname()) >= 4:  # a shorter name could be part of a word
        rules.append((rf"\b{re.escape(host)}\b", "<host>"))
    for pattern, placeholder in rules:
        line = re.sub(pattern, placeholder, line)
    return line.rstrip()


def is_elision(line: str) -> bool:
    text = line.strip()
    return text == "..." or (text.startswith("...(") and text.endswith(")..."))


def matches(expected: list[str], actual: list[str]) -> bool:
    """Line by line, an elision line standing for any number of lines."""

    @cache
    def at(e: int, a: int) -> bool:
        if e == len(expected):
            return a == len(actual)
        if is_elision(expected[e]):
            return any(at(e + 1, k) for k in range(a, len(actual) + 1))
        return a < len(actual) and expected[e] == actual[a] and at(e + 1, a + 1)

    return at(0, 0)


def merged(
    expected: list[str], actual: list[str], norm_e: list[str], norm_a: list[str]
) -> list[str]:
    """The new README output: lines that matched (and lone elisions) kept, the rest actual."""
    out: list[str] = []
    ops = difflib.SequenceMatcher(None, norm_e, norm_a, autojunk=False).get_opcodes()
    for tag, e1, e2, a1, a2 in ops:
        if tag == "equal":
            out += expected[e1:e2]
        elif e2 - e1 == 1 and is_elision(expected[e1]) and a2 > a1:
            out.append(expected[e1])
        else:
            out += actual[a1:a2]
    return out


@dataclass
class Scenario:
    workdir: Path
    env_file: Path
    env: dict[str, str]
    done: int = 0
    results: dict[int, list[list[str]]] = field(default_factory=dict)


SCENARIOS: dict[str, Scenario] = {}
UPDATES: dict[int, list[str]] = {}  # opening fence line -> new body lines
BLOCKS = parse(README.read_text())


def run_block(block: Block, scenario: Scenario) -> list[list[str]]:
    """Run the block's commands in one bash; return each command's output lines."""
    script = [f". {scenario.env_file}" if scenario.env_file.exists() else "", "exec 2>&1"]
    if block.setup:
        script.append(f"{{ {block.setup}\n}} > /dev/null 2>&1")
    for cmd in block.commands:
        script += [MARK_LINE, cmd.text]
    script += [MARK_LINE, f"export -p > {scenario.env_file}"]
    proc = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=scenario.workdir,
        env=scenario.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )
    parts = proc.stdout.split(f"\n{MARK}\n")[1:-1]
    return [part.rstrip("\n").split("\n") if part.strip("\n") else [] for part in parts]


@pytest.fixture(scope="session")
def readme_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("readme-home")
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RECONCILER_", "PG", "CI", "GITHUB_"))
    }
    path = f"{Path(sys.executable).parent}{os.pathsep}{keep.get('PATH', '')}"
    if not shutil.which("sqlite3", path=path) or os.environ.get("README_SHIMS") == "1":
        path = f"{SHIMS}{os.pathsep}{path}"
    return {
        **keep,
        "PATH": path,
        "HOME": str(home),
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "100",
    }


@pytest.fixture(scope="module", autouse=True)
def write_updates() -> Iterator[None]:
    yield
    if UPDATES:
        lines = README.read_text().split("\n")
        for block in sorted((b for b in BLOCKS if b.line in UPDATES), key=lambda b: -b.line):
            lines[block.line : block.end] = [
                block.indent + x if x else x for x in UPDATES[block.line]
            ]
        README.write_text("\n".join(lines))


def postgres_env(server_url: str, name: str) -> dict[str, str]:
    """A fresh database on the test session's server, as libpq's PG* variables."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = conninfo_to_dict(server_url)
    return {
        "PGHOST": str(parts.get("host") or "localhost"),
        "PGPORT": str(parts.get("port") or 5432),
        "PGUSER": str(parts.get("user") or "postgres"),
        "PGDATABASE": name,
    }


def scenario_for(block: Block, request: pytest.FixtureRequest, env: dict[str, str]) -> Scenario:
    """A fresh copy of the checkout's examples; a database too if a block says `postgres`."""
    if block.scenario not in SCENARIOS:
        base = request.getfixturevalue("tmp_path_factory").mktemp("readme")
        workdir = base / "repo"
        workdir.mkdir()
        for name in COPIED:
            shutil.copytree(ROOT / name, workdir / name)
        if any("postgres" in b.options for b in BLOCKS if b.scenario == block.scenario):
            server = request.getfixturevalue("pg_server_url")
            env = {**env, **postgres_env(server, f"readme_{base.name}")}
        SCENARIOS[block.scenario] = Scenario(workdir, base / "env.sh", env)
    return SCENARIOS[block.scenario]


def block_id(block: Block) -> str:
    return f"{re.sub(r'[^a-z0-9]+', '-', block.heading.lower()).strip('-')}-L{block.line}"


@pytest.mark.parametrize("block", BLOCKS, ids=block_id)
def test_console_block(
    block: Block, readme_env: dict[str, str], request: pytest.FixtureRequest
) -> None:
    if "norun" in block.options:
        pytest.skip(f"README says: {block.options['norun']}")
    needed = [t for t in TOOLS if any(re.search(rf"\b{t}\b", c.text) for c in block.commands)]
    if missing := [t for t in needed if not shutil.which(t)]:
        pytest.skip(f"needs {', '.join(missing)}")
    scenario = scenario_for(block, request, readme_env)
    siblings = [b for b in BLOCKS if b.scenario == block.scenario and "norun" not in b.options]
    for earlier in siblings[scenario.done : siblings.index(block) + 1]:
        scenario.results[earlier.line] = run_block(earlier, scenario)
        scenario.done += 1
    actual = scenario.results[block.line]
    assert len(actual) == len(block.commands), f"the block's shell stopped early: {actual}"
    failures, body = [], []
    for cmd, out in zip(block.commands, actual, strict=True):
        norm_e = [normalise(x, scenario.workdir) for x in cmd.expected]
        norm_a = [normalise(x, scenario.workdir) for x in out]
        body += cmd.lines
        if matches(norm_e, norm_a):
            body += cmd.expected + cmd.trailer
            continue
        body += merged(cmd.expected, out, norm_e, norm_a) + cmd.trailer
        diff = difflib.unified_diff(norm_e, norm_a, "README", "actual", lineterm="")
        failures.append(f"$ {cmd.text}\n" + "\n".join(diff))
    if failures and UPDATE:
        UPDATES[block.line] = body
    elif failures:
        pytest.fail(
            f"README.md:{block.line}: output differs\n\n" + "\n\n".join(failures), pytrace=False
        )


def test_elision_and_update_keep_what_matched(tmp_path: Path) -> None:
    expected = [
        "  + create a",
        "...(fields)...",
        "id: 0b4f0a3e-0000-4000-8000-000000000000",
        "Plan: 1",
    ]
    actual = ["  + create a", "x", "y", "id: 5d2c1b7a-1111-4111-8111-111111111111", "Plan: 2"]
    norm_e = [normalise(x, tmp_path) for x in expected]
    norm_a = [normalise(x, tmp_path) for x in actual]
    assert matches(norm_e[:3], norm_a[:4]) and not matches(norm_e, norm_a)
    assert not matches(norm_e[:1], norm_a[:2])  # without an elision every line counts
    # README's example id and the elision stay; only the line that differs is rewritten.
    assert merged(expected, actual, norm_e, norm_a) == [*expected[:3], "Plan: 2"]
