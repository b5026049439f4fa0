"""What schema introspection may touch: which files it may read, which hosts it may contact.

A plan with `--schema` runs in CI on pull requests, with the manifests of the pull request
and the secrets of the repository. A manifest must therefore not be able to choose what is
read or contacted: a CSV `file_path: /etc/passwd` would put the file's first line (its
"header") into the PR comment, a postgres `host: attacker.example` would receive the
resolved password. So the limits come from the environment, set by whoever runs the job:

- files: inside the working directory (the repository) or a directory listed in
  RECONCILER_DATA_DIRS (os.pathsep-separated), after resolving symlinks;
- hosts: those listed in RECONCILER_ALLOWED_HOSTS (comma-separated `host` or `host:port`,
  shell-style wildcards, `*` for any); unset, loopback only (localhost, 127.0.0.0/8, ::1,
  a Unix socket directory), which keeps `reconcile schema` useful on a laptop.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

DATA_DIRS = "RECONCILER_DATA_DIRS"
ALLOWED_HOSTS = "RECONCILER_ALLOWED_HOSTS"


@dataclass(frozen=True)
class Reach:
    """The directories introspection may read (resolved) and the hosts it may contact."""

    roots: tuple[str, ...]
    hosts: tuple[str, ...] | None  # None: loopback only

    @classmethod
    def from_environment(
        cls, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> Reach:
        env = os.environ if env is None else env
        dirs = [d for d in env.get(DATA_DIRS, "").split(os.pathsep) if d.strip()]
        roots = tuple(os.path.realpath(d) for d in [cwd or os.getcwd(), *dirs])
        listed = env.get(ALLOWED_HOSTS, "").strip()
        hosts = tuple(h.strip().lower() for h in listed.split(",") if h.strip()) or None
        return cls(roots=roots, hosts=hosts)

    def file_refusal(self, path: str) -> str | None:
        """Why `path` may not be read (None: it may), in words that name the rule."""
        real = os.path.realpath(os.path.expanduser(path))
        if any(_within(real, root) for root in self.roots):
            return None
        return (
            f"file_path {path} is outside the repository (the working directory) and "
            f"{DATA_DIRS}; not read"
        )

    def host_refusal(self, host: str, port: int) -> str | None:
        """Why `host:port` may not be contacted (None: it may). libpq's `a,b` lists: all."""
        for one in host.split(","):
            if not self._allows(one.strip(), port):
                rule = ALLOWED_HOSTS
                if self.hosts is None:
                    rule += " unset: loopback only"
                return f"host {one.strip()}:{port} is not allowed ({rule}); not contacted"
        return None

    def _allows(self, host: str, port: int) -> bool:
        if self.hosts is None:
            return _loopback(host)
        name = host.lower().strip("[]")
        return any(
            fnmatchcase(name, pattern) or fnmatchcase(f"{name}:{port}", pattern)
            for pattern in self.hosts
        )


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _loopback(host: str) -> bool:
    if host.startswith("/") or host.lower() == "localhost":
        return True  # a Unix socket directory, or this machine by name
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
