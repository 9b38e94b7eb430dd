"""The errors a user can fix, and the non-finite numbers a training run can meet.

Raise :class:`UserError` (or a subclass) with one line that names the field, the row
or the file, and what to do. Raise :class:`NonFiniteError` where a tensor that must be
finite holds NaN or infinity, naming the tensor; the trainer catches it by type and
stops with :class:`NonFiniteLossError`, which names the step and the last good
checkpoint. The ``dpo-ref`` command prints all of these as one line without a traceback
(``--debug`` shows it); any other exception is a bug and keeps its traceback.

The subclasses also derive from the built-in exception a caller would expect
(``FileNotFoundError`` for a missing file, ``KeyError`` for an unknown name,
``ConnectionError`` for a hub name asked for offline), so ``except`` clauses written for
those keep working. Every :class:`UserError` is a ``ValueError``.
"""

from __future__ import annotations

__all__ = ["UserError", "MissingFileError", "UnknownNameError", "OfflineError", "NonFiniteError", "NonFiniteLossError"]


class UserError(ValueError):
    """Bad input that the user can fix; the message says which field, row or file, and why."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist, or lacks what it must hold."""

    __str__ = ValueError.__str__  # the message as given (OSError's would add errno fields)


class UnknownNameError(UserError, KeyError):
    """A name (method, figure, experiment group, ...) that is not one of the known ones."""

    __str__ = ValueError.__str__  # the message as it is; KeyError's __str__ would quote it


class OfflineError(UserError, ConnectionError):
    """A Hugging Face hub name was given while the hub cannot be reached."""

    __str__ = ValueError.__str__


class NonFiniteError(FloatingPointError):
    """A tensor that must be finite holds NaN or infinity; the message names the tensor (and its rows)."""


class NonFiniteLossError(NonFiniteError):
    """Training met NaN or infinity; the message names the step and the last good checkpoint."""
