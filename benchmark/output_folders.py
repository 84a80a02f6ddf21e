"""Output folders that LARB writes whole and may later replace, and nothing else.

A folder output (a built dataset, an exported task, a submission, a training run) is written
into a hidden staging sibling `.NAME.partial-PID`, marked with `MARKER`, and published by one
atomic exchange of the two names (Linux `renameat2(RENAME_EXCHANGE)`), so that `NAME` holds
the old output or the new one at every instant; the old one is deleted only afterwards.
Where the exchange is not supported the old folder is first renamed to `.NAME.old-PID`, and
the next run puts it back if the process died before the new one took its place.

`--overwrite` replaces only a folder that holds `MARKER` (one that LARB wrote) and is none of
the folders the command reads from: a user's data folder is never deleted.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import json
import os
import re
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from benchmark.atomic import os_faults, pid_alive
from benchmark.errors import LarbError

MARKER = ".larb-output.json"
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def check_target(target: Path, *, overwrite: bool, reads: Iterable[Path] = (), option: str = "--output") -> None:
    """Refuse, before any work, an output folder that this command may not write or replace.

    `reads` are the folders the command reads (its data folder, its source): the output may be
    none of them, nor inside one, nor hold one."""
    target = target.resolve()
    for folder in reads:
        folder = Path(folder).resolve()
        if target == folder or target.is_relative_to(folder) or folder.is_relative_to(target):
            raise LarbError(f"the {option} folder overlaps a folder this command reads ({folder}).", path=target,
                            fix=f"choose a {option} folder outside it (and not one holding it).")
    recover(target)
    if not (target.exists() or target.is_symlink()):
        return
    if not overwrite:
        raise LarbError(f"the {option} folder already exists.", path=target,
                        fix=f"choose another {option}, delete it yourself, or pass --overwrite.")
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        return  # an empty folder: nothing in it to lose
    if target.is_symlink() or not target.is_dir() or not (target / MARKER).is_file():
        raise LarbError(f"--overwrite replaces only a folder that LARB wrote (one holding {MARKER}); "
                        "this one is not, and is left as it is.", path=target,
                        fix=f"choose another {option}, or move this one away yourself.")


def staging_folder(target: Path, what: str) -> Path:
    """A fresh, marked, hidden folder beside `target` to write the new output into."""
    target = target.resolve()
    with os_faults(target.parent, doing=f"preparing {target.name}"):
        target.parent.mkdir(parents=True, exist_ok=True)
        recover(target)
        staging = target.parent / f".{target.name}.partial-{os.getpid()}"
        remove(staging)
        staging.mkdir()
        try:
            (staging / MARKER).write_text(json.dumps({"written_by": "larb", "what": what}) + "\n", "utf-8")
        except BaseException:
            remove(staging)
            raise
    return staging


def publish(staging: Path, target: Path, *, overwrite: bool) -> Path:
    """Put the finished `staging` folder in the place of `target` (see the module docstring)."""
    target = target.resolve()
    with os_faults(target, doing=f"publishing {target.name}"):
        if not (target.exists() or target.is_symlink()):
            os.rename(staging, target)
            return target
        check_target(target, overwrite=overwrite)
        if _exchange(staging, target):
            remove(staging)  # it holds the old output now
            return target
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.rename(target, old)
        os.rename(staging, target)
        remove(old)
    return target


def recover(target: Path) -> None:
    """Clean up after a process that died while writing `target`: put back an old output it had
    moved aside, and delete its staging folders. Work of live processes is left alone."""
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(partial|old)-(\d+)$")
    try:
        siblings = sorted(target.parent.iterdir())
    except OSError:
        return
    for sibling in siblings:
        match = pattern.match(sibling.name)
        if not match or pid_alive(int(match.group(2))):
            continue
        if match.group(1) == "old" and not (target.exists() or target.is_symlink()):
            os.rename(sibling, target)
        else:
            remove(sibling)


def remove(path: Path) -> None:
    """Delete a folder tree, a file or a link (never what a link points to); nothing if absent."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically; False where the system or file system cannot."""
    rename = _renameat2()
    if rename is None:
        return False
    if rename(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    """libc's renameat2 (glibc 2.28+); the standard library has no atomic exchange of two names."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name, use_errno=True) if name else None
    return getattr(libc, "renameat2", None) if libc is not None else None
