"""Every renderer on fixed reports, against golden files; JUnit and annotations parsed.

Regenerate the golden files after an intended change of output with
`UPDATE_GOLDEN=1 pytest tests/test_renderers.py`, and review the diff.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from reports import (
    CANARY,
    CREATE,
    REGISTRY,
    apply_report,
    drift_report,
    invalid_report,
    plan_report,
    real_schema,
    with_schema,
)

from reconciler.cli import delivery
from reconciler.models import Change, FieldChange, Plan
from reconciler.redaction import REDACTOR
from reconciler.reporters import FORMATS, Report
from reconciler.reporters.ci_findings import breaking, schema_findings, unreachable
from reconciler.reporters.comment_limit import GITHUB_COMMENT_LIMIT, fit_comment
from reconciler.reporters.github import annotation

GOLDEN = Path(__file__).parent / "golden"
SUFFIX = {"text": "txt", "json": "json", "markdown": "md", "junit": "xml", "github": "log"}
REPORTS: dict[str, Callable[[], Report]] = {
    "plan": plan_report,
    "apply": apply_report,
    "drift": drift_report,
    "invalid": invalid_report,
}
# `::level props::message`: the workflow command syntax GitHub's runner parses.
ANNOTATION = re.compile(
    r"^::(error|warning|notice)(?: (?:file=[^,:]+,line=\d+,|file=[^,:]+,)?title=[^,:]+)?::\S.*$"
)


@pytest.fixture(autouse=True)
def _canary_is_a_secret() -> None:
    REDACTOR.add(CANARY)  # as if resolved by this process


def rendered(fmt: str, report: Report) -> str:
    """As the CLI prints it (never scrubbed as text: sensitive values are already markers;
    the random `::stop-commands::` token of the GitHub format made constant)."""
    text = delivery.rendered(fmt, report)
    return re.sub(r"(?m)^(::stop-commands::|::)[0-9a-f]{32}(::)?$", r"\1TOKEN\2", text)


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("which", sorted(REPORTS))
def test_golden(fmt: str, which: str) -> None:
    text = rendered(fmt, REPORTS[which]())
    golden(f"{which}.{SUFFIX[fmt]}", text)


@pytest.mark.parametrize("fmt", FORMATS)
def test_golden_with_schema_findings(fmt: str) -> None:
    text = rendered(fmt, with_schema(plan_report(), real_schema()))
    if fmt == "github":  # the log group is the text report, compared on its own
        text = "\n".join(_annotations(text)) + "\n"
    golden(f"plan-schema.{SUFFIX[fmt]}", text)


def test_schema_findings_are_the_sections_own_with_their_source() -> None:
    real = schema_findings(with_schema(plan_report(), real_schema()))
    assert [(s.name, f.kind, breaking((s, f)), unreachable(f)) for s, f in real] == [
        ("orders", "column_dropped", True, False),
        ("orders", "column_added", False, False),
        ("customers", "type_widened", False, False),
        ("payments", "column_dropped", False, False),  # accepted
        ("clicks", "unreachable", False, True),
    ]
    assert schema_findings(plan_report()) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_guess_written_elsewhere_is_never_confirmed(fmt: str) -> None:
    """CANARY is a resolved secret; written into a description or quoted by a validation
    message it is shown as written: a `***` there would confirm the guess (issue 12.3)."""
    plan, invalid = rendered(fmt, plan_report()), rendered(fmt, invalid_report())
    assert "***" not in plan.replace(REGISTRY, "") + invalid.replace(REGISTRY, "")
    assert CANARY in invalid
    if fmt not in ("junit", "markdown"):  # these name drifted fields, not their values
        assert f"pw is {CANARY}" in plan


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_sensitive_changes_are_read_from_the_flag_not_the_text(fmt: str) -> None:
    """A sensitive field is shown by its marker alone, never as old → new; a value that only
    looks like a marker is an ordinary value."""

    def shown(sensitive: bool) -> str:
        field = FieldChange(path="connection.password", old="(sensitive)", new="(sensitive, x)")
        change = Change(
            action="update",
            name="orders",
            source_type="postgres",
            record_id="r1",
            fields=(field.model_copy(update={"sensitive": sensitive}),),
            drift=(field.model_copy(update={"sensitive": sensitive}),),
        )
        plan = Plan(owner="o", prune=False, changes=(change,))
        return rendered(fmt, Report("plan", REGISTRY, "sources.d", plan=plan))

    secret, plain = shown(True), shown(False)
    if fmt == "text":
        assert "~ connection.password: (sensitive, x)\n" in secret
        assert "! drift connection.password: (sensitive, x)\n" in secret
        assert '~ connection.password: "(sensitive)" → "(sensitive, x)"' in plain
    else:
        assert "! connection.password: (sensitive, x)" in secret
        assert '- connection.password: "(sensitive)"' in plain
    assert '"(sensitive)"' not in secret


# -- JUnit ------------------------------------------------------------------------------


def _junit(report: Report) -> ET.Element:
    root = ET.fromstring(rendered("junit", report).encode())
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    cases = suite.findall("testcase")
    for element in (root, suite):  # the counters CI systems read must match the content
        assert element.get("tests") == str(len(cases))
        assert element.get("failures") == str(
            sum(1 for c in cases if c.find("failure") is not None)
        )
        assert element.get("errors") == str(sum(1 for c in cases if c.find("error") is not None))
        assert element.get("skipped") == str(sum(1 for c in cases if c.find("skipped") is not None))
    for case in cases:
        assert case.get("name") and case.get("classname")
        for bad in case.findall("failure") + case.findall("error"):
            assert bad.get("message") and bad.get("type")
    return suite


def _failures(suite: ET.Element) -> dict[str, str]:
    return {
        str(c.get("name")): str(f.get("type"))
        for c in suite.findall("testcase")
        for f in c.findall("failure")
    }


def test_junit_plan_has_one_testcase_per_source_and_fails_what_blocks() -> None:
    suite = _junit(plan_report())
    names = [c.get("name") for c in suite.findall("testcase")]
    assert names == [
        "orders",
        "customers",
        "legacy_events",
        "events",
        "payments",
        "sessions",
        "invoices",
    ]
    assert _failures(suite) == {"payments": "conflict", "invoices": "blocked"}
    orders = suite.find("testcase[@name='orders']")
    assert orders is not None
    assert orders.get("file") == "sources.d/shop/orders.yaml" and orders.get("line") == "2"


def test_junit_invalid_manifests_fail_per_file() -> None:
    suite = _junit(invalid_report())
    assert _failures(suite) == {
        "sources.d/bad.yaml": "invalid-manifest",
        "sources.d/dup.yaml": "invalid-manifest",
    }
    failure = suite.find("testcase[@name='sources.d/bad.yaml']/failure")
    assert failure is not None and failure.text is not None
    assert "sources.d/bad.yaml:4: connection.port" in failure.text
    assert "sources.d/bad.yaml:9: connection.password" in failure.text


def test_junit_apply_fails_only_the_refused_source_and_skips_orphans() -> None:
    suite = _junit(apply_report())
    assert _failures(suite) == {"payments": "conflict"}
    skipped = suite.find("testcase[@name='old_clicks']/skipped")
    assert skipped is not None


def test_junit_drift_run_fails_drifted_sources() -> None:
    assert _failures(_junit(drift_report())) == {"events": "drift", "sessions": "drift"}


def test_junit_breaking_schema_change_fails_and_unreachable_errors() -> None:
    suite = _junit(with_schema(plan_report(), real_schema()))
    failures = _failures(suite)
    assert failures["orders"] == "breaking-schema-change"
    assert "customers" not in failures  # a warning is not a failure
    assert "payments" in failures and failures["payments"] == "conflict"  # accepted: no schema
    clicks = suite.find("testcase[@name='clicks']")
    assert clicks is not None and clicks.find("error") is not None
    assert clicks.get("file") == "sources.d/clicks.yaml"


def test_junit_survives_control_characters() -> None:
    change = CREATE.model_copy(update={"name": "bad\x07name"})
    report = Report(
        kind="plan",
        registry="r",
        sources_dir="s",
        plan=Plan(owner="o", prune=False, changes=(change,)),
    )
    _junit(report)


# -- GitHub annotations ---------------------------------------------------------------


def _annotations(text: str) -> list[str]:
    """The annotation lines: after the log group (whose text the runner does not parse)."""
    tail = text.split("::endgroup::\n", 1)[-1]
    return [line for line in tail.splitlines() if line.startswith("::")]


def test_github_annotations_have_the_documented_format() -> None:
    for report in (plan_report(), apply_report(), invalid_report(), drift_report()):
        text = rendered("github", report)
        assert text.startswith(f"::group::reconciler {report.kind}\n")
        assert "::endgroup::\n" in text
        for line in _annotations(text):
            assert ANNOTATION.match(line), line


def test_github_invalid_manifest_errors_point_at_file_and_line() -> None:
    lines = _annotations(rendered("github", invalid_report()))
    assert lines[0] == (
        "::error file=sources.d/bad.yaml,line=4,title=invalid manifest::"
        f"connection.port: must be an integer, not '{CANARY}'"
    )
    assert len([ln for ln in lines if ln.startswith("::error")]) == 3


def test_github_breaking_schema_change_is_an_error_at_the_manifest() -> None:
    lines = _annotations(rendered("github", with_schema(plan_report(), real_schema())))
    for line in lines:
        assert ANNOTATION.match(line), line
    assert (
        "::error file=sources.d/shop/orders.yaml,line=2,title=breaking schema change::"
        'orders: column "total" dropped (breaking)'
    ) in lines
    assert any(
        ln.startswith("::warning file=sources.d/clicks.yaml,line=1,title=unreachable::")
        for ln in lines
    )
    assert not any('"fee" dropped' in ln for ln in lines)  # accepted


def test_annotation_escaping() -> None:
    assert annotation("error", "50% done\nnext", file="a,b:c.yaml", line=3, title="t") == (
        "::error file=a%2Cb%3Ac.yaml,line=3,title=t::50%25 done%0Anext"
    )
    assert annotation("notice", "plain") == "::notice::plain"


# -- Markdown size limit --------------------------------------------------------------


def _huge_report(sources: int = 3000) -> Report:
    changes = tuple(
        Change(
            action="create",
            name=f"source_{i:05d}",
            source_type="csv",
            fields=(
                FieldChange(path="connection.file_path", new=f"/data/exports/source_{i}.csv"),
                FieldChange(path="description", new="x" * 40),
            ),
        )
        for i in range(sources)
    )
    plan = Plan(owner="reconciler", prune=False, changes=changes)
    return Report(kind="plan", registry="sqlite:///r.db", sources_dir="sources.d", plan=plan)


def test_markdown_stays_under_githubs_comment_limit_with_a_note() -> None:
    from reconciler.reporters.markdown import render_markdown

    report = _huge_report()
    full = render_markdown(report)
    assert len(full) > GITHUB_COMMENT_LIMIT
    text = rendered("markdown", report)
    assert len(text) <= GITHUB_COMMENT_LIMIT
    assert text.startswith(full[:2000])  # the summary table comes first and survives
    assert "**Truncated**" in text and f"{len(full):,} characters" in text
    body = text.split("> ⚠️ **Truncated**")[0]
    assert sum(1 for ln in body.splitlines() if ln.startswith("```")) % 2 == 0
    assert body.count("<details>") == body.count("</details>")


def test_fit_comment_leaves_small_reports_alone_and_closes_open_blocks() -> None:
    assert fit_comment("short\n", limit=100) == "short\n"
    text = "<details>\n\n```diff\n" + "+ line\n" * 100
    cut = fit_comment(text, limit=600)
    assert len(cut) <= 600
    assert cut.count("```") == 2 and cut.count("</details>") == 1
