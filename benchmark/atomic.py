"""Atomic writes: a reader sees the old file or the whole new one, never half of it.

Temporary files are hidden siblings named `.NAME.PID.RANDOM.tmp`, so that the next write of
the same file can tell the leftovers of a killed process (its PID no longer runs) from the
work of a live one, and remove them. OS faults (disk full, read-only, a file-size limit)
become one `LarbError` naming the path; the old file is then untouched.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from benchmark.errors import LarbError, os_error


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to a temporary file beside `path`, fsync it, then rename it over `path`."""
    path = Path(path)
    with os_faults(path, doing=f"writing {path.name}"):
        if path.is_dir():
            raise LarbError("the output path is a folder.", path=path, fix="give a file path.")
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        try:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically (newlines kept as given)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def os_faults(path: str | Path, *, doing: str) -> Iterator[None]:
    """Turn an OS fault inside the block into one `LarbError` that names `path` (the output the
    user gave, not a temporary sibling) and the cause."""
    try:
        yield
    except OSError as exc:
        raise os_error(exc, path, doing=doing) from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID runs (on this machine)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def remove_leftovers(path: Path) -> list[Path]:
    """Delete the temporary siblings of `path` that dead processes left; the ones removed."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.[^.]+\.tmp$")
    removed: list[Path] = []
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed
    for sibling in siblings:
        match = pattern.match(sibling.name)
        if match and not pid_alive(int(match.group(1))) and sibling.is_file():
            sibling.unlink(missing_ok=True)
            removed.append(sibling)
    return removed
