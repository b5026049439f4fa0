"""Who is running: recorded in the run log and shown to whoever waits for the lock."""

from __future__ import annotations

import getpass
import os
import socket


def actor() -> str:
    """RECONCILER_ACTOR (e.g. the CI job), else the OS user."""
    explicit = os.environ.get("RECONCILER_ACTOR")
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def holder() -> str:
    """A lock holder's description: who, where, which process."""
    return f"{actor()}@{socket.gethostname()} pid {os.getpid()}"
