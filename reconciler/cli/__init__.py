"""The command line: parse, call the library, render, return the exit code. Nothing else.

`app` holds the `reconcile` group; each command has its module; `settings` holds every
default; `delivery` sends the report where it was asked to go.
"""

from __future__ import annotations

from reconciler.cli.app import cli, main

__all__ = ["cli", "main"]
