"""Sequence log-probabilities: the only place in `dpo_ref` where logits become log-probs.

Every loss in :mod:`dpo_ref.losses` consumes the output of this module, so the two
classic bugs of home-made DPO code live (and are tested) in exactly one place:

* the label shift: the logits at position ``t`` predict the token at ``t + 1``, so the
  first completion token is scored by the logits of the last prompt token;
* the mask: prompt and padding positions carry the label ``-100`` and contribute
  nothing. Masking by label, not by token id, means an EOS token that doubles as the
  pad token is still scored when it ends a completion.
"""

from __future__ import annotations

from typing import Literal

import torch

IGNORE_INDEX = -100
Reduction = Literal["sum", "mean"]


# --8<-- [start:sequence_logps]
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
    safe_labels = labels.masked_fill(~mask, 0).unsqueeze(-1)  # (B, T-1, 1)
    values = torch.gather(logits, -1, safe_labels).squeeze(-1) - torch.logsumexp(logits, -1)  # (B, T-1)
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
        ValueError: on mismatched shapes, an unknown reduction, or a row with no
            completion token (its log-prob would silently be 0 and the loss stuck).
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    values, mask = token_logps(logits, labels)  # (B, T-1) each
    n_tokens = mask.sum(dim=-1)  # (B,)
    if bool((n_tokens == 0).any()):
        rows = torch.nonzero(n_tokens == 0).flatten().tolist()
        raise ValueError(
            f"rows {rows} have no completion token after masking (was the completion "
            "truncated away, or is every label -100?)"
        )
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


# --------------------------------------------------------------------------- shared prompt

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


def shared_prompt_attention_mask(segments: torch.Tensor, *, implementation: str = "sdpa", dtype=torch.float32) -> torch.Tensor:
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
        return torch.zeros(allowed.shape, dtype=dtype, device=segments.device).masked_fill(~allowed, torch.finfo(dtype).min)
    return allowed


# Config fields of models whose forward transforms the LM head's output (softcapping, scaling):
# for those the logits come from the model's own forward.
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier", "logits_scaling")


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
    inputs = {"input_ids": batch["packed_input_ids"], "attention_mask": mask, "position_ids": batch["packed_position_ids"]}
    scored = labels != IGNORE_INDEX  # (B, L)
    rows, cols = torch.nonzero(scored, as_tuple=True)  # (N,) each
    sources = batch["packed_sources"][rows, cols]  # (N,) the position whose logits score each token
    head = _plain_lm_head(model)
    if head is not None:  # project only the N scoring positions, not all B * L
        hidden = model.base_model(**inputs).last_hidden_state  # (B, L, H)
        picked = head(hidden[rows, sources]).float()  # (N, V), float32 as in sequence_logps
    else:
        picked = model(**inputs).logits[rows, sources].float()  # (N, V)
    targets = labels[rows, cols]
    token_logps = picked.gather(-1, targets[:, None]).squeeze(-1) - torch.logsumexp(picked, -1)  # (N,)

    n = segments.shape[0]
    is_rejected = segments[rows, cols] == REJECTED  # (N,)
    slot = rows + n * is_rejected.long()  # chosen rows 0..B-1, rejected rows B..2B-1
    summed = torch.zeros(2 * n, dtype=torch.float32, device=picked.device).index_add(0, slot, token_logps)
    counts = torch.zeros(2 * n, dtype=torch.long, device=picked.device).index_add(0, slot, torch.ones_like(slot))
    if bool((counts == 0).any()):
        empty = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(
            f"rows {[r % n for r in empty]} have no completion token after masking (was the completion "
            "truncated away, or is every label -100?)"
        )
    logps = summed if reduction == "sum" else summed / counts
    return logps[:n], logps[n:]
