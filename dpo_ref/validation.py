"""Checks that configuration dataclasses run in ``__post_init__``, so a bad value fails
before any work, with a :class:`~dpo_ref.errors.UserError` naming the class and the field.

    @dataclass
    class TrainConfig:
        steps: int = 100

        def __post_init__(self):
            check_int(self, "steps", minimum=1)
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

from dpo_ref.errors import UserError

__all__ = ["check_int", "check_number", "check_choice", "check_sequence"]


def check_int(config, name: str, minimum: int | None = None, *, wanted: str | None = None) -> None:
    """``config.<name>`` is an integer (not a bool) >= ``minimum``; numpy integers become ints."""
    value = getattr(config, name)
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and (minimum is None or value >= minimum):
        _set(config, name, int(value))  # json.dumps (checkpoints, provenance) rejects numpy ints
        return
    wanted = wanted or ("an integer" if minimum is None else f"an integer >= {minimum}")
    raise UserError(f"{type(config).__name__}.{name} must be {wanted}, got {value!r}")


def check_number(config, name: str, wanted: str, ok: Callable[[float], bool] = lambda v: True) -> None:
    """``config.<name>`` is a finite real number (not a bool) for which ``ok`` holds."""
    value = getattr(config, name)
    real = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not (real and ok(value)):
        raise UserError(f"{type(config).__name__}.{name} must be {wanted}, got {value!r}")


def check_choice(config, name: str, choices) -> None:
    """``config.<name>`` is one of ``choices``."""
    value = getattr(config, name)
    if value not in choices:
        names = [repr(c) for c in choices]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        raise UserError(f"{type(config).__name__}.{name} must be {listed}, got {value!r}")


def check_sequence(config, name: str, wanted: str, ok: Callable[[float], bool], *, allow_empty: bool = False) -> None:
    """``config.<name>`` is a sequence of finite numbers, each satisfying ``ok``; stored as a tuple."""
    values = getattr(config, name)
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise UserError(f"{type(config).__name__}.{name} must be a sequence of {wanted}, got {values!r}")
    values = tuple(values)
    bad = [
        v for v in values
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or not ok(v)
    ]  # fmt: skip
    if bad or (not values and not allow_empty):
        raise UserError(f"{type(config).__name__}.{name} must be a non-empty sequence of {wanted}, got {values!r}")
    _set(config, name, values)


def _set(config, name: str, value) -> None:
    # frozen dataclasses normalise their fields too
    object.__setattr__(config, name, value)
