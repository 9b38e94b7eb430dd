"""Preference data: loading, validation, tokenization and batching.

Datasets are plain :class:`datasets.Dataset` objects in TRL's column conventions:

* **standard** pairs: ``prompt``, ``chosen``, ``rejected``, all strings. The texts are
  joined as they are (``prompt + chosen``), so a completion carries its own leading
  space, as in TRL: ``{"prompt": "The sky is", "chosen": " blue.", ...}``;
* **conversational** pairs: the same columns holding lists of ``{"role", "content"}``
  messages. The prompt is every message before the answer (it ends with the user
  turn); ``chosen`` and ``rejected`` hold only the assistant turn(s);
* **unpaired** data for KTO: ``prompt``, ``completion`` and a bool ``label`` (True for a
  desirable completion), standard or conversational. :func:`unpair_preference_dataset`
  turns pairs into it.

Every error about the data is a one-line :class:`ValueError` of the form
``row 3, field 'chosen': <what is wrong>``, where the row is the 0-based index into the
dataset (``dataset[3]``).

Tokenization choices (each one a classic source of silent DPO bugs, see the data page):

* **Boundary.** The prompt is tokenized alone and together with each completion; the
  completion starts where the two token sequences stop agreeing (TRL's rule, from
  ``trl.trainer.dpo_trainer``). Usually that is right after the prompt. When BPE merges
  a token across the boundary (a prompt ending in a space, ``"The sky is " + "blue"``),
  the merged token counts as completion and the prompt loses its last token; such rows
  are counted in ``n_boundary_mismatch`` and a warning is shown. We prefer this to
  tokenizing prompt and completion separately and concatenating, which would train the
  model on a token sequence (``" ", "blue"``) it never produces.
* **EOS.** Standard completions get the EOS id appended (unless they already end with
  it), so the model learns to stop. Conversational completions end however the chat
  template ends an assistant turn; nothing is added, as in TRL.
* **Masks.** Labels copy the input ids and put ``-100`` on prompt positions; the collator
  puts ``-100`` on padding. Masking is by position, never by token id, so an EOS that is
  also the pad token is still scored (:mod:`dpo_ref.logps` reads only the labels).
* **Truncation.** ``prompt + completion`` is cut to ``max_length`` by shortening the
  completion (its EOS goes first). A prompt longer than ``max_prompt_length`` (default
  ``max_length``) is dropped, never cut: cutting it would change the question. A prompt
  that exactly fills ``max_length`` would leave an empty completion, so that row is
  dropped too and counted as ``n_empty_after_truncation``. Both drops are counted in the
  returned :class:`TokenizationReport` and warned about; if nothing is left, it is an
  error.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from dpo_ref.logps import IGNORE_INDEX

PAIRED_COLUMNS = ("prompt", "chosen", "rejected")
UNPAIRED_COLUMNS = ("prompt", "completion", "label")
PROMPT_ROLES = ("system", "user", "assistant", "tool")
# Single-file formats and the `datasets` builder that reads each.
FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
# Rows handed to the tokenizer at once: batched calls to a fast tokenizer are many times
# quicker than one call per row, and 1000 rows of text stay small in memory.
_CHUNK = 1000


# --------------------------------------------------------------------------- loading


def load_preference_dataset(name_or_path: str | os.PathLike, *, split: str = "train") -> datasets.Dataset:
    """Load and validate a preference dataset from a local file or folder, or the hub.

    Args:
        name_or_path: a ``.jsonl``/``.json``/``.parquet`` file (one split, so ``split`` may
            only slice it, e.g. ``"train[:100]"``), a folder written by
            ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``, a folder of data
            files, or a hub dataset name such as ``"trl-lib/ultrafeedback_binarized"``.
        split: the split to return from a folder or a hub dataset.

    Returns:
        The dataset, checked with :func:`validate_preference_dataset`.

    Raises:
        FileNotFoundError: ``name_or_path`` looks like a local path and does not exist.
        ConnectionError: a hub name could not be fetched (offline, no network).
        ValueError: unreadable file, unknown split, or invalid rows.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(
                f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(FILE_BUILDERS)} "
                "or a save_to_disk folder"
            )
        dataset = _read(path, lambda: datasets.load_dataset(builder, data_files={"train": str(path)}, split=split))
    elif path.is_dir():
        if any((path / name).exists() for name in ("dataset_dict.json", "dataset_info.json", "state.json")):
            dataset = _read(path, lambda: datasets.load_from_disk(str(path)))
            if isinstance(dataset, datasets.DatasetDict):
                if split not in dataset:
                    raise ValueError(f"{path} has no split {split!r}; its splits are {list(dataset)}")
                dataset = dataset[split]
        else:
            if not _holds_data_files(path):
                # `datasets` would guess a loader from whatever the folder holds and fail without naming it
                raise ValueError(
                    f"{path} is a folder but neither a save_to_disk folder (dataset_info.json or "
                    f"dataset_dict.json) nor a folder of {'/'.join(FILE_BUILDERS)} files; "
                    "point at a data file or at a folder that holds one"
                )
            dataset = _read(path, lambda: datasets.load_dataset(str(path), split=split))
    elif _looks_like_local_path(text):
        raise FileNotFoundError(f"no such preference data file or folder: {text} (looked for {path.absolute()})")
    else:
        dataset = _load_from_hub(text, split)
    validate_preference_dataset(dataset)
    return dataset


def _holds_data_files(folder: Path) -> bool:
    """Whether ``folder`` holds a .jsonl/.json/.parquet file outside hidden folders (which `datasets` skips)."""
    return any(
        file.suffix.lower() in FILE_BUILDERS
        and not any(part.startswith((".", "__")) for part in file.relative_to(folder).parts)
        and file.is_file()
        for file in folder.rglob("*")
    )


def _looks_like_local_path(text: str) -> bool:
    # A hub id is "name" or "owner/name"; anything else is meant as a local path.
    return (
        text.startswith((".", "/", "~"))
        or Path(text).suffix.lower() in FILE_BUILDERS
        or text.count("/") > 1
        or os.sep != "/" and os.sep in text
    )


def _read(path: Path, read):
    # `datasets` reports a malformed file several frames deep, wrapped in its own error;
    # surface the cause in one line instead.
    try:
        return read()
    except (FileNotFoundError, ConnectionError):
        raise
    except Exception as error:  # noqa: BLE001 - any parse error becomes one clear line
        cause = error.__cause__ or error
        first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise ValueError(f"could not read preference data from {path}: {first_line}") from None


def _load_from_hub(name: str, split: str) -> datasets.Dataset:
    try:
        return datasets.load_dataset(name, split=split)
    except ConnectionError as error:
        raise ConnectionError(
            f"could not fetch {name!r} from the Hugging Face hub ({error}), and there is no local file or "
            f"folder {name!r}. A local path works offline: a .jsonl/.json/.parquet file or a save_to_disk folder."
        ) from None
    except FileNotFoundError as error:  # DatasetNotFoundError is a FileNotFoundError
        raise FileNotFoundError(
            f"{name!r} is neither a local file or folder nor a dataset on the hub ({error})"
        ) from None


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
    assistant turns; ``chosen != rejected``; ``label`` is a bool; no float column (for
    example precomputed reference log-probs) holds NaN.
    """
    paired = is_paired(dataset)
    required = PAIRED_COLUMNS if paired else UNPAIRED_COLUMNS
    missing = [column for column in required if column not in dataset.column_names]
    if missing:
        raise ValueError(
            f"the dataset is missing column(s) {missing}: it has columns {dataset.column_names}, and preference "
            f"data needs {list(PAIRED_COLUMNS)} (pairs) or {list(UNPAIRED_COLUMNS)} (unpaired, for KTO)"
        )
    if len(dataset) == 0:
        raise ValueError("the dataset has no rows")

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
            raise ValueError(f"row {i}, field {field!r}: {what}")

    for column, feature in dataset.features.items():
        if isinstance(feature, datasets.Value) and feature.dtype.startswith("float"):
            values = np.asarray(dataset.with_format("numpy")[column], dtype=np.float64)
            bad = np.flatnonzero(np.isnan(values))
            if bad.size:
                raise ValueError(f"row {int(bad[0])}, field {column!r}: is NaN")


def _rows(dataset: datasets.Dataset, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, row)`` for every row, reading ``columns`` a chunk at a time."""
    start = 0
    for chunk in dataset.select_columns(list(columns)).iter(batch_size=_CHUNK):
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
                "must be a string, got a list of messages "
                "(conversational rows must be conversational in every field)"
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
        raise ValueError(f"the dataset is already unpaired: it has columns {dataset.column_names}")
    extra = [column for column in dataset.column_names if column not in PAIRED_COLUMNS]
    n = len(dataset)
    halves = [
        dataset.remove_columns(drop).rename_column(keep, "completion").add_column("label", [label] * n)
        for keep, drop, label in (("chosen", "rejected", True), ("rejected", "chosen", False))
    ]
    # Alternating rows keep each pair's two halves next to each other.
    return datasets.interleave_datasets(halves).select_columns([*UNPAIRED_COLUMNS, *extra])


# ---------------------------------------------------------------------- tokenization


@dataclass(frozen=True)
class TokenizationReport:
    """What tokenization did to the data; every count is a number of rows (examples)."""

    n_examples: int  # rows in the input dataset
    n_kept: int  # rows in the tokenized dataset
    n_dropped_long_prompt: int  # prompt longer than max_prompt_length (or max_length): dropped
    n_empty_after_truncation: int  # prompt exactly fills max_length, nothing left to score: dropped
    n_truncated: int  # kept rows with at least one completion cut to fit max_length
    n_boundary_mismatch: int  # prompt tokens not a prefix of prompt+completion tokens (see module doc)
    dropped_rows: tuple[int, ...]  # input row indices of the dropped rows, in order


def ensure_pad_token(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Give a tokenizer without a pad token its EOS as pad, as TRL does, and warn.

    Safe for DPO here because padding is masked by label (-100) and attention mask, never
    by token id: an EOS that ends a completion is still scored.
    """
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(
                "the tokenizer has neither a pad token nor an EOS token; set tokenizer.eos_token "
                "(completions end with it) and optionally tokenizer.pad_token"
            )
        tokenizer.pad_token = tokenizer.eos_token
        warnings.warn(
            f"the tokenizer has no pad token; using its EOS token {tokenizer.eos_token!r} "
            f"(id {tokenizer.eos_token_id}) as pad, as TRL does. EOS at the end of a completion is still "
            "scored: padding is masked by label, not by token id.",
            stacklevel=2,
        )
    return tokenizer


def tokenize_pairs(
    dataset: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int,
    max_prompt_length: int | None = None,
    chat_template: str = "auto",
) -> tuple[datasets.Dataset, TokenizationReport]:
    """Tokenize preference pairs into the inputs of :func:`dpo_ref.logps.concatenated_logps`.

    Args:
        dataset: standard or conversational ``prompt``/``chosen``/``rejected`` data.
        tokenizer: any Hugging Face tokenizer; given ``pad = eos`` if it has no pad token.
        max_length: most tokens in ``prompt + completion``; completions are cut to fit.
        max_prompt_length: rows whose prompt has more tokens are dropped (default
            ``max_length``; a smaller value keeps room for the answers).
        chat_template: ``"auto"`` renders conversational data with the tokenizer's own
            chat template; any other string is a Jinja template to use instead. Standard
            (plain text) data is never templated.

    Returns:
        ``(tokenized, report)``. ``tokenized`` has, per row, ``chosen_input_ids``,
        ``chosen_attention_mask``, ``chosen_labels`` (prompt positions ``-100``) and the
        same three for ``rejected_``, unpadded; ``report`` counts drops and cuts.
    """
    if not is_paired(dataset):
        raise ValueError(f"tokenize_pairs needs prompt/chosen/rejected columns; got {dataset.column_names} "
                         "(use tokenize_unpaired for prompt/completion/label data)")
    return _tokenize(dataset, tokenizer, ("chosen", "rejected"), max_length, max_prompt_length, chat_template)


def tokenize_unpaired(
    dataset: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int,
    max_prompt_length: int | None = None,
    chat_template: str = "auto",
) -> tuple[datasets.Dataset, TokenizationReport]:
    """Tokenize unpaired ``prompt``/``completion``/``label`` data (KTO), with the same rules
    as :func:`tokenize_pairs`. Rows get ``input_ids``, ``attention_mask``, ``labels`` and
    the bool ``label``."""
    if is_paired(dataset):
        raise ValueError(f"tokenize_unpaired needs prompt/completion/label columns; got {dataset.column_names} "
                         "(use tokenize_pairs, or unpair_preference_dataset first)")
    return _tokenize(dataset, tokenizer, ("completion",), max_length, max_prompt_length, chat_template)


def _tokenize(
    dataset: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    fields: tuple[str, ...],
    max_length: int,
    max_prompt_length: int | None,
    chat_template: str,
) -> tuple[datasets.Dataset, TokenizationReport]:
    if not isinstance(max_length, int) or max_length < 2:
        raise ValueError(f"max_length must be an integer >= 2, got {max_length!r}")
    if max_prompt_length is not None and (not isinstance(max_prompt_length, int) or max_prompt_length < 1):
        raise ValueError(f"max_prompt_length must be a positive integer or None, got {max_prompt_length!r}")
    validate_preference_dataset(dataset)
    ensure_pad_token(tokenizer)
    conversational = is_conversational(dataset)
    template = _chat_template(tokenizer, chat_template, conversational)
    eos_id = tokenizer.eos_token_id
    if eos_id is None and not conversational:
        raise ValueError("the tokenizer has no EOS token; set tokenizer.eos_token so that completions can end")
    prompt_limit = max_length if max_prompt_length is None else min(max_prompt_length, max_length)

    columns = ["prompt", *fields] + ([] if len(fields) == 2 else ["label"])
    out: dict[str, list] = {}
    sides = [f"{field}_" for field in fields] if len(fields) == 2 else [""]
    for side in sides:
        for key in ("input_ids", "attention_mask", "labels"):
            out[side + key] = []
    if len(fields) == 1:
        out["label"] = []
    n_long = n_empty = n_truncated = n_mismatch = 0
    dropped: list[int] = []

    start = 0
    for chunk in dataset.select_columns(columns).iter(batch_size=_CHUNK):
        prompt_ids = _encode(tokenizer, chunk["prompt"], None, template)
        joint_ids = {field: _encode(tokenizer, chunk["prompt"], chunk[field], template) for field in fields}
        for j, prompt in enumerate(prompt_ids):
            row = start + j
            # The completion starts where prompt and prompt+completion tokens diverge;
            # one boundary for both sides, so chosen and rejected share their prompt.
            prompt_len = min(_common_prefix(prompt, joint_ids[field][j]) for field in fields)
            n_mismatch += prompt_len < len(prompt)
            if prompt_len > prompt_limit:
                n_long += 1
                dropped.append(row)
                continue
            if prompt_len >= max_length:
                n_empty += 1
                dropped.append(row)
                continue
            cut = False
            for field, side in zip(fields, sides):
                ids = joint_ids[field][j]
                completion = ids[prompt_len:]
                if not conversational and (not completion or completion[-1] != eos_id):
                    completion = completion + [eos_id]
                if not completion:
                    raise ValueError(f"row {row}, field {field!r}: the completion tokenizes to no tokens")
                room = max_length - prompt_len
                cut |= len(completion) > room
                completion = completion[:room]
                out[side + "input_ids"].append(ids[:prompt_len] + completion)
                out[side + "attention_mask"].append([1] * (prompt_len + len(completion)))
                out[side + "labels"].append([IGNORE_INDEX] * prompt_len + completion)
            n_truncated += cut
            if len(fields) == 1:
                out["label"].append(bool(chunk["label"][j]))
        start += len(prompt_ids)

    report = TokenizationReport(
        n_examples=len(dataset),
        n_kept=len(dataset) - len(dropped),
        n_dropped_long_prompt=n_long,
        n_empty_after_truncation=n_empty,
        n_truncated=n_truncated,
        n_boundary_mismatch=n_mismatch,
        dropped_rows=tuple(dropped),
    )
    if report.n_kept == 0:
        raise ValueError(
            f"no row left after tokenization: all {report.n_examples} prompts fill max_length={max_length} "
            f"(max_prompt_length={max_prompt_length}); raise max_length or shorten the prompts"
        )
    _warn(report, max_length, prompt_limit)
    return datasets.Dataset.from_dict(out), report


def _chat_template(tokenizer: PreTrainedTokenizerBase, chat_template: str, conversational: bool) -> str | None:
    if not conversational:
        if chat_template != "auto":
            raise ValueError("chat_template applies to conversational data; this dataset holds plain strings")
        return None
    template = tokenizer.chat_template if chat_template == "auto" else chat_template
    if not template:
        raise ValueError(
            "the dataset is conversational but the tokenizer has no chat template; pass chat_template=<jinja "
            "template> or use a tokenizer that has one"
        )
    return template


def _encode(
    tokenizer: PreTrainedTokenizerBase, prompts: list, completions: list | None, template: str | None
) -> list[list[int]]:
    """Token ids of each prompt (``completions=None``) or of each prompt + completion."""
    if template is None:
        texts = prompts if completions is None else [p + c for p, c in zip(prompts, completions)]
        return tokenizer(texts)["input_ids"]
    if completions is None:
        texts = tokenizer.apply_chat_template(
            prompts, chat_template=template, tokenize=False, add_generation_prompt=True
        )
    else:
        conversations = [p + c for p, c in zip(prompts, completions)]
        texts = tokenizer.apply_chat_template(conversations, chat_template=template, tokenize=False)
    # The template writes its own special tokens (BOS and the like).
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


def _common_prefix(ids: list[int], other: list[int]) -> int:
    n = 0
    for a, b in zip(ids, other):
        if a != b:
            break
        n += 1
    return n


def _warn(report: TokenizationReport, max_length: int, prompt_limit: int) -> None:
    parts = []
    if report.n_dropped_long_prompt:
        parts.append(f"dropped {report.n_dropped_long_prompt} row(s) whose prompt is longer than {prompt_limit} tokens")
    if report.n_empty_after_truncation:
        parts.append(
            f"dropped {report.n_empty_after_truncation} row(s) whose completion was truncated to nothing "
            f"(the prompt fills max_length={max_length})"
        )
    if parts:
        shown = ", ".join(map(str, report.dropped_rows[:10])) + (", ..." if len(report.dropped_rows) > 10 else "")
        parts[-1] += f" (rows {shown})"
    if report.n_truncated:
        parts.append(f"truncated the completion(s) of {report.n_truncated} row(s) to fit max_length={max_length}")
    if report.n_boundary_mismatch:
        parts.append(
            f"in {report.n_boundary_mismatch} row(s) a token merges across the prompt/completion boundary and "
            "counts as completion (usually a prompt ending in a space, or a tokenizer that appends a special "
            "token to every text)"
        )
    if parts:
        warnings.warn(f"{report.n_examples} preference rows: " + "; ".join(parts), stacklevel=4)


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
        raise ValueError("collate_pairs got no examples")
    if pad_token_id is None:
        raise ValueError("pad_token_id is None; call ensure_pad_token(tokenizer) and pass tokenizer.pad_token_id")
    keys = examples[0].keys()
    if "chosen_input_ids" in keys:
        sides = ("chosen_", "rejected_")
    elif "input_ids" in keys:
        sides = ("",)
    else:
        raise ValueError(f"collate_pairs needs tokenized rows (chosen_input_ids or input_ids); got keys {list(keys)}")

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
        raise ValueError(f"length_gap needs chosen/rejected columns; got {dataset.column_names}")

    def text(value: Any) -> str:
        return value if isinstance(value, str) else "".join(message["content"] for message in value)

    lengths = {}
    for field in ("chosen", "rejected"):
        texts = [text(value) for value in dataset[field]]
        if tokenizer is None:
            lengths[field] = np.array([len(t) for t in texts], dtype=np.float64)
        else:
            lengths[field] = np.array([len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]],
                                      dtype=np.float64)
    gap = lengths["chosen"] - lengths["rejected"]
    return LengthGap(
        unit="characters" if tokenizer is None else "tokens",
        n_pairs=len(gap),
        mean_chosen=float(lengths["chosen"].mean()),
        mean_rejected=float(lengths["rejected"].mean()),
        mean_gap=float(gap.mean()),
        frac_chosen_longer=float((gap > 0).mean()),
    )
