"""Batch sources for :class:`dpo_ref.train.Trainer`: shuffled rows, or an order that wastes
less compute on padding.

:class:`TensorBatches` draws batches from a dict of equal-length tensors, reshuffled
every epoch, each cut to its own longest row: what every offline objective trains on.

A batch is padded to its longest row, so a random batch of short and long pairs spends
most of its compute on padding. :func:`length_grouped_order` puts pairs of similar
length in the same batch (and shuffles the batches, so training does not see lengths
in increasing order); :class:`OrderedBatches` serves those batches to
:class:`dpo_ref.train.Trainer`, each cut to its own longest row by :func:`trim_padding`.

The order is a pure function of the lengths, the batch size and the seed, so it can be
handed to another trainer (the benchmarks feed TRL the same order) and a resumed run
sees the same batches.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch

from dpo_ref.errors import UserError
from dpo_ref.logps import IGNORE_INDEX
from dpo_ref.packing import PADDING
from dpo_ref.runtime import seeded_generator
from dpo_ref.validation import check_finite_now, check_rows_scored_now

__all__ = ["TensorBatches", "check_training_rows", "length_grouped_order", "trim_padding", "OrderedBatches"]

Batch = dict[str, torch.Tensor]


class TensorBatches:
    """Batches drawn from a dict of equal-length tensors, reshuffled every epoch.

    The batch of step ``s`` is a pure function of ``(seed, s)``: epoch ``s // n`` uses the
    permutation seeded by ``(seed, epoch)``. The last incomplete batch of an epoch is
    dropped, so every batch has ``batch_size`` rows. Each batch is cut to its own longest
    row (:func:`trim_padding`): data padded to the longest row of the whole set would
    otherwise run every sentiment-world batch at 47 tokens, where its longest row
    averages 39 (measured).

    ``group_by_length=True`` cuts the padding further, as Hugging Face's
    ``group_by_length`` does: each epoch's permutation is cut into windows of
    :data:`GROUP_WINDOW` batches, the rows of a window are sorted by length (their tokens
    over every ``*attention_mask`` column), cut into batches, and the epoch's batches
    are shuffled. Which rows meet in an epoch is still random; only the grouping within a
    window follows length.
    """

    def __init__(self, data: Batch, batch_size: int, seed: int = 0, *, group_by_length: bool = False):
        if not data:
            raise UserError(
                "TensorBatches got an empty dict: data must map column names to tensors, one row per example"
            )
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise UserError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        lengths = {k: len(v) for k, v in data.items()}
        n = next(iter(lengths.values()))
        if any(m != n for m in lengths.values()):
            raise UserError(f"all columns must have the same number of rows, got {lengths}")
        if batch_size > n:
            raise UserError(f"batch_size {batch_size} is larger than the dataset ({n} rows)")
        check_training_rows(data)
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.steps_per_epoch = n // batch_size
        self._epoch, self._order = -1, None
        self._lengths = None
        if group_by_length:
            masks = [v for k, v in data.items() if k.endswith("attention_mask")]
            if not masks:
                raise UserError(f"group_by_length needs *attention_mask columns to measure rows; got {sorted(data)}")
            self._lengths = sum(m.sum(1) for m in masks)  # (n,) tokens per row

    def __call__(self, step: int) -> Batch:
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, self._epoch_order(epoch)
        rows = self._order[i * self.batch_size : (i + 1) * self.batch_size]
        return trim_padding({k: v[rows] for k, v in self.data.items()})

    def _epoch_order(self, epoch: int) -> torch.Tensor:
        n = len(next(iter(self.data.values())))
        order = torch.randperm(n, generator=seeded_generator(self.seed, epoch))
        if self._lengths is None:
            return order
        size, window = self.batch_size, GROUP_WINDOW * self.batch_size
        order = order[: self.steps_per_epoch * size]  # the rows this epoch uses; the rest, as above, dropped
        batches = []
        for start in range(0, len(order), window):
            rows = order[start : start + window]
            rows = rows[torch.sort(self._lengths[rows], descending=True, stable=True).indices]
            batches += list(rows.split(size))
        shuffled = torch.randperm(len(batches), generator=seeded_generator(self.seed, epoch, 1))
        return torch.cat([batches[b] for b in shuffled.tolist()])


# rows of this many batches are sorted together: small enough that which rows meet stays random
GROUP_WINDOW = 8


def check_training_rows(data: Batch) -> None:
    """What the losses would otherwise check on every step, checked once for the whole data.

    Every ``*labels`` column scores at least one token per row (position 0 is never
    scored: nothing predicts it), else that row's log-prob would silently be 0; every
    floating column (precomputed reference log-probs) is finite. Raises a
    :class:`~dpo_ref.errors.UserError` or a :class:`~dpo_ref.errors.NonFiniteError` that
    names the column and the rows.
    """
    for name, column in data.items():
        if name.endswith("labels") and column.ndim == 2:
            check_rows_scored_now((column[:, 1:] != IGNORE_INDEX).sum(1), name)
        elif column.is_floating_point():
            check_finite_now(name, column)


def length_grouped_order(lengths: Sequence[int], batch_size: int, *, seed: int = 0) -> list[int]:
    """Row indices such that each run of ``batch_size`` consecutive rows has similar lengths.

    Rows are sorted by length (ties by index), cut into batches of ``batch_size``, and
    the full batches are put in a random order seeded by ``seed``. An incomplete last
    batch (``len(lengths) % batch_size`` rows, the longest ones) stays at the end, where
    a loader that drops the last incomplete batch drops it.

    Args:
        lengths: one length per row (tokens of prompt + chosen + rejected, say).
        batch_size: rows per batch.
        seed: the order of the batches.

    Returns:
        A permutation of ``range(len(lengths))``.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    lengths = [int(n) for n in lengths]
    by_length = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    n_full = len(by_length) // batch_size
    batches = [by_length[b * batch_size : (b + 1) * batch_size] for b in range(n_full)]
    generator = torch.Generator().manual_seed(seed)
    shuffled = [batches[b] for b in torch.randperm(n_full, generator=generator).tolist()]
    rest = by_length[n_full * batch_size :]
    return [i for batch in shuffled for i in batch] + rest


def _padding_mask(batch: Batch, key: str) -> torch.Tensor | None:
    """(B, T) True on real (non-padding) positions of the column group ``key`` belongs to."""
    if key.startswith("packed_"):
        return batch["packed_segments"] != PADDING if "packed_segments" in batch else None
    for prefix in ("chosen_", "rejected_", "kl_", ""):
        if key.startswith(prefix) and f"{prefix}attention_mask" in batch:
            return batch[f"{prefix}attention_mask"].bool()
    return None


def trim_padding(batch: Batch) -> Batch:
    """Cut every right-padded ``(B, T)`` column to the longest row of its group in this batch.

    Groups are ``chosen_*``, ``rejected_*`` and unprefixed columns (padding read from
    their ``attention_mask``), and ``packed_*`` (read from ``packed_segments``, see
    :func:`dpo_ref.packing.pack_shared_prompt`). Other columns are returned unchanged.
    """
    out = {}
    for key, value in batch.items():
        mask = _padding_mask(batch, key) if value.ndim == 2 else None
        if mask is None:
            out[key] = value
            continue
        real = mask.any(0)  # (T,)
        length = int(real.nonzero().max()) + 1 if bool(real.any()) else 0
        out[key] = value[:, :length]
    return out


class OrderedBatches:
    """``batches(step)`` for :class:`dpo_ref.train.Trainer` that follows a fixed row order.

    Step ``s`` gets rows ``order[k * batch_size : (k + 1) * batch_size]`` with
    ``k = s mod (len(order) // batch_size)``: the order repeats every epoch, and an
    incomplete last batch is never used. Each batch is cut by :func:`trim_padding`.
    """

    def __init__(self, data: Batch, order: Sequence[int], batch_size: int):
        n = len(next(iter(data.values())))
        if any(len(v) != n for v in data.values()):
            raise ValueError("all columns must have the same number of rows")
        if sorted(order) != list(range(n)):
            raise ValueError(f"order must be a permutation of range({n})")
        if not 1 <= batch_size <= n:
            raise ValueError(f"batch_size must be between 1 and the number of rows ({n}), got {batch_size}")
        self.data, self.batch_size = data, batch_size
        self.order = torch.as_tensor(list(order), dtype=torch.long)
        self.steps_per_epoch = n // batch_size

    def __call__(self, step: int) -> Batch:
        k = step % self.steps_per_epoch
        rows = self.order[k * self.batch_size : (k + 1) * self.batch_size]
        return trim_padding({key: value[rows] for key, value in self.data.items()})
