"""README covers the program: every subcommand and option, and every module in Layout."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click

from reconciler.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command under the group, depth first, with its path of names."""
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def mentioned(word: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", README) is not None


def test_every_subcommand_is_in_readme() -> None:
    missing = [" ".join(p) for p, _ in commands(cli) if f"reconcile {' '.join(p)}" not in README]
    assert not missing, f"not in README: {missing}"


def test_every_option_is_in_readme() -> None:
    everything = [((), cli), *commands(cli)]
    missing = sorted(
        {
            f"{' '.join(path) or 'reconcile'} {flag}"
            for path, command in everything
            for param in command.params
            if isinstance(param, click.Option)
            for flag in (*param.opts, *param.secondary_opts)
            if not mentioned(flag)
        }
    )
    assert not missing, f"not in README: {missing}"


def layout_paths() -> set[str]:
    """The `reconciler/` tree drawn in README's Layout section: one line per module."""
    section = README.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```\n", 2)[1]
    paths: set[str] = set()
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        name = line.split()[0] if line.strip() else ""
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else ""
        if not (parent or name == "reconciler/"):
            continue  # other parts of the repository
        if name.endswith("/"):
            stack.append((indent, parent + name))
        else:
            paths.add(parent + name)
    return paths


def test_layout_lists_every_module_and_nothing_else() -> None:
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "reconciler").rglob("*.py")}
    drawn = layout_paths()
    assert sorted(modules - drawn) == [], "modules missing from README's Layout"
    assert sorted(drawn - modules) == [], "README's Layout names modules that do not exist"


def test_readme_and_ci_run_the_same_commands() -> None:
    """Development's install and test commands are what .ci/run runs, in the same order."""
    section = README.split("\n## Development\n", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    documented = [cmd for line in block.splitlines() for cmd in line.split(" && ")]
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    skip = ("#", "set ", "cd ")
    ci = [line.strip() for line in script if line.strip() and not line.startswith(skip)]
    assert documented == ci


def test_every_reconcile_call_in_readme_parses() -> None:
    """The shell examples and the commands table's examples are accepted by the CLI itself."""
    from test_integration_files import check_calls

    scripts = re.findall(r"^ *```sh\n(.*?)^ *```$", README, re.S | re.M)
    table = [row.rsplit("|", 2)[1] for row in README.splitlines() if row.startswith("| `reconcile")]
    examples = [span for cell in table for span in re.findall(r"`(reconcile [^`]*)`", cell)]
    calls = check_calls("\n".join([*scripts, *examples]))
    assert len(calls) >= 20  # the extraction found them


def test_layout_names_only_files_that_exist() -> None:
    """The lines of Layout outside reconciler/ (tests, examples, CI) name real paths."""
    section = README.split("\n## Layout\n", 1)[1].split("```\n", 2)[1]
    outside = section.split("\nschemas/", 1)[1]  # after the reconciler/ tree
    names = [
        name.strip()
        for line in ("schemas/" + outside).splitlines()
        if line and not line.startswith(" ")
        for name in re.split(r"\s{2,}", line, maxsplit=1)[0].split(", ")
    ]
    assert len(names) > 10
    assert [n for n in names if "*" not in n and not (ROOT / n).exists()] == []
