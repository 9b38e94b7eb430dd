"""Errors a user can fix: bad input, a missing file, a setting out of range.

Raise :class:`UserError` (or a subclass) with one line that names the field, the row
or the file, and what to do. It is a ``ValueError``, so ``except ValueError`` and
``pytest.raises(ValueError)`` keep working. The ``dpo-ref`` command prints such errors
as one line, without a traceback (``--debug`` shows it); so it does for the built-in
exceptions that the package raises with a clear message (``ValueError``,
``FileNotFoundError``, ``KeyError``...), see :data:`dpo_ref.cli.USER_ERRORS`.
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(ValueError):
    """Bad input that the user can fix; the message says which field, row or file, and why."""
