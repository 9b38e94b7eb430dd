"""Checks of configuration fields, and of tensor values in debug mode.

Configuration dataclasses run the field checks in ``__post_init__``, so a bad value fails
before any work, with a :class:`~dpo_ref.errors.UserError` naming the class and the field::

    @dataclass
    class TrainConfig:
        steps: int = 100

        def __post_init__(self):
            check_int(self, "steps", minimum=1)

The losses and the log-prob functions check their tensors' shapes on every call, which
costs nothing, but their *values* (NaN, infinity, a row with no completion token) only in
debug mode (:func:`debug_checks_on`): reading a value back from the device is a host
synchronisation, and in training those facts are already checked where they can first
go wrong: the training rows once, when :class:`dpo_ref.batching.TensorBatches` is built,
and the loss and gradient norm once per step, in the trainer.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch

from dpo_ref.errors import NonFiniteError, UserError

__all__ = [
    "check_int",
    "check_number",
    "check_choice",
    "check_sequence",
    "debug_checks_on",
    "check_finite",
    "check_finite_now",
    "check_rows_scored",
    "check_rows_scored_now",
]


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
        v for v in values if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or not ok(v)
    ]
    if bad or (not values and not allow_empty):
        raise UserError(f"{type(config).__name__}.{name} must be a non-empty sequence of {wanted}, got {values!r}")
    _set(config, name, values)


def _set(config, name: str, value) -> None:
    # frozen dataclasses normalise their fields too
    object.__setattr__(config, name, value)


# ---------------------------------------------------------------------------- tensor values


def debug_checks_on() -> bool:
    """Whether :func:`check_finite` and :func:`check_rows_scored` run: in torch's anomaly mode.

    ``torch.autograd.set_detect_anomaly(True)`` (which ``dpo-ref train --debug`` turns on)
    is torch's own switch for hunting NaN, and it already trades speed for diagnosis.
    """
    return torch.is_anomaly_enabled()


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """In debug mode, raise :class:`NonFiniteError` naming ``name`` if ``tensor`` holds NaN or infinity."""
    if debug_checks_on():
        check_finite_now(name, tensor)


def check_finite_now(name: str, tensor: torch.Tensor) -> None:
    """Raise :class:`NonFiniteError` naming ``name`` and the first rows if ``tensor`` holds NaN or infinity."""
    if not tensor.is_floating_point():
        return
    for what, bad in (("NaN", torch.isnan(tensor)), ("inf", torch.isinf(tensor))):
        if bool(bad.any()):
            where = f" (rows {sorted({int(i) for i in torch.nonzero(bad)[:, 0]})[:10]})" if tensor.ndim else ""
            raise NonFiniteError(f"{name} contains {what}{where}")


def check_rows_scored(n_tokens: torch.Tensor, name: str = "labels") -> None:
    """In debug mode, raise if a row of ``name`` has no scored token (its log-prob would silently be 0)."""
    if debug_checks_on():
        check_rows_scored_now(n_tokens, name)


def check_rows_scored_now(n_tokens: torch.Tensor, name: str = "labels") -> None:
    """Raise a :class:`UserError` naming the rows of ``name`` whose ``n_tokens`` is 0."""
    empty = torch.nonzero(n_tokens == 0).flatten().tolist()
    if empty:
        raise UserError(
            f"rows {empty[:10]} have no completion token after masking in {name} (was the completion "
            "truncated away, or is every label -100?)"
        )
