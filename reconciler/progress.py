"""Progress on stderr for long work, shown only where a person watches.

Auto mode (the default) shows a bar when stderr is a terminal and `CI` is not set, and only
for work of at least `AUTO_THRESHOLD` items; `--progress` forces it (in a log it prints a
line per 10 %), `--no-progress` turns it off. Library code reports progress through
`track()` and `task()`/`advance()` and never knows how, or whether, it is shown. The bar
drawn on a terminal is the CLI's (it passes one to `configure`): the library never imports
click.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TextIO, TypeVar

T = TypeVar("T")
AUTO_THRESHOLD = 50

# Draws a bar on a terminal: (label, total, stream) -> a context giving `update(n)`.
TerminalBar = Callable[[str, int, TextIO], AbstractContextManager[Any]]

_forced: bool | None = None  # set per command by the CLI; None = auto
_terminal: TerminalBar | None = None  # set per command by the CLI; None = log lines
_advance: list[Callable[[int], None]] = []  # the innermost open task's advance, if any


def configure(flag: bool | None, terminal: TerminalBar | None = None) -> None:
    """`flag`: --progress / --no-progress / auto (None); `terminal`: how to draw a bar on a
    terminal (without one, a terminal gets the log lines a log gets)."""
    global _forced, _terminal
    _forced = flag
    _terminal = terminal


def _stream() -> TextIO:
    return sys.stderr


def _show(total: int) -> bool:
    if _forced is not None:
        return _forced and total > 0
    stream = _stream()
    return (
        total >= AUTO_THRESHOLD
        and not os.environ.get("CI")
        and hasattr(stream, "isatty")
        and stream.isatty()
    )


class _LogBar:
    """Progress as log lines (forced outside a terminal): one line per tenth of the work."""

    def __init__(self, label: str, total: int, stream: TextIO) -> None:
        self.label, self.total, self.stream = label, total, stream
        self.done, self.shown = 0, -1

    def update(self, n: int) -> None:
        self.done = min(self.done + n, self.total)
        tenth = self.done * 10 // self.total
        if tenth != self.shown:
            self.shown = tenth
            self.stream.write(f"{self.label}: {self.done}/{self.total} ({tenth * 10}%)\n")
            self.stream.flush()


@contextmanager
def task(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A unit of work of `total` steps; yields `advance(n)`. Completes the bar on success."""
    if not _show(total):
        _advance.append(lambda n: None)
        try:
            yield _advance[-1]
        finally:
            _advance.pop()
        return
    stream = _stream()
    bar: Any
    if stream.isatty() and _terminal is not None:
        with _terminal(label, total, stream) as bar:
            yield from _run(bar, total)
    else:
        bar = _LogBar(label, total, stream)
        yield from _run(bar, total)


def _run(bar: Any, total: int) -> Iterator[Callable[[int], None]]:
    done = 0

    def advance(n: int = 1) -> None:
        nonlocal done
        n = min(n, total - done)
        if n > 0:
            done += n
            bar.update(n)

    _advance.append(advance)
    try:
        yield advance
        advance(total - done)
    finally:
        _advance.pop()


def advance(n: int = 1) -> None:
    """Report `n` steps of the innermost open task (a no-op when there is none)."""
    if _advance:
        _advance[-1](n)


def track(items: Sequence[T] | Iterable[T], label: str) -> Iterator[T]:
    """Iterate over `items`, advancing a bar; in batches, so a bar never slows the loop."""
    seq = items if isinstance(items, Sequence) else list(items)
    step = max(1, len(seq) // 200)
    with task(label, len(seq)) as tick:
        pending = 0
        for item in seq:
            yield item
            pending += 1
            if pending == step:
                tick(pending)
                pending = 0
