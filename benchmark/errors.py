"""The one error type a user can cause.

The CLI turns a `LarbError` into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import errno
from pathlib import Path

USER_ERROR_EXIT_CODE = 2


class LarbError(Exception):
    """An error the user can fix: says which file (and line) and what to do."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None,
                 fix: str | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.fix = fix
        self.detail = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path + (f", line {self.line}" if self.line is not None else "") + ": "
        text = where + self.detail
        if self.fix:
            text += f" Fix: {self.fix}"
        return text


# What an OS error means to the user, by errno: the cause named plainly, and what to do.
_OS_CAUSES: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("the disk is full", "free space on that disk (or choose a folder on another one) and run again."),
    errno.EDQUOT: ("the disk quota is used up", "free space within your quota and run again."),
    errno.EFBIG: ("the file is larger than this process may write (a file-size limit, ulimit -f)",
                  "raise the limit or write to another place, and run again."),
    errno.EROFS: ("the file system is read-only", "choose a writable folder."),
    errno.EACCES: ("permission denied", "choose a folder you may write to, or fix its permissions."),
    errno.EPERM: ("operation not permitted", "choose a folder you may write to, or fix its permissions."),
    errno.EISDIR: ("it is a folder, not a file", "give a file path, not a folder."),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "give a path whose parents are folders."),
    errno.ENOENT: ("no such file or folder", "check the path."),
    errno.EEXIST: ("a file stands where a folder is needed", "give a path whose parents are folders."),
    errno.ENAMETOOLONG: ("the name is too long", "choose a shorter path."),
    errno.EMFILE: ("too many open files", "raise the open-file limit (ulimit -n) and run again."),
}


# The faults of writing: the place written to is to blame, never the file being read.
WRITE_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM})


def os_error(exc: OSError, path: str | Path | None = None, *, doing: str = "") -> LarbError:
    """The `LarbError` for an OS fault: the path, the cause in words, and the fix.

    `doing` says what LARB was doing ("writing the result record"), so a full disk is never
    blamed on the input file that was being read at the time."""
    where = path if path is not None else exc.filename
    prefix = f"{doing} failed: " if doing else ""
    if exc.errno is None:  # raised by a library with a message only
        return LarbError(f"{prefix}{str(exc)[:300]}", path=where, fix="check the path and run again.")
    cause, fix = _OS_CAUSES.get(exc.errno, (exc.strerror or type(exc).__name__, "check the path and run again."))
    return LarbError(f"{prefix}{cause} ({errno.errorcode.get(exc.errno, type(exc).__name__)}).", path=where, fix=fix)
