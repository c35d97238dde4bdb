"""Exceptions raised by privsynth.

Every error names what it concerns (file, row, line, column) in one paragraph and, on the
modelling path (fit, DP schema inference), never quotes a cell value or an exact count of the
real data: messages end up in logs and notebooks that others read.
"""

from typing import Optional


class PrivsynthError(Exception):
    """Base class of privsynth's errors. ``exit_code`` is the code the command line exits with
    for the same error (2 usage or input, 3 budget refused)."""

    def __init__(self, message: str, *, exit_code: int = 2, **_: object) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class UsageError(PrivsynthError, ValueError):
    """A bad option or combination of options."""


class SchemaError(PrivsynthError, ValueError):
    """A schema that cannot be read, parsed or used; ``origin`` names it."""

    def __init__(self, message: str, *, origin: Optional[str] = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.origin = origin


class InputError(PrivsynthError, ValueError):
    """Data that cannot be read or does not fit its schema. ``file`` names the file or frame,
    ``row`` (1-based data row), ``line`` (1-based line of a text file) and ``column`` where
    known."""

    def __init__(
        self,
        message: str,
        *,
        file: Optional[str] = None,
        row: Optional[int] = None,
        line: Optional[int] = None,
        column: Optional[str] = None,
        **kw: object,
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.file = file
        self.row = row
        self.line = line
        self.column = column


class FileError(PrivsynthError, OSError):
    """A file that cannot be read or written; ``file`` names it."""

    def __init__(self, message: str, *, file: Optional[str] = None, **kw: object) -> None:
        PrivsynthError.__init__(self, message, **kw)  # type: ignore[arg-type]
        self.file = file
        self.filename = file


class BudgetRefused(PrivsynthError):
    """The ledger's policy refused the privacy budget of a run (or the ledger cannot vouch for
    it). Nothing was read or charged."""


class InternalError(PrivsynthError, RuntimeError):
    """A bug or an unexpected library failure, reported without data values."""


__all__ = [
    "PrivsynthError",
    "UsageError",
    "SchemaError",
    "InputError",
    "FileError",
    "BudgetRefused",
    "InternalError",
]
