"""The report as JUnit XML, so every CI system shows the run as tests: one testcase per source.

A testcase fails for what someone must fix before the registry can converge: an invalid
manifest, a conflict, a blocked source, a refused deletion, a breaking schema change (and,
for `reconcile drift`, drift). A source whose table could not be introspected is an error.
Everything else passes, with what the run would do or did in its system-out.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field

from reconciler.models import Change, Plan
from reconciler.reporters.ci_findings import (
    Located,
    accepted,
    breaking,
    drift_summary,
    schema_findings,
    unreachable,
)
from reconciler.reporters.model import Report, summary_line

# Characters XML 1.0 cannot carry at all, even escaped (lone surrogates cannot even be
# encoded): each becomes U+FFFD. ElementTree escapes the rest (`&<>"`, newlines in
# attributes) and writes no CDATA, so `]]>` is only text.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass
class _Case:
    name: str
    classname: str
    file: str | None = None
    line: int | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)  # (type, message)
    error: tuple[str, str] | None = None
    skipped: str | None = None
    out: list[str] = field(default_factory=list)


def render_junit(report: Report) -> str:
    cases = _cases(report)
    failures = sum(1 for c in cases if c.failures)
    errors = sum(1 for c in cases if c.error)
    skipped = sum(1 for c in cases if c.skipped)
    counts = {
        "tests": str(len(cases)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
        "time": "0",
    }
    root = ET.Element("testsuites", {"name": "reconciler", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": f"reconciler {report.kind}", **counts})
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("kind", report.kind),
        ("registry", report.registry),
        ("sources_dir", report.sources_dir),
    ):
        ET.SubElement(props, "property", name=name, value=_clean(value))
    for case in cases:
        _element(suite, case)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _element(suite: ET.Element, case: _Case) -> None:
    attrs = {"name": _clean(case.name), "classname": _clean(case.classname), "time": "0"}
    if case.file:
        attrs["file"] = _clean(case.file)
        if case.line:
            attrs["line"] = str(case.line)
    el = ET.SubElement(suite, "testcase", attrs)
    if case.failures:
        # One <failure> per testcase: the element most consumers read, with every reason.
        kind, first = case.failures[0]
        message = first if len(case.failures) == 1 else "; ".join(m for _, m in case.failures)
        failure = ET.SubElement(el, "failure", type=kind, message=_clean(message))
        failure.text = _clean("\n".join(f"[{t}] {m}" for t, m in case.failures))
    if case.error:
        kind, message = case.error
        ET.SubElement(el, "error", type=kind, message=_clean(message)).text = _clean(message)
    if case.skipped:
        ET.SubElement(el, "skipped", message=_clean(case.skipped))
    if case.out:
        ET.SubElement(el, "system-out").text = _clean("\n".join(case.out))


def _cases(report: Report) -> list[_Case]:
    classname = f"reconciler.{report.kind}"
    if report.problems:
        by_file: dict[str, list[str]] = defaultdict(list)
        lines: dict[str, int] = {}
        for p in report.problems:
            by_file[p.file].append(f"{p.file}:{p.line}: {p.message}")
            lines.setdefault(p.file, p.line)
        return [
            _Case(
                name=file,
                classname="reconciler.manifests",
                file=file,
                line=lines[file],
                failures=[("invalid-manifest", m) for m in messages],
            )
            for file, messages in by_file.items()
        ]
    if report.plan is None:
        cases = []
        if report.kind == "validate":
            text = f"{report.sources} source(s) in {report.files} file(s): all valid."
            cases.append(_Case(name="manifests", classname=classname, out=[text]))
        return cases + _schema_only_cases(schema_findings(report), classname)
    return _plan_cases(report, report.plan, classname)


def _plan_cases(report: Report, plan: Plan, classname: str) -> list[_Case]:
    by_source: dict[str, list[Located]] = defaultdict(list)
    for located in schema_findings(report):
        by_source[located[0].name].append(located)
    refused = set(report.result.refused) if report.result is not None else None
    cases: list[_Case] = []
    for change in plan.changes:
        case = _Case(change.name, classname, change.file or None, change.line or None)
        if refused is not None and change.name in refused:
            case.out.append(f"not applied (to {change.action})")
        else:
            case.out.append(_describe(change, applied=report.result is not None))
        if change.conflicts and (refused is None or change.name in refused):
            paths = ", ".join(change.conflicts)
            verb = "apply refused it" if refused is not None else "apply will refuse it"
            case.failures.append(("conflict", f"{paths} changed in git and outside git; {verb}"))
        elif change.conflicts:
            case.out.append(f"conflict on {', '.join(change.conflicts)}: git won (forced)")
        if change.drift or change.recreate:
            if report.kind == "drift":
                case.failures.append(("drift", drift_summary(change)))
            else:
                case.out.append("drift: " + drift_summary(change))
        _add_schema(case, by_source.pop(change.name, []))
        cases.append(case)
    for blocked in plan.blocked:
        case = _Case(blocked.name, classname, blocked.file, blocked.line)
        case.failures.append(("blocked", blocked.reason))
        _add_schema(case, by_source.pop(blocked.name, []))
        cases.append(case)
    for orphan in plan.orphans:
        if not any(c.name == orphan.name for c in plan.changes):
            note = "owned record without a manifest; deleted only with --prune"
            cases.append(_Case(orphan.name, classname, skipped=note))
    if plan.guard:
        cases.append(_Case("prune guard", classname, failures=[("refused", plan.guard)]))
    cases.extend(_schema_only_cases([f for fs in by_source.values() for f in fs], classname))
    if not cases:
        cases.append(_Case("plan", classname, out=[summary_line(plan)]))
    return cases


def _schema_only_cases(findings: list[Located], classname: str) -> list[_Case]:
    by_source: dict[str, list[Located]] = defaultdict(list)
    for located in findings:
        by_source[located[0].name].append(located)
    cases = []
    for source, items in by_source.items():
        case = _Case(source or "(schema)", classname)
        _add_schema(case, items)
        cases.append(case)
    return cases


def _add_schema(case: _Case, findings: list[Located]) -> None:
    for source, finding in findings:
        if case.file is None and source.file:
            case.file, case.line = source.file, source.line or None
        if unreachable(finding):
            case.error = ("unreachable", finding.message)
        elif breaking((source, finding)):
            policy = " (schema_policy: fail)" if source.policy == "fail" else ""
            case.failures.append(("breaking-schema-change", finding.message + policy))
        else:
            settled = accepted(source) and finding.severity == "breaking"
            case.out.append(
                f"schema ({finding.severity}{', accepted' if settled else ''}): {finding.message}"
            )


def _describe(change: Change, *, applied: bool) -> str:
    if change.action == "noop":
        return "in sync"
    fields = ", ".join(f.path for f in change.fields)
    done = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted"}
    verb = done.get(change.action, change.action) if applied else f"to {change.action}"
    return f"{verb}" + (f": {fields}" if fields and change.action != "delete" else "")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)
