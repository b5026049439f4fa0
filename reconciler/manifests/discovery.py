"""Which files of a sources directory are manifests: a sorted, recursive walk that skips
hidden entries, takes `.yaml`/`.yml` in any case, and refuses links out of the directory."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import ReconcilerError

SUFFIXES = (".yaml", ".yml")


def find_manifest_files(sources_dir: Path) -> list[Path]:
    """Every manifest file under the directory, recursively, in sorted order (see `_walk`)."""
    check_directory(sources_dir)
    return [sources_dir / relative for relative, _ in manifest_files(sources_dir)]


def check_directory(sources_dir: Path) -> None:
    if not sources_dir.exists():
        raise ReconcilerError(f"sources directory '{sources_dir}' does not exist")
    if not sources_dir.is_dir():
        raise ReconcilerError(f"sources directory '{sources_dir}' is not a directory")


def manifest_files(sources_dir: Path) -> list[tuple[str, str]]:
    """find_manifest_files as (path relative to the directory, path to open), no Path objects.

    Anything that cannot be read, or that is not what it seems, is an error naming its path,
    never a skip: a skipped manifest would look deleted to `--prune`.
    """
    found: list[tuple[str, str]] = []
    refused: list[str] = []
    display = (sources_dir / "_").as_posix()[:-1]  # what Path.as_posix() puts before a child
    root = os.path.realpath(sources_dir)
    _walk(str(sources_dir), "", found, _Discovery(root, display, refused))
    if refused:
        raise ReconcilerError("; ".join(sorted(refused)) + "; nothing was read")
    found.sort()
    return found


@dataclass(frozen=True)
class _Discovery:
    """Where discovery is confined to (the sources directory, resolved) and what it refused."""

    root: str
    display: str
    refused: list[str]

    def refuse(self, relative: str, why: str) -> None:
        self.refused.append(f"{self.display}{relative}: {why}")

    def inside(self, target: str) -> bool:
        return target == self.root or target.startswith(self.root.rstrip(os.sep) + os.sep)


def _walk(directory: str, prefix: str, found: list[tuple[str, str]], where: _Discovery) -> None:
    """Every *.yaml / *.yml file (any case) in sorted order, in one scandir per directory.

    Hidden entries (`.archive/`, `.x.yaml`) are skipped. A symlink is followed only to a
    file or directory inside the sources directory; a symlinked directory is not entered
    (what it holds is read where it really is). An unreadable directory, a dangling symlink,
    a symlink loop, a symlink out of the directory, or a manifest name on something that is
    not a regular file is refused.
    """
    try:
        with os.scandir(directory) as listing:
            entries = list(listing)
    except OSError as exc:
        where.refuse(prefix.rstrip("/") or ".", f"cannot read directory: {reason(exc)}")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        relative = prefix + entry.name
        manifest = _suffix(entry.name).lower() in SUFFIXES
        try:
            if entry.is_symlink():
                _follow(entry, relative, manifest, found, where)
            elif entry.is_dir(follow_symlinks=False):
                _walk(entry.path, relative + "/", found, where)
            elif manifest:
                if entry.is_file(follow_symlinks=False):
                    found.append((relative, entry.path))
                else:
                    where.refuse(relative, "not a regular file")
        except OSError as exc:
            where.refuse(relative, f"cannot read: {reason(exc)}")


def _follow(
    entry: os.DirEntry[str],
    relative: str,
    manifest: bool,
    found: list[tuple[str, str]],
    where: _Discovery,
) -> None:
    """A symlink: a manifest if it leads to a regular file inside the sources directory."""
    try:
        target = os.stat(entry.path)
    except FileNotFoundError:
        where.refuse(relative, "dangling symbolic link")
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            where.refuse(relative, "symbolic link loop")
        else:
            where.refuse(relative, f"cannot follow symbolic link: {reason(exc)}")
        return
    if not where.inside(os.path.realpath(entry.path)):
        where.refuse(relative, "symbolic link to a path outside the sources directory")
    elif stat.S_ISDIR(target.st_mode):
        return  # its files are read under their real path, inside the directory
    elif manifest:
        if stat.S_ISREG(target.st_mode):
            found.append((relative, entry.path))
        else:
            where.refuse(relative, "not a regular file")


def _suffix(name: str) -> str:
    """PurePath(name).suffix for a directory entry's name, without building a path."""
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


def reason(exc: Exception) -> str:
    """Why a file or directory could not be read, in a few words."""
    if isinstance(exc, UnicodeDecodeError):
        return "not valid UTF-8"
    return getattr(exc, "strerror", None) or str(exc)
