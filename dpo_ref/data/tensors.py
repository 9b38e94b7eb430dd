"""Tokenized rows as tensors: padded batches, and the row layouts each method trains on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from dpo_ref.errors import UserError
from dpo_ref.logps import IGNORE_INDEX

__all__ = ["collate_pairs", "chosen_as_sft", "unpaired_rows"]

Batch = dict[str, torch.Tensor]


# -------------------------------------------------------------------------- batching


def collate_pairs(examples: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-pad tokenized rows into a batch of tensors.

    Paired rows (from :func:`tokenize_pairs`) give ``chosen_input_ids``,
    ``chosen_attention_mask``, ``chosen_labels`` and the same for ``rejected_``, each
    ``(B, T_side)``: the batch :func:`dpo_ref.logps.concatenated_logps` expects. Unpaired
    rows (from :func:`tokenize_unpaired`) give ``input_ids``, ``attention_mask``,
    ``labels``, each ``(B, T)``. Input ids are padded with ``pad_token_id``, attention
    masks with 0, labels with -100. Any other scalar field (``label``, precomputed
    reference log-probs) becomes a ``(B,)`` tensor.
    """
    if not examples:
        raise UserError("collate_pairs got no examples")
    if pad_token_id is None:
        raise UserError("pad_token_id is None; call ensure_pad_token(tokenizer) and pass tokenizer.pad_token_id")
    keys = examples[0].keys()
    if "chosen_input_ids" in keys:
        sides = ("chosen_", "rejected_")
    elif "input_ids" in keys:
        sides = ("",)
    else:
        raise UserError(f"collate_pairs needs tokenized rows (chosen_input_ids or input_ids); got keys {list(keys)}")

    batch: dict[str, torch.Tensor] = {}
    padded = set()
    for side in sides:
        for key, value in (("input_ids", pad_token_id), ("attention_mask", 0), ("labels", IGNORE_INDEX)):
            name = side + key
            batch[name] = _right_pad([example[name] for example in examples], value)  # (B, T_side)
            padded.add(name)
    for key in keys:
        if key not in padded and isinstance(examples[0][key], (bool, int, float, np.number, np.bool_)):
            batch[key] = torch.tensor([example[key] for example in examples])  # (B,)
    return batch


def _right_pad(rows: list, value: int) -> torch.Tensor:
    length = max(len(row) for row in rows)
    out = torch.full((len(rows), length), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
    return out


def chosen_as_sft(pairs: Batch) -> Batch:
    """The chosen side of paired tensors as SFT rows (Preferred-FT's data)."""
    return {
        "input_ids": pairs["chosen_input_ids"],
        "attention_mask": pairs["chosen_attention_mask"],
        "labels": pairs["chosen_labels"],
    }


def unpaired_rows(pairs: Batch, pad_token_id: int = 0, *, shift: int = 1) -> Batch:
    """KTO's unpaired rows from paired tensors: every chosen completion desirable, every rejected one not.

    Rows alternate chosen and rejected (pair-major: ``c0, r0, c1, r1, ...``), so every
    batch holds both kinds. Each row also gets a *mismatched* row for KTO's reference
    point :math:`z_0` (:func:`dpo_ref.losses.kto_kl_estimate`): its own prompt followed by
    a completion written for another prompt, as TRL pairs prompts with shifted
    completions. That completion comes from the first row at least ``shift`` places later
    (cyclically) whose prompt differs: the next row is usually the other half of the same
    pair, or another pair of the same prompt, and its completion would not be mismatched.
    Only when every row has the same prompt is the row ``shift`` places later used.
    Prompts may differ in length; padding is on the right.

    Args:
        pairs: right-padded ``chosen_``/``rejected_`` ``input_ids``, ``attention_mask``
            and ``labels`` (-100 on prompt and padding), as :func:`collate_pairs` makes them.
        pad_token_id: the id that pads the rows.
        shift: how many rows later the search for a mismatched completion starts.

    Returns:
        ``input_ids``, ``attention_mask``, ``labels``, ``desirable`` (bool) and the
        mismatched ``kl_input_ids``, ``kl_attention_mask``, ``kl_labels``, with
        ``2 * len(pairs)`` rows.
    """
    rows = []  # (prompt ids, completion ids, desirable), pair-major, chosen first
    for i in range(len(pairs["chosen_input_ids"])):
        for side, desirable in (("chosen", True), ("rejected", False)):
            mask = pairs[f"{side}_attention_mask"][i].bool()
            ids = pairs[f"{side}_input_ids"][i][mask].tolist()
            labels = pairs[f"{side}_labels"][i][mask].tolist()
            n_prompt = next(k for k, label in enumerate(labels) if label != IGNORE_INDEX)
            rows.append((ids[:n_prompt], ids[n_prompt:], desirable))
    main, mismatched = [], []
    for j, (prompt, completion, desirable) in enumerate(rows):
        other = rows[_other_prompt_row(rows, j, shift)][1]
        main.append({**_sequence(prompt, completion), "desirable": desirable})
        mismatched.append(_sequence(prompt, other))
    out = collate_pairs(main, pad_token_id)
    out.update({f"kl_{key}": value for key, value in collate_pairs(mismatched, pad_token_id).items()})
    return out


def _other_prompt_row(rows: list[tuple], j: int, shift: int) -> int:
    """The first row at least ``shift`` places after row ``j`` (cyclically) whose prompt differs from row ``j``'s."""
    n = len(rows)
    for k in range(j + shift, j + shift + n):
        if rows[k % n][0] != rows[j][0]:
            return k % n
    return (j + shift) % n  # every row has this prompt: nothing better exists


def _sequence(prompt: list[int], completion: list[int]) -> dict[str, list[int]]:
    """One unpadded row: the prompt unscored (-100), the completion scored."""
    return {
        "input_ids": prompt + completion,
        "attention_mask": [1] * (len(prompt) + len(completion)),
        "labels": [IGNORE_INDEX] * len(prompt) + completion,
    }
