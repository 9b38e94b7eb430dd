"""Tokenization of preference data into the inputs of :mod:`dpo_ref.logps` (rules: :mod:`dpo_ref.data`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import datasets
from transformers import PreTrainedTokenizerBase

from dpo_ref.data.checks import CHUNK, is_conversational, is_paired, validate_preference_dataset
from dpo_ref.errors import UserError
from dpo_ref.logps import IGNORE_INDEX

__all__ = ["TokenizationReport", "ensure_pad_token", "tokenize_pairs", "tokenize_unpaired"]

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
            raise UserError(
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
        raise UserError(
            f"tokenize_pairs needs prompt/chosen/rejected columns; got {dataset.column_names} "
            "(use tokenize_unpaired for prompt/completion/label data)"
        )
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
        raise UserError(
            f"tokenize_unpaired needs prompt/completion/label columns; got {dataset.column_names} "
            "(use tokenize_pairs, or unpair_preference_dataset first)"
        )
    return _tokenize(dataset, tokenizer, ("completion",), max_length, max_prompt_length, chat_template)


def _tokenize(
    dataset: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    fields: tuple[str, ...],
    max_length: int,
    max_prompt_length: int | None,
    chat_template: str,
) -> tuple[datasets.Dataset, TokenizationReport]:
    _check_lengths(max_length, max_prompt_length)
    validate_preference_dataset(dataset)
    ensure_pad_token(tokenizer)
    conversational = is_conversational(dataset)
    template = _chat_template(tokenizer, chat_template, conversational)
    eos_id = tokenizer.eos_token_id
    if eos_id is None and not conversational:
        raise UserError("the tokenizer has no EOS token; set tokenizer.eos_token so that completions can end")
    prompt_limit = max_length if max_prompt_length is None else min(max_prompt_length, max_length)

    columns = ["prompt", *fields] + ([] if len(fields) == 2 else ["label"])
    sides = [f"{field}_" for field in fields] if len(fields) == 2 else [""]
    out: dict[str, list] = {side + key: [] for side in sides for key in ("input_ids", "attention_mask", "labels")}
    if len(fields) == 1:
        out["label"] = []
    n_long = n_empty = n_truncated = n_mismatch = 0
    dropped: list[int] = []

    start = 0
    for chunk in dataset.select_columns(columns).iter(batch_size=CHUNK):
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
                    raise UserError(f"row {row}, field {field!r}: the completion tokenizes to no tokens")
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
        raise UserError(
            f"no row left after tokenization: all {report.n_examples} prompts fill max_length={max_length} "
            f"(max_prompt_length={max_prompt_length}); raise max_length or shorten the prompts"
        )
    _warn(report, max_length, prompt_limit)
    return datasets.Dataset.from_dict(out), report


def _check_lengths(max_length: int, max_prompt_length: int | None) -> None:
    if not isinstance(max_length, int) or max_length < 2:
        raise UserError(f"max_length must be an integer >= 2, got {max_length!r}")
    if max_prompt_length is not None and (not isinstance(max_prompt_length, int) or max_prompt_length < 1):
        raise UserError(f"max_prompt_length must be a positive integer or None, got {max_prompt_length!r}")


def _chat_template(tokenizer: PreTrainedTokenizerBase, chat_template: str, conversational: bool) -> str | None:
    if not conversational:
        if chat_template != "auto":
            raise UserError("chat_template applies to conversational data; this dataset holds plain strings")
        return None
    template = tokenizer.chat_template if chat_template == "auto" else chat_template
    if not template:
        raise UserError(
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
