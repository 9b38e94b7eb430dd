"""Sequence log-probabilities: the only place in `dpo_ref` where logits become log-probs.

Every loss in :mod:`dpo_ref.losses` consumes the output of this module, so the two
classic bugs of home-made DPO code live (and are tested) in exactly one place:

* the label shift: the logits at position ``t`` predict the token at ``t + 1``, so the
  first completion token is scored by the logits of the last prompt token;
* the mask: prompt and padding positions carry the label ``-100`` and contribute
  nothing. Masking by label, not by token id, means an EOS token that doubles as the
  pad token is still scored when it ends a completion.

A faster path for paired data, which runs each prompt once instead of twice, is in
:mod:`dpo_ref.packing`; it gives the same numbers and shares :func:`label_logps`.
"""

from __future__ import annotations

from typing import Literal

import torch

from dpo_ref.validation import check_rows_scored

__all__ = ["IGNORE_INDEX", "label_logps", "token_logps", "sequence_logps", "concatenated_logps", "concatenate_pairs"]

IGNORE_INDEX = -100
Reduction = Literal["sum", "mean"]


# --8<-- [start:sequence_logps]
def label_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[label]`` for each position: ``(..., V)`` logits, ``(...)`` labels."""
    return torch.gather(logits, -1, labels.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, -1)


def token_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probs of the labelled tokens, and the mask of positions that count.

    Args:
        logits: ``(B, T, V)`` model outputs for the full prompt + completion sequence.
        labels: ``(B, T)`` token ids aligned with the *inputs* (not yet shifted), with
            ``-100`` at prompt and padding positions.

    Returns:
        ``(values, mask)``, each ``(B, T-1)``: position ``t`` scores ``labels[:, t + 1]``
        (the label shift); ``values`` is 0 where ``mask`` is False. PPO and
        unlikelihood need these per-token values; DPO sums them (:func:`sequence_logps`).
    """
    if logits.ndim != 3 or labels.ndim != 2 or logits.shape[:2] != labels.shape:
        raise ValueError(
            f"logits must be (B, T, V) and labels (B, T); got logits {tuple(logits.shape)} "
            f"and labels {tuple(labels.shape)}"
        )
    # Position t predicts token t + 1.
    logits = logits[:, :-1, :]  # (B, T-1, V)
    labels = labels[:, 1:]  # (B, T-1)
    mask = labels != IGNORE_INDEX  # (B, T-1)

    # float32 at least, even for half-precision models: a bf16 log-softmax over a
    # large vocabulary loses several digits, enough to move a DPO margin.
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    values = label_logps(logits, labels.masked_fill(~mask, 0))  # (B, T-1)
    # masked_fill, not `* mask`: a NaN logit at a padding position (a fully masked
    # left-padded row) times 0 is still NaN.
    return values.masked_fill(~mask, 0.0), mask


def sequence_logps(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    reduction: Reduction = "sum",
) -> torch.Tensor:
    """Log-probability of each sequence's completion tokens under ``logits``.

    .. math::

        \\log \\pi(y \\mid x) = \\sum_{t \\in \\text{completion}} \\log \\pi(y_t \\mid x, y_{<t})

    Args:
        logits: ``(B, T, V)`` model outputs for the full prompt + completion sequence.
        labels: ``(B, T)`` token ids aligned with the *inputs* (not yet shifted), with
            ``-100`` at prompt and padding positions.
        reduction: ``"sum"`` (DPO's convention) or ``"mean"``, the average per completion
            token (IPO as TRL computes it, SimPO, ORPO).

    Returns:
        ``(B,)`` log-probs in float32 (float64 if the logits are float64).

    Raises:
        ValueError: on mismatched shapes or an unknown reduction; in debug mode
            (:func:`dpo_ref.validation.debug_checks_on`) also on a row with no completion
            token, whose log-prob would silently be 0 (training checks its rows for that
            once, when its batches are built).
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    values, mask = token_logps(logits, labels)  # (B, T-1) each
    n_tokens = mask.sum(dim=-1)  # (B,)
    check_rows_scored(n_tokens)
    summed = values.sum(dim=-1)  # (B,)
    return summed if reduction == "sum" else summed / n_tokens


# --8<-- [end:sequence_logps]


def concatenated_logps(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    *,
    reduction: Reduction = "sum",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chosen and rejected log-probs from one forward pass over both.

    ``batch`` holds ``chosen_input_ids``, ``chosen_attention_mask``, ``chosen_labels`` and
    the same three for ``rejected_``, each ``(B, T_c)`` / ``(B, T_r)``, right-padded. They
    are padded to a common length, stacked into ``(2B, T)`` and run through ``model`` once,
    which is faster than two passes and keeps dropout and batch statistics identical.

    Returns:
        ``(chosen_logps, rejected_logps)``, each ``(B,)``.
    """
    input_ids, attention_mask, labels = concatenate_pairs(batch)
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # (2B, T, V)
    logps = sequence_logps(logits, labels, reduction=reduction)  # (2B,)
    n = batch["chosen_input_ids"].shape[0]
    return logps[:n], logps[n:]


def concatenate_pairs(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack chosen over rejected, right-padding both to the longer length.

    Returns ``(input_ids, attention_mask, labels)``, each ``(2B, T)``. Padding ids are 0
    (never scored: their label is -100 and their attention mask 0).
    """
    length = max(batch["chosen_input_ids"].shape[1], batch["rejected_input_ids"].shape[1])

    def stacked(key: str, pad_value: int) -> torch.Tensor:
        parts = []
        for side in ("chosen", "rejected"):
            t = batch[f"{side}_{key}"]
            parts.append(torch.nn.functional.pad(t, (0, length - t.shape[1]), value=pad_value))
        return torch.cat(parts, dim=0)

    return stacked("input_ids", 0), stacked("attention_mask", 0), stacked("labels", IGNORE_INDEX)
