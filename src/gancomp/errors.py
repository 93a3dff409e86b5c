"""Exceptions shown to the user as a one-line message (no traceback)."""

from __future__ import annotations


class GancompError(Exception):
    """An error the user can act on; the CLI prints it as one line and exits with status 1."""

    exit_code: int = 1


class InputError(GancompError):
    """Bad input: missing, unreadable or unsupported file, mismatched sizes, ..."""


class Interrupted(GancompError):
    """The user interrupted a run that saved its state (the CLI exits 130, no "error")."""

    exit_code = 130


class UsageError(GancompError):
    """The call cannot work as given (an output that cannot fit the inputs); exit status 2."""

    exit_code = 2
