"""Files safely: the one place that replaces an output file or creates a private one, and
the one reader of input files that must be regular (manifests).

An output path may be named by a workflow someone else edits; replacing it must not follow a
symlink into another file, block on a FIFO or write to a device, and readers must see the
old content or the new, never half. Files that can hold secrets are created 0600 whatever
the umask.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from reconciler.errors import ReconcilerError

PRIVATE = 0o600
PUBLIC = 0o644


class UnsafePath(ReconcilerError):
    """An output path that is not a regular file (a symlink, FIFO, device, directory)."""


def check_target(path: Path) -> None:
    """Refuse a path that exists and is not a regular file; never follow a symlink."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UnsafePath(f"cannot write {path}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePath(f"refusing to write {path}: it is a symlink")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafePath(f"refusing to write {path}: it is not a regular file")


def write_atomic(path: Path, data: str | bytes, mode: int = PUBLIC) -> None:
    """Replace `path` with `data` atomically, only if it is a regular file or absent."""
    tmp = write_aside(path, data, mode)
    try:
        move_into_place(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_aside(path: Path, data: str | bytes, mode: int = PUBLIC) -> Path:
    """Write `data` to a new hidden file beside `path`, for `move_into_place` once every
    other step succeeded (files staged before a registry commit); the caller removes it
    if it never moves."""
    check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def move_into_place(tmp: Path, path: Path) -> None:
    """Replace `path` with the staged `tmp` in one step, only if it is a regular file or
    absent (checked again just before the move: nothing may have appeared meanwhile)."""
    check_target(path)
    os.replace(tmp, path)


def create_private(path: Path) -> None:
    """Create `path` empty with mode 0600 if it does not exist (umask-independent)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE)
    except FileExistsError:
        return
    os.close(fd)


def read_regular(path: str | Path, limit: int | None = None) -> tuple[bytes, os.stat_result]:
    """A regular file's bytes and its status when opened. Opened without blocking and checked
    before reading, so a FIFO or device swapped in after discovery is an error, never a hang.
    ValueError: not a regular file, or more than `limit` bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise ValueError("not a regular file")
        if limit is not None and found.st_size > limit:
            raise ValueError(f"larger than {limit} bytes")
        data = os.read(fd, found.st_size + 1)  # one read for a file that did not grow
        while len(data) > found.st_size and (limit is None or len(data) <= limit):
            more = os.read(fd, 65_536)
            if not more:
                break
            data += more
    finally:
        os.close(fd)
    if limit is not None and len(data) > limit:
        raise ValueError(f"larger than {limit} bytes")
    return data, found


def universal_newlines(data: bytes) -> str:
    """UTF-8 text as `Path.read_text` gives it (\\r\\n and \\r read as \\n)."""
    text = data.decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
