"""Validation of preference datasets (one-line errors naming the row and the field), and
the shapes they come in: paired or unpaired, standard or conversational."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
from transformers import PreTrainedTokenizerBase

from dpo_ref.errors import UserError

__all__ = [
    "PAIRED_COLUMNS",
    "UNPAIRED_COLUMNS",
    "is_paired",
    "is_conversational",
    "validate_preference_dataset",
    "unpair_preference_dataset",
    "LengthGap",
    "length_gap",
]

PAIRED_COLUMNS = ("prompt", "chosen", "rejected")
UNPAIRED_COLUMNS = ("prompt", "completion", "label")
PROMPT_ROLES = ("system", "user", "assistant", "tool")
# Rows read (and handed to a tokenizer) at once: batched calls to a fast tokenizer are many
# times quicker than one call per row, and 1000 rows of text stay small in memory.
CHUNK = 1000


# ------------------------------------------------------------------------ validation


def is_paired(dataset: datasets.Dataset) -> bool:
    """True for ``prompt``/``chosen``/``rejected`` data, False for unpaired (KTO) data."""
    return "chosen" in dataset.column_names or "rejected" in dataset.column_names


def is_conversational(dataset: datasets.Dataset) -> bool:
    """True when the texts are lists of ``{"role", "content"}`` messages."""
    for column in ("prompt", "chosen", "completion"):
        if column in dataset.column_names and len(dataset):
            return isinstance(dataset[0][column], list)
    return False


def validate_preference_dataset(dataset: datasets.Dataset) -> None:
    """Check every row; raise a one-line ``ValueError`` at the first bad one.

    Checked: the required columns exist; every text is a non-empty string (standard) or
    a list of well-formed messages (conversational); no text is None or NaN; the prompt
    ends with a non-assistant turn; ``chosen``/``rejected``/``completion`` hold only
    assistant turns; ``chosen != rejected``; ``label`` is a bool; every float column (for
    example precomputed reference log-probs) is finite.
    """
    paired = is_paired(dataset)
    required = PAIRED_COLUMNS if paired else UNPAIRED_COLUMNS
    missing = [column for column in required if column not in dataset.column_names]
    if missing:
        raise UserError(
            f"the dataset is missing column(s) {missing}: it has columns {dataset.column_names}, and preference "
            f"data needs {list(PAIRED_COLUMNS)} (pairs) or {list(UNPAIRED_COLUMNS)} (unpaired, for KTO)"
        )
    if len(dataset) == 0:
        raise UserError("the dataset has no rows")

    conversational = is_conversational(dataset)
    completions = ("chosen", "rejected") if paired else ("completion",)

    def problem_in(value: Any, field: str) -> tuple[str, str] | None:
        if conversational:
            return _message_problem(value, field, is_prompt=field == "prompt")
        return _text_problem(value, field)

    for i, row in _rows(dataset, required):
        problem = problem_in(row["prompt"], "prompt")
        for field in completions:
            problem = problem or problem_in(row[field], field)
        if problem is None and paired and _same_answer(row["chosen"], row["rejected"]):
            problem = ("rejected", "is identical to 'chosen', so the pair expresses no preference")
        if problem is None and not paired:
            problem = _label_problem(row["label"])
        if problem is not None:
            field, what = problem
            raise UserError(f"row {i}, field {field!r}: {what}")

    for column, feature in dataset.features.items():
        if isinstance(feature, datasets.Value) and feature.dtype.startswith("float"):
            values = np.asarray(dataset.with_format("numpy")[column], dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise UserError(f"row {int(bad[0])}, field {column!r}: is {values[bad[0]]:g}".replace("nan", "NaN"))


def _rows(dataset: datasets.Dataset, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, row)`` for every row, reading ``columns`` a chunk at a time."""
    start = 0
    for chunk in dataset.select_columns(list(columns)).iter(batch_size=CHUNK):
        n = len(chunk[columns[0]])
        for j in range(n):
            yield start + j, {column: chunk[column][j] for column in columns}
        start += n


def _missing_problem(value: Any) -> str | None:
    if value is None:
        return "is missing (None)"
    if isinstance(value, float) and math.isnan(value):
        return "is NaN (a missing value in the source file?)"
    return None


def _text_problem(value: Any, field: str) -> tuple[str, str] | None:
    what = _missing_problem(value)
    if what is None and not isinstance(value, str):
        if isinstance(value, list):
            what = (
                "must be a string, got a list of messages (conversational rows must be conversational in every field)"
            )
        else:
            what = f"must be a string, got {type(value).__name__} {value!r:.40}"
    if what is None and not value.strip():
        what = "is empty or whitespace only"
    return None if what is None else (field, what)


def _message_problem(value: Any, field: str, *, is_prompt: bool) -> tuple[str, str] | None:
    what = _missing_problem(value)
    if what is None and not isinstance(value, list):
        kind = type(value).__name__
        what = f"must be a list of {{'role', 'content'}} messages like the rest of the dataset, got {kind}"
    if what is None and not value:
        what = "has no messages" if is_prompt else "has no assistant turn"
    if what is not None:
        return field, what
    for j, message in enumerate(value):
        where = f"{field}[{j}]"
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            return where, f"must be a {{'role', 'content'}} message, got {message!r:.60}"
        role = message["role"]
        if is_prompt and role not in PROMPT_ROLES:
            return f"{where}.role", f"unknown role {role!r}; expected one of {list(PROMPT_ROLES)}"
        if not is_prompt and role != "assistant":
            return f"{where}.role", (
                f"is {role!r}, but {field} holds only the assistant answer (earlier turns belong in the prompt)"
            )
        problem = _text_problem(message["content"], f"{where}.content")
        if problem is not None:
            return problem
    if is_prompt and value[-1]["role"] == "assistant":
        return f"{field}[{len(value) - 1}].role", (
            "the prompt ends with an assistant turn; it should end with the turn the answer replies to"
        )
    return None


def _same_answer(chosen: Any, rejected: Any) -> bool:
    if isinstance(chosen, str):
        return chosen.strip() == rejected.strip()
    return [(m["role"], m["content"].strip()) for m in chosen] == [(m["role"], m["content"].strip()) for m in rejected]


def _label_problem(value: Any) -> tuple[str, str] | None:
    what = _missing_problem(value)
    if what is None and not isinstance(value, (bool, np.bool_)):
        what = f"must be True (desirable) or False (undesirable), got {type(value).__name__} {value!r:.40}"
    return None if what is None else ("label", what)


def unpair_preference_dataset(dataset: datasets.Dataset) -> datasets.Dataset:
    """Turn each pair into two unpaired rows for KTO: ``(prompt, chosen, True)`` then
    ``(prompt, rejected, False)``. Other columns are copied to both rows."""
    validate_preference_dataset(dataset)
    if not is_paired(dataset):
        raise UserError(f"the dataset is already unpaired: it has columns {dataset.column_names}")
    extra = [column for column in dataset.column_names if column not in PAIRED_COLUMNS]
    n = len(dataset)
    halves = [
        dataset.remove_columns(drop).rename_column(keep, "completion").add_column("label", [label] * n)
        for keep, drop, label in (("chosen", "rejected", True), ("rejected", "chosen", False))
    ]
    # Alternating rows keep each pair's two halves next to each other.
    return datasets.interleave_datasets(halves).select_columns([*UNPAIRED_COLUMNS, *extra])


# ---------------------------------------------------------------------- length bias


@dataclass(frozen=True)
class LengthGap:
    """How much longer chosen answers are than rejected ones (DPO learns to exploit it)."""

    unit: str  # "tokens" when a tokenizer was given, else "characters"
    n_pairs: int
    mean_chosen: float
    mean_rejected: float
    mean_gap: float  # mean over pairs of len(chosen) - len(rejected)
    frac_chosen_longer: float  # share of pairs whose chosen answer is strictly longer


def length_gap(dataset: datasets.Dataset, tokenizer: PreTrainedTokenizerBase | None = None) -> LengthGap:
    """Length statistics of chosen against rejected answers of a pair dataset.

    Lengths are in tokens of ``tokenizer`` (no special tokens) or, without one, in
    characters; a conversational answer's length is that of its messages' contents.
    """
    validate_preference_dataset(dataset)
    if not is_paired(dataset):
        raise UserError(f"length_gap needs chosen/rejected columns; got {dataset.column_names}")

    def text(value: Any) -> str:
        return value if isinstance(value, str) else "".join(message["content"] for message in value)

    lengths = {}
    for field in ("chosen", "rejected"):
        texts = [text(value) for value in dataset[field]]
        if tokenizer is None:
            lengths[field] = np.array([len(t) for t in texts], dtype=np.float64)
        else:
            lengths[field] = np.array(
                [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]], dtype=np.float64
            )
    gap = lengths["chosen"] - lengths["rejected"]
    return LengthGap(
        unit="characters" if tokenizer is None else "tokens",
        n_pairs=len(gap),
        mean_chosen=float(lengths["chosen"].mean()),
        mean_rejected=float(lengths["rejected"].mean()),
        mean_gap=float(gap.mean()),
        frac_chosen_longer=float((gap > 0).mean()),
    )
