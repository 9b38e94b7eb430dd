"""The sentiment world assembled: one object that holds the corpus, the reference, the prompts and the judge.

:func:`build_sentiment_world` follows the recipe of the DPO paper's IMDb experiment (see
:mod:`dpo_ref.worlds.sentiment`): generate the corpus, pretrain a tiny GPT-2 on it (the
SFT model, which is also pi_ref), cut held-out reviews into prompts, and split them into
training, validation and test prompts. The experiments, the examples and the tests build
the world this way, as the exact world is built with :func:`dpo_ref.worlds.exact.build_exact_world`::

    from dpo_ref.worlds.sentiment import SentimentWorldConfig, build_sentiment_world

    world = build_sentiment_world(SentimentWorldConfig(n_reviews=4000, pretrain_steps=150))
    pairs = world.preference_pairs(seed=0)        # pi_ref's samples, judged by VADER
    policy = world.new_policy()                   # a trainable copy of pi_ref
    world.evaluate(policy, "test", seed=1)        # reward and KL(pi || pi_ref) from samples

Everything is seeded from :attr:`SentimentWorldConfig.seed` (the pairs from the seed given
to :meth:`SentimentWorld.preference_pairs`), and nothing reads global random state: the
same configuration gives the same world, to the bit, on the same device.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from dpo_ref.models import tiny_gpt2
from dpo_ref.runtime import resolve_device
from dpo_ref.train import TrainConfig, train_sft
from dpo_ref.worlds.sentiment.evaluation import evaluate_policy, mean_and_stderr
from dpo_ref.worlds.sentiment.grammar import build_tokenizer, check_vocabulary, generate_corpus
from dpo_ref.worlds.sentiment.world import (
    Prompt,
    Samples,
    VaderJudge,
    completion_texts,
    join_text,
    make_prompts,
    pair_tensors,
    preference_pairs,
    pretraining_rows,
    sample_completions,
)

__all__ = ["SentimentWorldConfig", "SentimentWorld", "PreferenceData", "pretrain_reference", "build_sentiment_world"]

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SentimentWorldConfig:
    """The corpus, the reference model and how it is pretrained, the prompts and how pairs are sampled.

    The defaults are the ``cpu`` configuration's world. Paper values cite arXiv 2305.18290, section 6.1.
    """

    n_reviews: int = 20_000  # pretraining corpus (the paper fine-tunes on the IMDb train split)
    n_layer: int = 2  # tiny GPT-2: 2 layers of width 64 train in about a minute on 2 CPU cores
    n_embd: int = 64  # width
    n_head: int = 4  # attention heads
    n_positions: int = 64  # reviews are at most 44 words, prompts at most 8
    pretrain_steps: int = 300  # SFT updates on the corpus (the loss plateaus near 1.35 by step 200)
    pretrain_batch_size: int = 64  # reviews per SFT update
    pretrain_learning_rate: float = 3e-3  # AdamW, with a warm-up of a tenth of the steps (at most 50)
    n_train_prompts: int = 256  # prefixes that get samples_per_prompt samples each: the preference data
    n_val_prompts: int = 128  # held-out prefixes that select each method's setting
    n_test_prompts: int = 192  # other held-out prefixes that every reported number comes from
    min_prompt_tokens: int = 2  # the paper's prefixes are 2 to 8 tokens
    max_prompt_tokens: int = 8  # (the upper end)
    samples_per_prompt: int = 4  # the paper: 4 samples per prefix, 6 pairs
    max_new_tokens: int = 40  # completions are at most 42 words; longer samples are cut
    seed: int = 0  # the corpus, the model's initialisation, pretraining and the prompts


@dataclass
class PreferenceData:
    """Preference pairs drawn from pi_ref's samples of the training prompts, labelled by the judge."""

    pairs: list[dict]  # rows {"prompt", "chosen", "rejected", "chosen_reward", "rejected_reward"}
    dropped: dict[str, int]  # pairs left out: {"ties": ..., "empty": ...}
    tensors: dict[str, torch.Tensor]  # the pairs tokenized and padded (dpo_ref.data.collate_pairs)
    samples: Samples  # the samples they were cut from, for rewards normalised under pi_ref


def _model(config: SentimentWorldConfig, tokenizer) -> torch.nn.Module:
    return tiny_gpt2(
        len(tokenizer),
        n_layer=config.n_layer,
        n_embd=config.n_embd,
        n_head=config.n_head,
        n_positions=config.n_positions,
        seed=config.seed,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def pretrain_reference(config: SentimentWorldConfig, device: str | torch.device = "auto") -> dict:
    """The reference pretrained on the world's corpus: ``{"state_dict", "history"}`` (tensors on the CPU
    and the trainer's logged records), what :func:`build_sentiment_world` loads instead of training again."""
    check_vocabulary()
    tokenizer = build_tokenizer()
    reviews = generate_corpus(config.n_reviews, seed=config.seed)
    train = TrainConfig(
        steps=config.pretrain_steps,
        batch_size=config.pretrain_batch_size,
        learning_rate=config.pretrain_learning_rate,
        warmup_steps=min(50, config.pretrain_steps // 10),
        seed=config.seed,
        device=str(resolve_device(device)),
        group_by_length=False,  # the reference belongs to the world, whatever the experiments' batching
    )
    result = train_sft(_model(config, tokenizer), pretraining_rows(reviews, tokenizer), train)
    state = {k: v.detach().cpu().clone() for k, v in result.model.state_dict().items()}
    return {"state_dict": state, "history": result.history}


class SentimentWorld:
    """A built sentiment world. Use :func:`build_sentiment_world` to make one."""

    def __init__(self, config: SentimentWorldConfig, reference: torch.nn.Module, history: list[dict], device):
        self.config, self.device = config, resolve_device(device)
        self.tokenizer = build_tokenizer()
        self.judge = VaderJudge()
        self.reviews = generate_corpus(config.n_reviews, seed=config.seed)
        self.reference = reference.to(self.device).eval().requires_grad_(False)
        self.pretrain_history = history
        held_out = generate_corpus(
            config.n_train_prompts + config.n_val_prompts + config.n_test_prompts, seed=config.seed + 1
        )
        prompts = make_prompts(
            held_out,
            self.tokenizer,
            seed=config.seed + 2,
            min_tokens=config.min_prompt_tokens,
            max_tokens=config.max_prompt_tokens,
        )
        n_train, n_val = config.n_train_prompts, config.n_val_prompts
        self.prompts: dict[str, list[Prompt]] = {
            "train": prompts[:n_train],
            "val": prompts[n_train : n_train + n_val],
            "test": prompts[n_train + n_val :],
        }

    def new_policy(self) -> torch.nn.Module:
        """A trainable copy of pi_ref: where every method starts."""
        return copy.deepcopy(self.reference).train().requires_grad_(True)

    def preference_pairs(self, seed: int) -> PreferenceData:
        """``samples_per_prompt`` samples of pi_ref per training prompt (temperature 1, seeded by ``seed``),
        judged by VADER, and every pair of them that carries a preference."""
        config, prompts = self.config, self.prompts["train"]
        samples = sample_completions(
            self.reference,
            prompts,
            num_samples=config.samples_per_prompt,
            temperature=1.0,
            max_new_tokens=config.max_new_tokens,
            eos_token_id=self.tokenizer.eos_token_id,
            seed=seed,
        )
        completions = completion_texts(self.tokenizer, prompts, samples)
        texts = [join_text(prompts[p].text, c) for p, c in zip(samples.prompt_index, completions)]
        pairs, dropped = preference_pairs(
            prompts, completions, self.judge(texts), samples_per_prompt=config.samples_per_prompt
        )
        return PreferenceData(pairs, dropped, pair_tensors(pairs, self.tokenizer, config.n_positions), samples)

    def evaluate(self, policy: torch.nn.Module, split: str, *, seed: int, num_samples: int, **kwargs) -> dict:
        """Reward, KL(pi || pi_ref) and length on the ``split`` prompts, from ``num_samples`` samples per prompt
        (:func:`dpo_ref.worlds.sentiment.evaluate_policy`, whose keyword arguments pass through)."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return evaluate_policy(
            policy,
            self.reference,
            self.prompts[split],
            self.tokenizer,
            self.judge,
            num_samples=num_samples,
            max_new_tokens=self.config.max_new_tokens,
            seed=seed,
            **kwargs,
        )

    def summary(self) -> dict:
        """The world as the results files describe it: sizes, the corpus, example reviews, pretraining."""
        history = self.pretrain_history
        return {
            "vocab_size": len(self.tokenizer),
            "n_parameters": sum(p.numel() for p in self.reference.parameters()),
            "corpus": {
                "n_reviews": len(self.reviews),
                "mean_words": sum(len(r.split()) for r in self.reviews) / len(self.reviews),
                "vader": mean_and_stderr(self.judge(self.reviews[:2000])).as_dict(),
            },
            "example_reviews": self.reviews[:3],
            "pretrain": {
                "final_loss": history[-1]["loss"],
                "curve": [[h["step"], h["loss"]] for i, h in enumerate(history) if i % 10 == 0],
            },
        }


def build_sentiment_world(
    config: SentimentWorldConfig | None = None, *, device: str | torch.device = "auto", pretrained: dict | None = None
) -> SentimentWorld:
    """The world of ``config``; its reference pretrained here, or loaded from ``pretrained``
    (what :func:`pretrain_reference` returned for the same configuration)."""
    config = config or SentimentWorldConfig()
    pretrained = pretrained or pretrain_reference(config, device)
    reference = _model(config, build_tokenizer())
    reference.load_state_dict(pretrained["state_dict"])
    return SentimentWorld(config, reference, pretrained["history"], device)
