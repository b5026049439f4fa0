"""Click's command classes with our usage-error exit code (1, not click's 2).

2 means "changes pending" to `--detailed-exitcode` users, so a typo in a CI workflow must not
exit 2. Every usage error click raises while parsing or dispatching goes through here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from reconciler.exit_codes import EXIT_USAGE


class UsageError(click.UsageError):
    """A usage error raised by our own commands."""

    exit_code = EXIT_USAGE


class HelpInstead(click.exceptions.NoArgsIsHelpError):
    """A group called without its command (`reconcile registry`): its help, once; exit 1."""

    exit_code = EXIT_USAGE


@contextmanager
def _usage_exit_code() -> Iterator[None]:
    try:
        yield
    except (UsageError, HelpInstead):
        raise
    except click.exceptions.NoArgsIsHelpError as exc:
        assert exc.ctx is not None
        raise HelpInstead(exc.ctx) from None
    except click.UsageError as exc:
        raise UsageError(exc.format_message(), exc.ctx) from None


class Command(click.Command):
    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        with _usage_exit_code():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with _usage_exit_code():
            return super().invoke(ctx)


class Group(Command, click.Group):  # Command's usage exit code, click.Group's dispatch
    command_class = Command
    group_class = type
