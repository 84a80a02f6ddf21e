"""The one error type a user can cause.

The CLI turns a `LarbError` into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

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
