"""The package's one sampler: completions of left-padded prompts, drawn with the model's KV cache.

PPO's rollouts and the sentiment world's evaluations both sample through :func:`sample`,
under one set of rules:

- **Draws on the CPU.** Tokens are drawn from ``softmax(logits / temperature)`` moved to
  the CPU, with a CPU ``torch.Generator`` the caller seeds, so a seed gives the same
  completions on CPU and GPU and the global RNG is never touched. Temperature 0 is greedy
  decoding (no draw). No top-k, no top-p: at temperature 1 a completion is a sample of
  pi(y|x) itself, which the KL estimates from samples need.
- **A row ends at its first EOS.** The EOS is kept and attended. Every later position of
  that row holds ``eos_token_id`` as filler with attention mask 0: no later token attends
  to it and nothing scores it. Sampling stops once every row has ended.
- **Each row is sampled as it would be alone.** Left padding is masked out and position
  ids count attended tokens only (:func:`dpo_ref.models.position_ids`), so prompts of
  every length share one batch and one model call per new token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dpo_ref.errors import UserError
from dpo_ref.logps import label_logps
from dpo_ref.models import position_ids

__all__ = ["Completions", "sample"]


@dataclass
class Completions:
    """What :func:`sample` returns; every tensor has one row per prompt row.

    ``input_ids`` and ``attention_mask`` are ``(B, P + n)``: the prompts, then ``n`` sampled
    columns (``n <= max_new_tokens``; fewer when every row ended early). ``logps`` ``(B,)``,
    on the CPU, is each row's summed log pi(y|x) at temperature 1 over its attended sampled
    tokens (EOS included), read from the logits that drew them. ``ended`` ``(B,)`` says
    which rows reached EOS (the others were cut at ``max_new_tokens``).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    logps: torch.Tensor
    ended: torch.Tensor

    def completion_ids(self, prompt_length: int) -> list[list[int]]:
        """Each row's sampled tokens up to and including its EOS, as lists of ids."""
        new_ids, new_mask = self.input_ids[:, prompt_length:], self.attention_mask[:, prompt_length:].bool()
        return [ids[mask].tolist() for ids, mask in zip(new_ids.cpu(), new_mask.cpu())]


@torch.no_grad()
def sample(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    max_new_tokens: int,
    generator: torch.Generator,
    temperature: float = 1.0,
    eos_token_id: int | None = None,
) -> Completions:
    """Sample up to ``max_new_tokens`` tokens after each left-padded prompt row.

    Each step runs the model on the one new token only and reads the earlier keys and
    values from the cache: O(T) work per token instead of O(T^2). The model runs in
    eval mode (no dropout) and is put back in the mode it was in.

    Args:
        model: a causal LM taking ``input_ids``, ``attention_mask``, ``position_ids``,
            ``cache`` and ``use_cache`` (transformers 5 names the KV cache ``cache``).
        input_ids, attention_mask: ``(B, P)`` left-padded prompts, on the model's device.
        max_new_tokens: the most tokens sampled per row (>= 1).
        generator: a CPU ``torch.Generator``; every draw comes from it.
        temperature: >= 0; 0 is greedy decoding.
        eos_token_id: the token that ends a row; None: every row runs to ``max_new_tokens``.
    """
    _check_arguments(max_new_tokens, generator, temperature)
    was_training = model.training
    model.eval()
    try:
        return _sample(model, input_ids, attention_mask, max_new_tokens, generator, temperature, eos_token_id)
    finally:
        model.train(was_training)


def _check_arguments(max_new_tokens: int, generator: torch.Generator, temperature: float) -> None:
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise UserError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature < math.inf:
        raise UserError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
        # a programming error, not the user's: a GPU generator would make a seed's samples depend on the device
        raise ValueError(f"sampling draws from a CPU torch.Generator, got {generator!r}")


def _sample(model, input_ids, attention_mask, max_new_tokens, generator, temperature, eos_token_id) -> Completions:
    device = input_ids.device
    finished = torch.zeros(len(input_ids), dtype=torch.bool, device=device)
    logps = torch.zeros(len(input_ids), device=device)
    positions = position_ids(attention_mask)
    out = model(
        input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True, logits_to_keep=1
    )
    for step in range(max_new_tokens):
        logits = out.logits[:, -1].float()  # (B, V)
        token = _draw(logits, temperature, generator).to(device)  # (B,)
        if eos_token_id is not None:
            token = token.masked_fill(finished, eos_token_id)  # filler after a row's EOS
        logps += label_logps(logits, token).masked_fill(finished, 0.0)
        input_ids = torch.cat([input_ids, token[:, None]], 1)
        attention_mask = torch.cat([attention_mask, (~finished).long()[:, None]], 1)  # the EOS itself is attended
        if eos_token_id is not None:
            finished |= token == eos_token_id
            if bool(finished.all()):  # every later token would be filler
                break
        if step + 1 < max_new_tokens:
            positions = position_ids(attention_mask)[:, -1:]  # (B, 1): the new token's position
            out = model(
                input_ids=token[:, None],
                attention_mask=attention_mask,
                position_ids=positions,
                cache=out.cache,
                use_cache=True,
            )
    return Completions(input_ids, attention_mask, logps.cpu(), finished.cpu())


def _draw(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """One token per row: the argmax at temperature 0, else a draw on the CPU from ``generator``."""
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1).cpu()
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)
