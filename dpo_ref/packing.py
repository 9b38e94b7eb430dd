"""The same chosen and rejected log-probs as :func:`dpo_ref.logps.concatenated_logps`, with each
prompt run once instead of twice: the speed path (the performance page measures it).

A pair becomes one row, ``prompt + chosen + rejected`` (:func:`pack_shared_prompt`), and
a 4D attention mask (:func:`shared_prompt_attention_mask`) hides the chosen tokens from
the rejected ones, so every completion token sees exactly the context it sees in the
plain path; :func:`shared_prompt_logps` runs the model once per packed row. Tests check
it against :func:`~dpo_ref.logps.concatenated_logps` to float rounding.
"""

from __future__ import annotations

import torch

from dpo_ref.logps import IGNORE_INDEX, Reduction, label_logps
from dpo_ref.validation import check_rows_scored

__all__ = [
    "PROMPT",
    "CHOSEN",
    "REJECTED",
    "PADDING",
    "pack_shared_prompt",
    "shared_prompt_attention_mask",
    "shared_prompt_logps",
]

# Segment ids of a packed pair row (see pack_shared_prompt).
PROMPT, CHOSEN, REJECTED, PADDING = 0, 1, 2, 3


def pack_shared_prompt(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Lay each pair out as one row, ``prompt + chosen + rejected``, so the prompt is computed once.

    ``batch`` is what :func:`concatenated_logps` takes (``chosen_``/``rejected_`` ids,
    attention masks and labels, right-padded). Chosen and rejected must share their
    prompt: the same tokens before the first completion label, as
    :func:`dpo_ref.data.tokenize_pairs` makes them. The rejected completion gets the
    position ids it has in its own sequence (continuing the prompt, not the chosen
    completion), and :func:`shared_prompt_attention_mask` hides the chosen tokens from
    it, so every token sees exactly the context it sees in :func:`concatenated_logps`.

    Because the rejected completion does not follow the prompt in the row, the usual
    label shift does not hold for its first token: ``packed_sources[b, t]`` is the
    position whose logits score the token at ``t`` (``t - 1``, except the first
    rejected token, which is scored by the last prompt token).

    Returns:
        ``packed_input_ids``, ``packed_position_ids``, ``packed_segments`` (``PROMPT``,
        ``CHOSEN``, ``REJECTED`` or ``PADDING``), ``packed_sources`` and
        ``packed_labels`` (-100 where nothing is scored), each ``(B, L)`` with
        ``L = max(prompt + chosen + rejected)``; other ``(B,)`` columns pass through.

    Raises:
        ValueError: a row with no prompt token, or whose chosen and rejected prompts differ.
    """
    chosen_ids, rejected_ids = batch["chosen_input_ids"], batch["rejected_input_ids"]
    chosen_labels, rejected_labels = batch["chosen_labels"], batch["rejected_labels"]
    device = chosen_ids.device

    def prompt_length(labels: torch.Tensor) -> torch.Tensor:  # index of the first completion label, (B,)
        scored = labels != IGNORE_INDEX
        none = torch.full_like(scored[:, 0], labels.shape[1], dtype=torch.long)  # a row with no completion
        return torch.where(scored.any(1), scored.long().argmax(1), none)

    prompt = prompt_length(chosen_labels)  # (B,)
    bad = (prompt != prompt_length(rejected_labels)) | (prompt == 0)
    width = min(chosen_ids.shape[1], rejected_ids.shape[1])
    in_prompt = torch.arange(width, device=device)[None, :] < prompt[:, None]  # (B, width)
    bad |= ((chosen_ids[:, :width] != rejected_ids[:, :width]) & in_prompt).any(1)
    bad |= prompt > width
    if bool(bad.any()):
        rows = torch.nonzero(bad).flatten().tolist()
        raise ValueError(
            f"rows {rows} cannot share a prompt: chosen and rejected must start with the same prompt tokens "
            "(labels -100) and the prompt must have at least one token"
        )
    chosen_end = batch["chosen_attention_mask"].sum(1)  # (B,) prompt + chosen
    rejected_len = batch["rejected_attention_mask"].sum(1) - prompt  # (B,) rejected completion only
    total = chosen_end + rejected_len
    length = int(total.max())

    t = torch.arange(length, device=device)[None, :]  # (1, L)
    chosen_end_, prompt_ = chosen_end[:, None], prompt[:, None]
    in_chosen_row = t < chosen_end_  # prompt and chosen completion
    in_rejected = (t >= chosen_end_) & (t < total[:, None])
    from_chosen = t.clamp(max=chosen_ids.shape[1] - 1).expand(len(prompt), -1)  # (B, L)
    from_rejected = (t - chosen_end_ + prompt_).clamp(0, rejected_ids.shape[1] - 1)  # (B, L)

    def take(chosen: torch.Tensor, rejected: torch.Tensor, fill: int) -> torch.Tensor:
        return torch.where(
            in_chosen_row,
            chosen.gather(1, from_chosen),
            torch.where(in_rejected, rejected.gather(1, from_rejected), torch.full_like(from_chosen, fill)),
        )

    segments = torch.full_like(from_chosen, PADDING)
    segments = torch.where(in_rejected, REJECTED, segments)
    segments = torch.where(in_chosen_row, torch.where(t < prompt_, PROMPT, CHOSEN), segments)
    first_rejected = in_rejected & (t == chosen_end_)
    packed = {
        "packed_input_ids": take(chosen_ids, rejected_ids, 0),
        "packed_position_ids": torch.where(in_chosen_row, t, torch.where(in_rejected, from_rejected, 0)),
        "packed_segments": segments,
        "packed_sources": torch.where(first_rejected, prompt_ - 1, (t - 1).clamp(min=0)),
        "packed_labels": take(chosen_labels, rejected_labels, IGNORE_INDEX),
    }
    passthrough = {k: v for k, v in batch.items() if v.ndim == 1}  # e.g. precomputed reference log-probs
    return {**packed, **passthrough}


def shared_prompt_attention_mask(
    segments: torch.Tensor, *, implementation: str = "sdpa", dtype=torch.float32
) -> torch.Tensor:
    """The ``(B, 1, L, L)`` attention mask of packed pair rows.

    Causal, no padding keys, and rejected tokens do not see chosen ones. Boolean (True
    attends) for ``"sdpa"``/``"flex_attention"``-style implementations; for
    ``"eager"`` an additive mask of ``dtype`` (0 or the dtype's minimum).
    """
    length = segments.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=segments.device).tril()  # (L, L)
    query, key = segments[:, :, None], segments[:, None, :]  # (B, L, 1), (B, 1, L)
    allowed = causal & (key != PADDING) & ~((query == REJECTED) & (key == CHOSEN))  # (B, L, L)
    allowed = allowed[:, None]  # (B, 1, L, L)
    if implementation == "eager":
        return torch.zeros(allowed.shape, dtype=dtype, device=segments.device).masked_fill(
            ~allowed, torch.finfo(dtype).min
        )
    return allowed


# Config fields of models whose forward transforms the LM head's output (softcapping, scaling):
# for those the logits come from the model's own forward.
_LOGIT_TRANSFORMS = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
)


def _plain_lm_head(model: torch.nn.Module) -> torch.nn.Module | None:
    """The output projection, if the model's logits are exactly ``head(base_model(...).last_hidden_state)``."""
    config = getattr(model, "config", None)
    get_head = getattr(model, "get_output_embeddings", None)
    base = getattr(model, "base_model", None)
    if config is None or get_head is None or base is None or base is model:
        return None
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    if any(getattr(text_config, name, None) not in (None, 1, 1.0) for name in _LOGIT_TRANSFORMS):
        return None
    head = get_head()
    return head if isinstance(head, torch.nn.Linear) else None


def shared_prompt_logps(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    *,
    reduction: Reduction = "sum",
) -> tuple[torch.Tensor, torch.Tensor]:
    """What :func:`concatenated_logps` returns, with the prompt run once per pair instead of twice.

    One row per pair (:func:`pack_shared_prompt`; pass its output to pack once for the
    whole dataset, or a plain pair batch to pack here), one forward pass with a custom
    4D attention mask and explicit position ids, which Hugging Face causal LMs accept.
    Each completion token attends to the same tokens at the same positions as in
    :func:`concatenated_logps`, so the results agree to float rounding; the work saved
    is the second copy of every prompt and the padding of the shorter completion. For
    a model whose logits are a plain linear head on the backbone's last hidden state
    (GPT-2, Llama, ...), only the positions that score a completion token go through
    the head.

    Models with position-dependent logic beyond ``position_ids`` (ALiBi without
    position ids, recurrent layers) are not supported.

    Returns:
        ``(chosen_logps, rejected_logps)``, each ``(B,)`` float32.
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    if "packed_input_ids" not in batch:
        batch = pack_shared_prompt(batch)
    segments, labels = batch["packed_segments"], batch["packed_labels"]
    config = getattr(model, "config", None)
    implementation = getattr(config, "_attn_implementation", None) or "sdpa"
    dtype = next(model.parameters()).dtype
    mask = shared_prompt_attention_mask(segments, implementation=implementation, dtype=dtype)
    inputs = {
        "input_ids": batch["packed_input_ids"],
        "attention_mask": mask,
        "position_ids": batch["packed_position_ids"],
    }
    scored = labels != IGNORE_INDEX  # (B, L)
    rows, cols = torch.nonzero(scored, as_tuple=True)  # (N,) each
    sources = batch["packed_sources"][rows, cols]  # (N,) the position whose logits score each token
    head = _plain_lm_head(model)
    if head is not None:  # project only the N scoring positions, not all B * L
        hidden = model.base_model(**inputs).last_hidden_state  # (B, L, H)
        picked = head(hidden[rows, sources]).float()  # (N, V), float32 as in sequence_logps
    else:
        picked = model(**inputs).logits[rows, sources].float()  # (N, V)
    token_logps = label_logps(picked, labels[rows, cols])  # (N,)

    n = segments.shape[0]
    is_rejected = segments[rows, cols] == REJECTED  # (N,)
    slot = rows + n * is_rejected.long()  # chosen rows 0..B-1, rejected rows B..2B-1
    summed = torch.zeros(2 * n, dtype=torch.float32, device=picked.device).index_add(0, slot, token_logps)
    counts = torch.zeros(2 * n, dtype=torch.long, device=picked.device).index_add(0, slot, torch.ones_like(slot))
    check_rows_scored(counts[:n], "chosen_labels")
    check_rows_scored(counts[n:], "rejected_labels")
    logps = summed if reduction == "sum" else summed / counts
    return logps[:n], logps[n:]
