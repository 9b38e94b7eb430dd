"""The sentiment world's judge, prompts, sampling, preference pairs and evaluation.

See :mod:`dpo_ref.worlds.sentiment` for the whole world and why each piece is built as it is.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import datasets
import torch
from transformers import PreTrainedTokenizerFast

from dpo_ref.data import collate_pairs, tokenize_pairs
from dpo_ref.errors import UserError
from dpo_ref.logps import IGNORE_INDEX, sequence_logps
from dpo_ref.sampling import sample

__all__ = [
    "VaderJudge",
    "vader_lexicon",
    "join_text",
    "Prompt",
    "make_prompts",
    "Samples",
    "sample_completions",
    "decode",
    "completion_logps",
    "prompt_completion_batch",
    "completion_texts",
    "preference_pairs",
    "pretraining_rows",
    "pair_tensors",
    "left_padded_prompts",
    "right_aligned",
]


# --------------------------------------------------------------------------- judge


@lru_cache(maxsize=1)
def _analyzer():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_lexicon() -> dict[str, float]:
    """VADER's word valences (the lexicon its package ships)."""
    return _analyzer().lexicon


class VaderJudge:
    """The ground-truth reward r*(x, y): VADER's compound score of ``prompt + completion``.

    Callable on a list of full texts (prompt and completion already joined, see the
    module docstring for why the prompt is included); returns a float per text in
    [-1, 1]. VADER is deterministic and needs no model, so the judge holds no state.
    """

    name = "vader_compound"

    def __call__(self, texts: Sequence[str]) -> list[float]:
        analyzer = _analyzer()
        return [analyzer.polarity_scores(text)["compound"] for text in texts]

    def score(self, prompt: str, completion: str) -> float:
        """The reward of one completion of one prompt."""
        return self([join_text(prompt, completion)])[0]


def join_text(prompt: str, completion: str) -> str:
    """The review as a reader sees it: prompt and completion joined by one space."""
    return f"{prompt} {completion.strip()}".strip()


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class Prompt:
    """A review prefix: its text and its token ids (no special token)."""

    text: str
    ids: tuple[int, ...]


def make_prompts(
    reviews: Sequence[str],
    tokenizer: PreTrainedTokenizerFast,
    *,
    seed: int,
    min_tokens: int = 2,
    max_tokens: int = 8,
) -> list[Prompt]:
    """One prompt per review: its first ``k`` tokens, ``k`` uniform in [min_tokens, max_tokens].

    The paper's IMDb prompts are prefixes of 2 to 8 tokens (DPO paper, section 6.1).
    A review shorter than ``k + 1`` words keeps at least one word for the completion.
    """
    if not 1 <= min_tokens <= max_tokens:
        raise UserError(f"need 1 <= min_tokens <= max_tokens, got {min_tokens} and {max_tokens}")
    rng = random.Random(seed)
    prompts = []
    for review in reviews:
        words = review.split()
        k = min(rng.randint(min_tokens, max_tokens), len(words) - 1)
        if k < 1:
            raise UserError(f"review {review!r} is too short to split into a prompt and a completion")
        text = " ".join(words[:k])
        ids = tuple(tokenizer(text, add_special_tokens=False)["input_ids"])
        prompts.append(Prompt(text=text, ids=ids))
    return prompts


# --------------------------------------------------------------------------- sampling


@dataclass
class Samples:
    """Completions sampled for a list of prompts, ``num_samples`` per prompt, prompt-major.

    ``prompt_index[i]`` is the prompt of completion ``i``; ``completion_ids[i]`` its
    token ids, ending with EOS unless the length limit cut it (``truncated[i]``);
    ``logps[i]`` its summed log-probability under the sampling model at temperature 1
    (EOS included), read from the logits that drew it, so scoring the samples under the
    model that drew them needs no second pass.
    """

    prompt_index: list[int]
    completion_ids: list[list[int]]
    truncated: list[bool]
    logps: list[float]

    def __len__(self) -> int:
        return len(self.completion_ids)


def sample_completions(
    model: torch.nn.Module,
    prompts: Sequence[Prompt],
    *,
    num_samples: int,
    temperature: float,
    max_new_tokens: int,
    eos_token_id: int,
    seed: int,
    batch_size: int = 512,
) -> Samples:
    """Sample ``num_samples`` completions of every prompt from ``model`` with :func:`dpo_ref.sampling.sample`.

    Its rules hold here: plain ancestral sampling from ``softmax(logits / temperature)``
    (temperature 0 is greedy), so at temperature 1 the completions are samples of pi(y|x)
    itself, which the KL estimate in :func:`evaluate_policy` needs; a completion stops at
    EOS (kept) or after ``max_new_tokens`` tokens; prompts of every length share a batch.
    The draws come from a CPU generator seeded with ``seed``: the same seed, model and
    prompts give the same completions on any device, and the global RNG is untouched.
    """
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)  # one stream across the batches
    rows = [(p, s) for p in range(len(prompts)) for s in range(num_samples)]  # prompt-major
    completions: list[list[int]] = []
    truncated: list[bool] = []
    logps: list[float] = []
    for start in range(0, len(rows), batch_size):
        chunk = [prompts[p] for p, _ in rows[start : start + batch_size]]
        input_ids, attention_mask = left_padded_prompts(chunk, pad_token_id=eos_token_id)  # pad ids are masked out
        sampled = sample(
            model,
            input_ids.to(device),
            attention_mask.to(device),
            max_new_tokens=max_new_tokens,
            generator=generator,
            temperature=temperature,
            eos_token_id=eos_token_id,
        )
        completions += sampled.completion_ids(prompt_length=input_ids.shape[1])
        truncated += (~sampled.ended).tolist()
        logps += sampled.logps.tolist()
    return Samples(prompt_index=[p for p, _ in rows], completion_ids=completions, truncated=truncated, logps=logps)


def decode(tokenizer: PreTrainedTokenizerFast, ids: Sequence[int]) -> str:
    """Token ids to text without special tokens."""
    return tokenizer.decode(list(ids), skip_special_tokens=True)


def prompt_completion_batch(prompts, samples: Samples, pad_token_id: int, device):
    """Right-padded ``(input_ids, attention_mask, labels)`` for prompt + completion, prompt masked."""
    sequences, label_rows = [], []
    for p, completion in zip(samples.prompt_index, samples.completion_ids):
        prompt_ids = list(prompts[p].ids)
        sequences.append(prompt_ids + completion)
        label_rows.append([IGNORE_INDEX] * len(prompt_ids) + completion)
    length = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), length), pad_token_id, dtype=torch.long)
    labels = torch.full((len(sequences), length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for i, (seq, lab) in enumerate(zip(sequences, label_rows)):
        input_ids[i, : len(seq)] = torch.tensor(seq)
        labels[i, : len(lab)] = torch.tensor(lab)
        attention_mask[i, : len(seq)] = 1
    return input_ids.to(device), attention_mask.to(device), labels.to(device)


@torch.no_grad()
def completion_logps(
    model: torch.nn.Module,
    prompts: Sequence[Prompt],
    samples: Samples,
    *,
    pad_token_id: int,
    batch_size: int = 256,
) -> torch.Tensor:
    """Summed log pi(y|x) of every sampled completion (EOS included), shape ``(N,)``, on CPU.

    Scored by teacher forcing through :func:`dpo_ref.logps.sequence_logps`, the one
    place where logits become log-probs, at temperature 1 whatever the samples were
    drawn at.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    input_ids, attention_mask, labels = prompt_completion_batch(prompts, samples, pad_token_id, device)
    parts = []
    for start in range(0, input_ids.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        logits = model(input_ids=input_ids[sl], attention_mask=attention_mask[sl]).logits  # (b, T, V)
        parts.append(sequence_logps(logits, labels[sl]).cpu())
    model.train(was_training)
    return torch.cat(parts)


def completion_texts(tokenizer, prompts: Sequence[Prompt], samples: Samples) -> list[str]:
    """Decoded completions, each starting with a space (TRL's convention), without EOS."""
    return [" " + decode(tokenizer, ids) for ids in samples.completion_ids]


# --------------------------------------------------------------------------- pairs


def preference_pairs(
    prompts: Sequence[Prompt],
    completions: Sequence[str],
    rewards: Sequence[float],
    *,
    samples_per_prompt: int,
) -> tuple[list[dict], int]:
    """All pairs among the completions of each prompt, labelled by the judge's reward.

    As in the DPO paper's IMDb experiment: ``samples_per_prompt`` = 4 completions per
    prefix give C(4, 2) = 6 pairs, the higher reward being ``chosen``. A pair whose two
    rewards are equal carries no preference and is dropped (VADER gives many exact ties,
    for instance two completions without sentiment words both score 0); two identical
    completions are dropped too, and so is a pair with an empty completion (the model
    ended the review at once), which a preference dataset cannot hold. ``completions``
    and ``rewards`` are prompt-major, as :func:`sample_completions` returns them.

    Returns:
        ``(pairs, dropped)``: rows ``{"prompt", "chosen", "rejected", "chosen_reward",
        "rejected_reward"}`` in TRL's column convention, and the counts of dropped pairs
        ``{"ties": ..., "empty": ...}``.
    """
    n = samples_per_prompt
    if len(completions) != len(prompts) * n or len(rewards) != len(completions):
        raise UserError(
            f"expected {len(prompts)} x {n} completions and rewards, got {len(completions)} and {len(rewards)}"
        )
    pairs, dropped = [], {"ties": 0, "empty": 0}
    for p, prompt in enumerate(prompts):
        for i in range(n):
            for j in range(i + 1, n):
                a, b = p * n + i, p * n + j
                if not completions[a].strip() or not completions[b].strip():
                    dropped["empty"] += 1
                    continue
                if rewards[a] == rewards[b] or completions[a] == completions[b]:
                    dropped["ties"] += 1
                    continue
                win, lose = (a, b) if rewards[a] > rewards[b] else (b, a)
                pairs.append(
                    {
                        "prompt": prompt.text,
                        "chosen": completions[win],
                        "rejected": completions[lose],
                        "chosen_reward": float(rewards[win]),
                        "rejected_reward": float(rewards[lose]),
                    }
                )
    return pairs, dropped


# --------------------------------------------------------------------------- tensors


def pretraining_rows(reviews, tokenizer) -> dict[str, torch.Tensor]:
    """Every review as one SFT row: all words and the final EOS are scored."""
    eos = tokenizer.eos_token_id
    rows = []
    for ids in tokenizer(list(reviews), add_special_tokens=False)["input_ids"]:
        ids = ids + [eos]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": ids})
    return collate_pairs(rows, tokenizer.pad_token_id)


def pair_tensors(pairs: list[dict], tokenizer, max_length: int) -> dict[str, torch.Tensor]:
    """Tokenize pairs with :func:`dpo_ref.data.tokenize_pairs` and pad them all into one batch dict."""
    dataset = datasets.Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
    tokenized, report = tokenize_pairs(dataset, tokenizer, max_length=max_length)
    if report.n_kept != len(pairs):
        raise UserError(f"tokenization dropped {len(pairs) - report.n_kept} sentiment pairs; raise n_positions")
    return collate_pairs(list(tokenized), tokenizer.pad_token_id)


def left_padded_prompts(prompts, pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts as a left-padded ``(P, L)`` tensor and its attention mask (PPO's input)."""
    length = max(len(p.ids) for p in prompts)
    ids = torch.full((len(prompts), length), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), length), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, length - len(p.ids) :] = torch.tensor(p.ids)
        mask[i, length - len(p.ids) :] = 1
    return ids, mask


def right_aligned(input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_token_id: int):
    """Attended tokens of each row moved to the left: right padding, as the reward model reads it."""
    rows = [ids[mask.bool()] for ids, mask in zip(input_ids, attention_mask)]
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_token_id, dtype=torch.long, device=input_ids.device)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask
