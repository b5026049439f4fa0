"""The error hierarchy and the exit codes the CLI maps it to.

One handler in the CLI turns a ReconcilerError into one line on stderr and its exit code;
anything else is a bug and may show a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_BREAKING_SCHEMA = 3


class ReconcilerError(Exception):
    """A failure the user can act on; its message is shown as is (already redacted)."""

    exit_code = EXIT_ERROR


@dataclass(frozen=True)
class Problem:
    """One validation problem, located in a manifest file."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class InvalidManifests(ReconcilerError):
    """Raised with every problem found, so the user fixes them all in one round."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} in manifests; nothing was written"
        )


class RegistryError(ReconcilerError):
    """The registry is unreachable, misconfigured or refused a write."""


class RegistryMissing(RegistryError):
    """A read-only command was pointed at a registry whose tables do not exist."""

    def __init__(self, display_url: str) -> None:
        super().__init__(
            f"registry {display_url} does not exist (check the URL; `reconcile registry init` "
            "or a first apply creates it)"
        )


class LockTimeout(RegistryError):
    """Another run holds the registry's write lock for longer than --lock-timeout."""


class StaleRecordError(RegistryError):
    """A record changed between plan and apply; applying would overwrite someone's change."""


class SecretResolutionError(ReconcilerError):
    """A ${env:...} or ${file:...} reference cannot be resolved at apply time."""


class PlanBlocked(ReconcilerError):
    """The plan cannot be applied as a whole (e.g. a name is taken by an unowned record)."""
