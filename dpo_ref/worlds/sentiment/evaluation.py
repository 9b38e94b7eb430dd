"""Evaluation in the sentiment world: expected reward, KL and win rates, estimated from samples.

Every estimate is ``{"mean", "stderr", "n"}``: a Monte Carlo mean with its standard error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerFast

from dpo_ref.errors import UserError
from dpo_ref.worlds.sentiment.world import (
    Prompt,
    Samples,
    completion_logps,
    completion_texts,
    join_text,
    sample_completions,
)

__all__ = ["SampledEstimate", "mean_and_stderr", "evaluate_policy", "win_rates", "judge_samples"]


@dataclass(frozen=True)
class SampledEstimate:
    """A Monte Carlo mean with its standard error (sample std / sqrt(n)) and sample count."""

    mean: float
    stderr: float
    n: int

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "stderr": self.stderr, "n": self.n}


def mean_and_stderr(values: torch.Tensor | Sequence[float]) -> SampledEstimate:
    """Mean and standard error of i.i.d. samples (unbiased variance; stderr 0 for one sample)."""
    x = torch.as_tensor(values, dtype=torch.float64).flatten()
    n = x.numel()
    if n == 0:
        raise UserError("cannot estimate a mean from zero samples")
    stderr = float(x.std(unbiased=True) / math.sqrt(n)) if n > 1 else 0.0
    return SampledEstimate(mean=float(x.mean()), stderr=stderr, n=n)


@torch.no_grad()
def evaluate_policy(
    policy: torch.nn.Module,
    reference: torch.nn.Module,
    prompts: Sequence[Prompt],
    tokenizer: PreTrainedTokenizerFast,
    judge: Callable[[Sequence[str]], list[float]],
    *,
    num_samples: int,
    max_new_tokens: int,
    seed: int,
    scorers: dict[str, Callable[[Sequence[Prompt], Samples], torch.Tensor]] | None = None,
    keep_samples: bool = False,
) -> dict:
    """Expected reward and KL(pi || pi_ref), both estimated from samples of the policy.

    The sequence-level KL is estimated by its definition,

    .. math::

        \\mathrm{KL}(\\pi \\| \\pi_{\\text{ref}}) = \\mathbb E_{x}\\,\\mathbb E_{y \\sim \\pi(\\cdot|x)}
        \\Big[\\log \\frac{\\pi(y|x)}{\\pi_{\\text{ref}}(y|x)}\\Big]
        \\approx \\frac1N \\sum_i \\log \\frac{\\pi(y_i|x_i)}{\\pi_{\\text{ref}}(y_i|x_i)},

    with completions drawn at temperature 1 (samples of pi itself) and both log-probs
    summed over the completion tokens, EOS included. The estimate is unbiased, but single
    terms can be negative; its standard error says how far to trust it. A completion cut
    at ``max_new_tokens`` counts as the event "these first tokens", whose probability is
    the product of the same per-token factors, so the estimate is the exact KL of the
    length-limited sampling process.

    Args:
        scorers: other per-sample scores to estimate on the same samples (a reward
            model, say): ``name -> scorer(prompts, samples) -> (N,)``.
        keep_samples: also return the per-sample values under ``"samples"``.

    Returns:
        ``{"reward": {...}, "kl": {...}, "length": {...}, "truncated_fraction": float,
        "example": str}``, each estimate as ``{"mean", "stderr", "n"}``, plus one estimate
        per scorer, and ``"samples"`` (``reward``, ``log_ratio``, ``length`` and each
        scorer's values, lists) when ``keep_samples``.
    """
    samples = sample_completions(
        policy,
        prompts,
        num_samples=num_samples,
        temperature=1.0,
        max_new_tokens=max_new_tokens,
        eos_token_id=tokenizer.eos_token_id,
        seed=seed,
    )
    if policy is reference:  # exactly 0: the two passes below would differ only by rounding
        log_ratio = torch.zeros(len(samples))
    else:  # the policy's log-probs come with its samples; the reference scores them by teacher forcing
        log_ratio = torch.tensor(samples.logps) - completion_logps(
            reference, prompts, samples, pad_token_id=tokenizer.pad_token_id
        )
    completions = completion_texts(tokenizer, prompts, samples)
    texts = [join_text(prompts[p].text, c) for p, c in zip(samples.prompt_index, completions)]
    per_sample = {
        "reward": judge(texts),
        "log_ratio": log_ratio.tolist(),
        "length": [len(c) for c in samples.completion_ids],
        **{name: scorer(prompts, samples).tolist() for name, scorer in (scorers or {}).items()},
    }
    out = {
        "reward": mean_and_stderr(per_sample["reward"]).as_dict(),
        "kl": mean_and_stderr(per_sample["log_ratio"]).as_dict(),
        "length": mean_and_stderr(per_sample["length"]).as_dict(),
        **{name: mean_and_stderr(per_sample[name]).as_dict() for name in (scorers or {})},
        "truncated_fraction": sum(samples.truncated) / len(samples),
        "example": texts[0],
    }
    if keep_samples:
        out["samples"] = per_sample
    return out


@torch.no_grad()
def win_rates(
    policy: torch.nn.Module,
    baseline: torch.nn.Module,
    prompts: Sequence[Prompt],
    tokenizer: PreTrainedTokenizerFast,
    judge: Callable[[Sequence[str]], list[float]],
    *,
    temperatures: Sequence[float],
    max_new_tokens: int,
    seed: int,
    baseline_rewards: dict[float, list[float]] | None = None,
) -> dict[str, dict]:
    """Win rate of ``policy`` against ``baseline`` on the same prompts, per sampling temperature.

    For each prompt and temperature, one completion from each model; the judge scores
    both whole reviews and the higher score wins (a tie counts one half). This mirrors
    the DPO paper's temperature sweeps (section 6.2), with VADER in the role GPT-4 plays
    there. ``baseline_rewards`` (temperature -> rewards) skips re-sampling the baseline
    when several policies face the same one; see :func:`judge_samples`.

    Returns:
        ``{str(temperature): {"win_rate", "stderr", "policy_reward", "baseline_reward"}}``.
    """
    results = {}
    for temperature in temperatures:
        policy_scores = judge_samples(
            policy, prompts, tokenizer, judge, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed
        )
        if baseline_rewards is not None and temperature in baseline_rewards:
            base_scores = baseline_rewards[temperature]
        else:
            base_scores = judge_samples(
                baseline,
                prompts,
                tokenizer,
                judge,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                seed=seed + 1,
            )
        outcomes = [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(policy_scores, base_scores)]
        estimate = mean_and_stderr(outcomes)
        results[f"{temperature:g}"] = {
            "win_rate": estimate.mean,
            "stderr": estimate.stderr,
            "n": estimate.n,
            "policy_reward": sum(policy_scores) / len(policy_scores),
            "baseline_reward": sum(base_scores) / len(base_scores),
        }
    return results


def judge_samples(
    model, prompts, tokenizer, judge, *, temperature: float, max_new_tokens: int, seed: int
) -> list[float]:
    """Sample one completion per prompt at ``temperature`` and return the judge's scores."""
    samples = sample_completions(
        model,
        prompts,
        num_samples=1,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        eos_token_id=tokenizer.eos_token_id,
        seed=seed,
    )
    texts = completion_texts(tokenizer, prompts, samples)
    return judge([join_text(prompts[p].text, c) for p, c in zip(samples.prompt_index, texts)])
