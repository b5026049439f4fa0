"""Every output sink is escaped for its reader, whatever a manifest or a registry holds.

One list of injection strings goes into every string of every kind of report (names, files,
field paths and values, descriptions, tags, reasons, the prune guard, schema findings,
problems, owners) and through every sink; each output is then read as its reader reads it:
an Actions-runner-like line parser, an XML parser, prometheus_client's text parser, a
Markdown check, a terminal check. The escaping lives in reconciler/reporters/escaping.py.
The end-to-end tests put the same strings into a real registry (a hand-made record, a
drifted value) and into a server's error message.
"""

from __future__ import annotations

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import insert_raw, reconcile, sql_exec
from hostile_http import hostile
from prometheus_client.parser import text_string_to_metric_families
from reports import (
    apply_report,
    drift_report,
    invalid_report,
    plan_report,
    real_schema,
    with_schema,
)

from reconciler.reporters import Report, render
from reconciler.reporters.escaping import label_value
from reconciler.reporters.prometheus import write_metrics

# What a pull request or a registry's other writers could put in a string, by reader.
INJECTIONS = [
    # GitHub workflow commands, new and old form, after a newline or leading whitespace
    "x\n::error file=a,line=1::pwned",
    "\n  ::add-mask::x",
    "x\r\n##[error]pwned",
    "::stop-commands::abc",
    "%0A::warning::pwned,a:b",
    # Markdown and HTML in a PR comment
    "<img src=x onerror=alert(1)>",
    "</code></details><h1>x</h1><details>",
    "@octocat and @org/team",
    "[click](https://evil.example) ![i](https://evil.example/i.png) https://evil.example",
    "www.evil.example user@evil.example",
    "x\n# Heading\n---",
    "a | b | c",
    "`x` ``` ```` <!-- $x$",
    # terminals
    "\x1b[31mred\x1b[0m \x1b]8;;https://evil.example\x07link\x1b]8;;\x07",
    "ok\rOVERWRITTEN\x08\x08\x07",
    "\x9b31m c1 \x85",
    "\u202eevil\u202c \u2066isolate\u2069",
    # XML 1.0
    "\x00\x0b\x0c\x1f nul",
    "]]> <![CDATA[ &amp; \"'",
    "\ufffe\uffff \ud800 lone",
]
# Fields whose value the renderers switch on (a closed set), left as they are.
CLOSED = {"action", "kind", "severity", "status", "against", "policy", "source_type"}


def hostile_copy(obj: Any, bad: str) -> Any:
    """`obj` with `bad` around every open string in it (names stay consistent)."""
    if isinstance(obj, str):
        return bad + obj + bad
    if hasattr(type(obj), "model_fields"):
        fields = type(obj).model_fields
        update = {k: hostile_copy(getattr(obj, k), bad) for k in fields if k not in CLOSED}
        return obj.model_copy(update=update)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        update = {
            f.name: hostile_copy(getattr(obj, f.name), bad)
            for f in dataclasses.fields(obj)
            if f.init and f.name not in CLOSED
        }
        return dataclasses.replace(obj, **update)
    if isinstance(obj, list | tuple):
        return type(obj)(hostile_copy(v, bad) for v in obj)
    if isinstance(obj, dict):
        return {k: hostile_copy(v, bad) for k, v in obj.items()}
    return obj


REPORTS: dict[str, Callable[[], Report]] = {
    "plan": plan_report,
    "apply": apply_report,
    "drift": drift_report,
    "invalid": invalid_report,
    "schema": lambda: with_schema(plan_report(), real_schema()),
}


# -- the readers --------------------------------------------------------------------------
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
ALLOWED_COMMANDS = {"group", "endgroup", "error", "warning", "notice", "stop-commands"}


def runner_commands(log: str) -> list[tuple[str, dict[str, str], str]]:
    """The workflow commands GitHub's runner would run in `log`, as it reads them: each
    line trimmed of leading whitespace; `::name k=v,k=v::data` and `##[name k=v;]data`;
    nothing between `::stop-commands::TOKEN` and `::TOKEN::`."""
    commands = []
    stopped: str | None = None
    for raw in re.split(r"\r\n|\n|\r", log):
        line = raw.lstrip()
        if stopped is not None:
            if line == f"::{stopped}::":
                stopped = None
            continue
        match = re.match(r"^::([^\s:]+)(?: ([^:]*))?::(.*)$", line) or re.match(
            r"^##\[([^\s\]]+)(?: ([^\]]*))?\](.*)$", line
        )
        if not match:
            continue
        name, props, data = match.groups()
        parsed = dict(p.split("=", 1) for p in (props or "").split(",") if "=" in p)
        commands.append((name, parsed, data))
        if name == "stop-commands":
            stopped = data
    return commands


def unescape(text: str) -> str:
    for code, char in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(code, char)
    return text


def check_github(log: str, bad: str) -> None:
    commands = runner_commands(log)
    annotations = log.split("::endgroup::\n", 1)[1].splitlines()
    assert len(commands) == 3 + len(annotations)  # group, stop-commands, endgroup, and these
    for name, props, data in commands:
        assert name in ALLOWED_COMMANDS, (name, data)
        assert set(props) <= {"file", "line", "title"}, props
        assert props.get("line", "1").isdigit()
        assert "pwned" not in name
    token = commands[1][2]
    assert re.fullmatch(r"[0-9a-f]{32}", token) and log.count(token) == 2
    # Inside the stop-commands block too, for any log viewer that parses it regardless.
    group = log.split(f"::stop-commands::{token}\n", 1)[1].split(f"\n::{token}::", 1)[0]
    assert not [ln for ln in group.splitlines() if re.match(r"\s*(::|##\[)", ln)]
    assert not _CONTROL.search(log.replace("\n", "")), "a raw control character in the log"
    # The escaping is faithful: the runner shows the string as it was (controls aside).
    shown = [unescape(data) for name, _, data in commands if name in ("error", "warning")]
    assert shown


HEADINGS = {f"### reconciler {k}" for k in ("plan", "apply", "drift")} | {"#### Schema changes"}
_OUR_TAGS = re.compile(r"</?(details|summary|code)>")


def check_markdown(md: str, bad: str) -> None:
    assert not _CONTROL.search(md.replace("\n", "")), "a raw control character"
    fence = False
    details = 0
    for line in md.splitlines():
        if line.startswith("```"):
            assert line in ("```diff", "```"), line
            fence = not fence
            continue
        if fence:
            assert line[:1] in ("+", "-", "!"), line  # a value never starts a line
            continue
        text = _OUR_TAGS.sub("", line)
        details += line.count("<details>") - line.count("</details>")
        assert "<" not in text and ">" not in text.lstrip("> "), line  # no HTML of theirs
        assert not re.search(r"@[A-Za-z0-9]", text), line  # no mention
        if line.startswith("<details>"):
            continue  # an HTML block: Markdown is not parsed in it
        assert not re.search(r"(?<!\\)[\[\]]", text), line  # no link or image
        assert not re.search(r"(?<!\\)\$", text), line  # no math
        assert not re.search(r"https?(?<!\\)://|(?<!\\)www\.(?=\w)", text), line  # no autolink
        assert len(re.findall(r"(?<!\\)`", text)) % 2 == 0, line  # code spans closed
        if line.startswith("#"):
            assert line in HEADINGS, line
            continue
        if line.startswith("|"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 5, line  # four cells, no more
    assert not fence and details == 0


def check_text(text: str, clean_lines: int) -> None:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)  # the renderer's own colours
    assert not _CONTROL.search(text.replace("\n", ""))
    assert len(text.splitlines()) == clean_lines  # no value started a line of its own


def check_junit(xml: str) -> None:
    root = ET.fromstring(xml.encode("utf-8"))  # expat: well-formed XML 1.0, or it raises
    assert root.tag == "testsuites"


# -- every report, every string, every sink ---------------------------------------------------


@pytest.mark.parametrize("which", sorted(REPORTS))
@pytest.mark.parametrize("bad", INJECTIONS, ids=range(len(INJECTIONS)))
def test_injections_in_every_string_stay_data_in_every_sink(which: str, bad: str) -> None:
    clean = REPORTS[which]()
    report = hostile_copy(clean, bad)
    check_text(render("text", report), len(render("text", clean).splitlines()))
    check_text(render("text", report, color=True), len(render("text", clean).splitlines()))
    check_github(render("github", report), bad)
    check_markdown(render("markdown", report), bad)
    check_junit(render("junit", report))
    dumped = render("json", report)
    assert not _CONTROL.search(dumped.replace("\n", ""))  # safe on a terminal, and
    assert json.loads(dumped)["registry"] == report.registry  # the value, exactly


@pytest.mark.parametrize("bad", INJECTIONS, ids=range(len(INJECTIONS)))
def test_prometheus_labels_stay_well_formed(bad: str, tmp_path: Path) -> None:
    path = tmp_path / "reconciler.prom"
    owner = f"team{bad}"
    write_metrics(path, plan_report(), code=0, kind="plan", owner=owner, started=1.0, finished=2.0)
    families = list(text_string_to_metric_families(path.read_text(encoding="utf-8")))
    samples = [s for f in families for s in f.samples]
    assert samples and {s.labels["owner"] for s in samples} == {label_value(owner)}
    assert not _CONTROL.search(next(iter(samples)).labels["owner"])


def test_colour_is_the_only_escape_sequence_on_a_terminal() -> None:
    report = hostile_copy(plan_report(), INJECTIONS[13])
    text = render("text", report, color=True)
    assert re.sub(r"\x1b\[[0-9;]*m", "", text).count("\x1b") == 0
    assert "\\x1b[31mred\\x1b[0m" in text  # shown, not run


# -- end to end: a registry's own strings, and a server's error ------------------------------


def test_a_registry_record_with_a_hostile_name_and_value(
    registry_url: str, sources: Path, tmp_path: Path
) -> None:
    assert reconcile("apply", registry=registry_url, sources=sources).exit_code == 0
    names = ["hand\x1b]8;;https://evil.example\x07made", "x\n::error::pwned", "<img src=x>@octocat"]
    for name in names:
        insert_raw(registry_url, name)
    hostile_text = "edited\n##[error]pwned \u202eevil `` </details> @octocat"
    sql_exec(
        registry_url,
        "UPDATE sources SET description = ? WHERE name = ?".replace(
            "?", "%s" if not registry_url.startswith("sqlite") else "?"
        ),
        (hostile_text, "orders"),
    )
    outs = {fmt: tmp_path / f"out.{fmt}" for fmt in ("markdown", "junit", "github")}
    args = [f"--output={fmt}={path}" for fmt, path in outs.items()]
    result = reconcile("plan", "-o", "text", *args, registry=registry_url, sources=sources)
    assert result.exit_code in (0, 2), result.stderr
    assert "\\x1b]8;;https://evil.example\\x07made" in result.stdout
    assert "\\n::error::pwned" in result.stdout
    assert not _CONTROL.search(result.stdout.replace("\n", ""))
    check_github(outs["github"].read_text(encoding="utf-8"), "")
    check_markdown(outs["markdown"].read_text(encoding="utf-8"), "")
    check_junit(outs["junit"].read_text(encoding="utf-8"))


def test_a_server_error_message_is_escaped_on_stderr(sources: Path, tmp_path: Path) -> None:
    detail = "denied\x1b[2J\x1b]0;owned\x07\n::error::pwned \u202etxt.exe"
    with hostile(lambda h: h.reply(400, {"detail": detail})) as server:
        result = reconcile(
            "plan",
            "--state",
            f"sqlite:///{tmp_path / 'state.db'}",
            registry=server.url,
            sources=sources,
            RECONCILER_TOKEN="t0ken-Secret",
        )
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert "\\x1b[2J\\x1b]0;owned\\x07" in line and "\\u202etxt.exe" in line
    assert not _CONTROL.search(result.stderr.replace("\n", ""))


@pytest.mark.parametrize("bad", INJECTIONS, ids=range(len(INJECTIONS)))
def test_the_run_log_as_text_shows_registry_strings_escaped(bad: str) -> None:
    from datetime import UTC, datetime

    from reconciler.backends.base import RunEntry
    from reconciler.reporters.history import render_history

    entry = RunEntry(
        id="1", owner=f"o{bad}", actor=f"a{bad}", started_at=datetime.now(UTC), message=bad
    )
    text = render_history([entry], "text", registry="sqlite:///r.db")
    assert not _CONTROL.search(text.replace("\n", ""))
    assert len(text.splitlines()) == 2  # the header and one run
