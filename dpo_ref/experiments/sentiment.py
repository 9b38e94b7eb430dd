"""Run the sentiment world (the DPO paper's IMDb experiment) and write its results files.

    dpo-ref reproduce --config cpu          # or, alone:
    python -m dpo_ref.experiments.sentiment --config cpu --out docs/results/data

Steps, all seeded from ``config.seed`` (see :mod:`dpo_ref.worlds.sentiment` for the world):

1. generate the review corpus, build the word-level tokenizer, pretrain a tiny GPT-2 on
   the reviews with the trainer's SFT: this is both the SFT model and pi_ref;
2. take review prefixes (2 to 8 tokens) of held-out reviews as prompts; sample 4
   completions per training prompt from pi_ref, score them with VADER and form the 6
   pairs per prompt (ties dropped);
3. train every method from pi_ref on exactly those pairs, with the same optimiser, the
   same learning rate, the same number of optimiser updates and a grid of 4 values of
   its own main hyperparameter (the tuning budget is the same for every method):
   DPO, IPO, KTO, ORPO, SimPO, Preferred-FT, Unlikelihood, PPO with a reward model
   trained on the same pairs, and PPO-GT with VADER itself as the reward;
4. evaluate each trained policy on held-out prompts: expected VADER reward and
   KL(pi || pi_ref), both from samples at temperature 1, with standard errors; and for
   each method's best setting, its win rate against pi_ref over sampling temperatures;
5. measure what RLHF costs against DPO.

Results files, written atomically to ``OUT/<config>/`` (``OUT`` defaults to
``docs/results/data``), each with the shared ``provenance`` key of
:mod:`dpo_ref.experiments` (config, seeds ``{"sentiment": seed}``, library versions,
device, git commit, wall time, date, command). All rewards are VADER compound scores
in [-1, 1]; all KLs are sequence-level, in nats, estimated from samples; every estimate
is ``{"mean", "stderr", "n"}``.

``sentiment_frontier.json``
    ``sentiment_config``: every field of :class:`SentimentConfig`.
    ``world``: ``vocab_size``, ``n_parameters`` of the policy, ``corpus`` (``n_reviews``,
    ``mean_words``, ``vader`` estimate), ``example_reviews``, ``pretrain``
    (``final_loss``, ``curve`` ``[[step, loss], ...]``), ``reference`` (pi_ref's
    evaluation, as a run below), ``reward_model_pair_accuracy`` (on its training pairs).
    ``pairs``: ``n_prompts``, ``samples_per_prompt``, ``n_pairs``, ``n_dropped``
    (``{"ties", "empty"}``), ``mean_chosen_reward``, ``mean_rejected_reward``,
    ``length_gap`` (chosen minus rejected completion tokens), ``examples``.
    ``runs``: one per (method, setting): ``method`` (DPO, IPO, KTO, ORPO, SimPO,
    Preferred-FT, Unlikelihood, PPO, PPO-GT), ``hyperparameter`` (its name), ``value``,
    ``reward``, ``kl``, ``length`` (completion tokens), ``truncated_fraction``,
    ``example`` (one sampled review), ``final_metrics`` (last logged training metrics,
    TRL's names where they exist).
    ``frontier``: per method, ``[[kl, reward], ...]`` sorted by KL.
    ``matched_kl``: ``{"PPO": [...], "PPO-GT": [...]}``, one row per measured point of
    DPO or of the other method, sorted by KL: ``{"at" ("DPO <beta>", "PPO <kl_coef>"
    or "PPO-GT <kl_coef>"), "kl", "dpo_reward", "other_reward", "difference"}``, where the method
    not measured there is linearly interpolated between its points, pi_ref counting as
    the KL-0 point of both (null outside its KL range).
    ``notes``: sentences computed from the numbers: the ranking, matched-KL comparisons,
    win rates, the facts that explain them (reward-model accuracy, how far each method
    drifts, the pairs' length bias) and the cost ratios.
``sentiment_win_rates.json``
    ``temperatures``, ``baseline``, ``judge``, ``n_prompts``; ``methods``: per method,
    ``selected`` (its setting with the highest reward) and ``by_temperature``:
    ``{"0.25": {"win_rate", "stderr", "n", "policy_reward", "baseline_reward"}, ...}``,
    one completion of each model per held-out prompt, a tie counting one half.
``sentiment_curves.json``
    ``dpo``: per beta, ``{"step": [...], "loss": [...], "rewards/chosen": [...],
    "rewards/rejected": [...], "rewards/margins": [...], "rewards/accuracies": [...],
    "logps/chosen": [...], "logps/rejected": [...]}`` (TRL's metric names);
    ``pretrain``: ``[[step, loss], ...]``.
``sentiment_cost.json``
    ``dpo`` and ``rlhf`` (reward model + PPO), one training run of each:
    ``models_in_memory``, ``state_bytes`` (float32 parameters of every model held, plus
    gradients and AdamW's two moments of the trained one: computed from parameter
    counts, not sampled), ``training_runs``, ``samples_generated``, ``wall_time_s`` and
    ``cpu_time_s`` (this process's CPU seconds, steadier than wall time on a shared
    machine); ``ratios_rlhf_over_dpo``; ``shared_by_both`` (SFT and pair sampling);
    ``stage_wall_time_s``, ``stage_cpu_time_s``; ``peak_rss_bytes_whole_process`` (``resource.getrusage``:
    the whole process, all methods, indicative only); on a GPU, ``peak_cuda_bytes`` per
    stage (``torch.cuda.max_memory_allocated`` after a reset at the stage's start, the
    largest over its runs); ``wall_time_whole_run_s``.

Timings (``*wall*`` and ``*cpu_time*`` keys, ``provenance``) vary between runs; every other number is
a function of the config and seed alone (same machine, same library versions).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import math
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import datasets
import torch

from dpo_ref.data import collate_pairs, tokenize_pairs
from dpo_ref.experiments.provenance import provenance, write_json_atomic
from dpo_ref.logps import IGNORE_INDEX
from dpo_ref.losses import dpo_loss, ipo_loss, orpo_loss, simpo_loss
from dpo_ref.models import tiny_gpt2
from dpo_ref.train import (
    KTOObjective,
    PairwiseObjective,
    PPOConfig,
    ReferenceFreeObjective,
    RewardModel,
    TrainConfig,
    UnlikelihoodObjective,
    chosen_as_sft,
    precompute_reference_logps,
    resolve_device,
    train_ppo,
    train_preference,
    train_reward_model,
    train_sft,
)
from dpo_ref.worlds import sentiment as world

__all__ = ["SentimentConfig", "CONFIGS", "run_sentiment", "run", "count_runs", "group", "main"]

RESULTS_DIR = Path("docs/results/data")


@dataclass(frozen=True)
class SentimentConfig:
    """Everything that sets a sentiment-world run. Paper values cite the DPO paper (arXiv 2305.18290)."""

    name: str
    seed: int = 0  # seeds the corpus, prompts, sampling and every training run
    # --- corpus and the SFT / reference model
    n_reviews: int = 20_000  # pretraining corpus (the paper fine-tunes on the IMDb train split)
    n_layer: int = 2  # tiny GPT-2: 2 layers of width 64 train in about a minute on 2 CPU cores
    n_embd: int = 64
    n_head: int = 4
    n_positions: int = 64  # reviews are at most 44 words, prompts at most 8
    pretrain_steps: int = 300  # SFT updates on the corpus (the loss plateaus near 1.35 by step 200)
    pretrain_batch_size: int = 64
    pretrain_learning_rate: float = 3e-3
    # --- prompts and preference pairs
    n_train_prompts: int = 256  # prefixes that get 4 samples each: the preference data
    samples_per_prompt: int = 4  # the paper: 4 samples per prefix, 6 pairs (section 6.1)
    min_prompt_tokens: int = 2  # the paper's prefixes are 2 to 8 tokens
    max_prompt_tokens: int = 8
    max_new_tokens: int = 40  # completions are at most 42 words; longer samples are cut
    # --- evaluation
    n_eval_prompts: int = 256  # held-out prefixes
    eval_samples_per_prompt: int = 2  # samples per prefix for reward and KL (temperature 1)
    win_rate_temperatures: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # the paper's TL;DR sweep
    # --- training budget, the same for every method
    steps: int = 96  # optimiser updates per run (2 epochs of about 1,500 pairs at batch 32)
    batch_size: int = 32  # pairs per update (the paper: 64)
    learning_rate: float = 1e-3  # AdamW; the paper's 1e-6 RMSprop is for gpt2-large
    warmup_steps: int = 10  # the paper warms up over 150 steps of a much longer run
    # --- each method's grid (4 values each: the same tuning budget)
    dpo_betas: tuple[float, ...] = (0.05, 0.1, 1.0, 5.0)  # secondary sources' grid for the paper (unconfirmed)
    ipo_taus: tuple[float, ...] = (0.05, 0.1, 1.0, 5.0)  # IPO's tau on per-token mean log-ratios (TRL)
    kto_betas: tuple[float, ...] = (0.05, 0.1, 1.0, 5.0)
    orpo_lambdas: tuple[float, ...] = (0.05, 0.1, 0.5, 1.0)  # the ORPO paper uses about 0.1
    simpo_betas: tuple[float, ...] = (1.0, 2.0, 2.5, 5.0)  # the SimPO paper: 2 to 2.5, gamma = beta / 2
    unlikelihood_alphas: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)  # weight of the unlikelihood term
    preferred_ft_lr_scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)  # Preferred-FT has only its learning rate
    ppo_kl_coefs: tuple[float, ...] = (0.05, 0.1, 1.0, 5.0)  # PPO with the reward model: beta on its BT scale
    ppo_gt_kl_coefs: tuple[float, ...] = (0.005, 0.01, 0.03, 0.1)  # PPO-GT: VADER lies in [-1, 1]
    # --- PPO (Ziegler et al. 2019 settings, scaled down)
    ppo_rollout_batch_size: int = 64
    ppo_minibatch_size: int = 32
    ppo_epochs: int = 4
    reward_model_steps: int = 96  # Bradley-Terry reward model on the same pairs
    # --- logging
    curve_every: int = 4  # keep every n-th logged step of the DPO curves
    device: str = "auto"
    # Intra-op CPU threads. One: the model is so small that OpenMP's synchronisation
    # costs more than it saves, and on a busy 2-core machine 2 threads ran 10x slower.
    cpu_threads: int = 1


CONFIGS: dict[str, SentimentConfig] = {
    # Seconds: tiny everything; what the tests run.
    "smoke": SentimentConfig(
        name="smoke", n_reviews=600, n_layer=1, n_embd=32, n_head=2, pretrain_steps=30,
        n_train_prompts=12, n_eval_prompts=12, eval_samples_per_prompt=2, max_new_tokens=16,
        steps=4, batch_size=8, warmup_steps=0, win_rate_temperatures=(0.0, 1.0),
        dpo_betas=(0.1, 1.0), ipo_taus=(0.1,), kto_betas=(0.1,), orpo_lambdas=(0.1,), simpo_betas=(2.0,),
        unlikelihood_alphas=(1.0,), preferred_ft_lr_scales=(1.0,), ppo_kl_coefs=(0.1,), ppo_gt_kl_coefs=(0.03,),
        ppo_rollout_batch_size=8, ppo_minibatch_size=8, ppo_epochs=1, reward_model_steps=4, curve_every=1,
    ),  # fmt: skip
    # The committed results: about 8 minutes on 2 CPU cores.
    "cpu": SentimentConfig(name="cpu"),
    # A larger model, more data and longer training, for one GPU.
    "gpu": SentimentConfig(
        name="gpu", n_reviews=100_000, n_layer=4, n_embd=256, n_head=4, pretrain_steps=3000,
        pretrain_batch_size=128, pretrain_learning_rate=1e-3, n_train_prompts=2048, n_eval_prompts=1024,
        eval_samples_per_prompt=4, steps=600, batch_size=64, learning_rate=3e-4, warmup_steps=50,
        reward_model_steps=600, ppo_rollout_batch_size=128, ppo_minibatch_size=64, curve_every=10,
    ),  # fmt: skip
}


# --------------------------------------------------------------------------- helpers


class _Timer:
    """Wall-clock and CPU seconds per named stage and, on a GPU, the stage's peak CUDA memory.

    Both are reported, never part of the deterministic numbers. The CUDA peak is
    ``torch.cuda.max_memory_allocated`` after resetting it at the start of the stage,
    so it measures what the stage itself held; the largest over repeated stages is kept.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = {}
        # CPU seconds of this process (time.process_time): on a machine shared with other
        # jobs it varies far less than wall time, so it is the fairer cost on CPU.
        self.cpu_seconds: dict[str, float] = {}
        self.peak_cuda_bytes: dict[str, int] = {}

    def __call__(self, name: str):
        timer = self
        cuda = self.device.type == "cuda"

        class _Stage:
            def __enter__(self):
                if cuda:
                    torch.cuda.synchronize(timer.device)
                    torch.cuda.reset_peak_memory_stats(timer.device)
                self.start, self.cpu_start = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                if cuda:
                    torch.cuda.synchronize(timer.device)
                    peak = torch.cuda.max_memory_allocated(timer.device)
                    timer.peak_cuda_bytes[name] = max(peak, timer.peak_cuda_bytes.get(name, 0))
                timer.seconds[name] = timer.seconds.get(name, 0.0) + time.perf_counter() - self.start
                timer.cpu_seconds[name] = timer.cpu_seconds.get(name, 0.0) + time.process_time() - self.cpu_start

        return _Stage()


def _n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _bytes(n_params: int, dtype=torch.float32) -> int:
    return n_params * torch.empty((), dtype=dtype).element_size()


def _estimate(values) -> dict:
    return world.mean_and_stderr(values).as_dict()


def _rounded(obj, digits: int = 6):
    """Round floats for the JSON file (keeps diffs small; the same run gives the same digits)."""
    if isinstance(obj, float):
        return round(obj, digits) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_rounded(v, digits) for v in obj]
    return obj


# --------------------------------------------------------------------------- data


def _pretraining_rows(reviews, tokenizer) -> dict[str, torch.Tensor]:
    """Every review as one SFT row: all words and the final EOS are scored."""
    eos = tokenizer.eos_token_id
    rows = []
    for ids in tokenizer(list(reviews), add_special_tokens=False)["input_ids"]:
        ids = ids + [eos]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": ids})
    return collate_pairs(rows, tokenizer.pad_token_id)


def _pair_tensors(pairs: list[dict], tokenizer, max_length: int) -> dict[str, torch.Tensor]:
    """Tokenize pairs with :func:`dpo_ref.data.tokenize_pairs` and pad them all into one batch dict."""
    dataset = datasets.Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
    tokenized, report = tokenize_pairs(dataset, tokenizer, max_length=max_length)
    if report.n_kept != len(pairs):
        raise ValueError(f"tokenization dropped {len(pairs) - report.n_kept} sentiment pairs; raise n_positions")
    return collate_pairs(list(tokenized), tokenizer.pad_token_id)


def _kto_rows(pairs: dict[str, torch.Tensor], pad_token_id: int) -> dict[str, torch.Tensor]:
    """KTO's unpaired rows from padded pairs, for prompts of different lengths.

    Each chosen completion is desirable, each rejected one undesirable (chosen and
    rejected alternate, so every batch holds both). The mismatched row used for KTO's KL
    reference point is this row's prompt followed by the next row's completion (TRL
    pairs prompts with shifted completions the same way).
    """
    rows = []
    for side, desirable in (("chosen", True), ("rejected", False)):
        for i in range(len(pairs[f"{side}_input_ids"])):
            mask = pairs[f"{side}_attention_mask"][i].bool()
            ids = pairs[f"{side}_input_ids"][i][mask].tolist()
            labels = pairs[f"{side}_labels"][i][mask].tolist()
            n_prompt = next(k for k, label in enumerate(labels) if label != IGNORE_INDEX)
            rows.append((i, desirable, ids[:n_prompt], ids[n_prompt:]))
    rows.sort(key=lambda r: (r[0], not r[1]))  # pair-major, chosen before rejected
    main, mismatched = [], []
    for j, (_, desirable, prompt, completion) in enumerate(rows):
        other = rows[(j + 1) % len(rows)][3]
        main.append({"input_ids": prompt + completion, "attention_mask": [1] * (len(prompt) + len(completion)),
                     "labels": [IGNORE_INDEX] * len(prompt) + completion, "desirable": desirable})  # fmt: skip
        mismatched.append({"input_ids": prompt + other, "attention_mask": [1] * (len(prompt) + len(other)),
                           "labels": [IGNORE_INDEX] * len(prompt) + other})  # fmt: skip
    out = collate_pairs(main, pad_token_id)
    kl = collate_pairs(mismatched, pad_token_id)
    out.update({f"kl_{k}": v for k, v in kl.items()})
    return out


def _left_padded_prompts(prompts, pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts as a left-padded ``(P, L)`` tensor and its attention mask (PPO's input)."""
    length = max(len(p.ids) for p in prompts)
    ids = torch.full((len(prompts), length), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), length), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, length - len(p.ids) :] = torch.tensor(p.ids)
        mask[i, length - len(p.ids) :] = 1
    return ids, mask


def _compact(input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_token_id: int):
    """Attended tokens of each row moved to the left: right padding, as the reward model reads it."""
    rows = [ids[mask.bool()] for ids, mask in zip(input_ids, attention_mask)]
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_token_id, dtype=torch.long, device=input_ids.device)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


# --------------------------------------------------------------------------- the run


@dataclass
class _Context:
    config: SentimentConfig
    device: torch.device
    tokenizer: object
    reference: torch.nn.Module
    eval_prompts: list
    judge: world.VaderJudge
    timer: _Timer
    progress: Callable[[str], None]
    runs: list = field(default_factory=list)
    models: dict = field(default_factory=dict)  # (method, value) -> trained policy (CPU)


def _train_config(cfg: SentimentConfig, device: torch.device, *, learning_rate: float | None = None, steps=None,
                  batch_size=None, seed_offset: int = 0) -> TrainConfig:  # fmt: skip
    return TrainConfig(
        steps=steps or cfg.steps,
        batch_size=batch_size or cfg.batch_size,
        learning_rate=learning_rate or cfg.learning_rate,
        warmup_steps=cfg.warmup_steps,
        seed=cfg.seed + seed_offset,
        device=str(device),
    )


def _evaluate(ctx: _Context, policy: torch.nn.Module, seed_offset: int = 0) -> dict:
    cfg = ctx.config
    return world.evaluate_policy(
        policy, ctx.reference, ctx.eval_prompts, ctx.tokenizer, ctx.judge,
        num_samples=cfg.eval_samples_per_prompt, max_new_tokens=cfg.max_new_tokens,
        seed=cfg.seed + 10_000 + seed_offset,
    )  # fmt: skip


def _record(ctx: _Context, method: str, hyperparameter: str, value: float, policy: torch.nn.Module, history) -> dict:
    policy = policy.eval()
    evaluation = _evaluate(ctx, policy)
    final = {k: v for k, v in (history[-1] if history else {}).items() if k != "step"}
    row = {"method": method, "hyperparameter": hyperparameter, "value": value, **evaluation, "final_metrics": final}
    ctx.runs.append(row)
    ctx.models[(method, value)] = policy
    ctx.progress(f"sentiment {method} {hyperparameter}={value:g}: reward {evaluation['reward']['mean']:+.3f}, "
                 f"KL {evaluation['kl']['mean']:.2f}")  # fmt: skip
    return row


def _curve(history: list[dict], every: int) -> dict[str, list]:
    names = ("step", "loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
             "logps/chosen", "logps/rejected")  # fmt: skip
    kept = [h for i, h in enumerate(history) if i % every == 0 or i == len(history) - 1]
    return {name: [h.get(name) for h in kept] for name in names}


def run_sentiment(
    config: SentimentConfig | str,
    *,
    device: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict]:
    """Run the sentiment world; return its results files' contents, without provenance.

    Keys are the file names (``sentiment_frontier``, ``sentiment_win_rates``,
    ``sentiment_curves``, ``sentiment_cost``); see the module docstring for what each
    holds. ``progress`` is called with a short label after each of
    :func:`count_runs` steps.
    """
    cfg = CONFIGS[config] if isinstance(config, str) else config
    if device is not None:
        cfg = dataclasses.replace(cfg, device=device)
    threads = torch.get_num_threads()
    if resolve_device(cfg.device).type == "cpu":
        torch.set_num_threads(cfg.cpu_threads)
    try:
        return _run(cfg, progress or (lambda _: None))
    finally:
        torch.set_num_threads(threads)


def count_runs(config: SentimentConfig) -> int:
    """How many times :func:`run_sentiment` calls ``progress``: pretraining, each trained model, win rates."""
    grids = (config.dpo_betas, config.ipo_taus, config.kto_betas, config.orpo_lambdas, config.simpo_betas,
             config.preferred_ft_lr_scales, config.unlikelihood_alphas, config.ppo_kl_coefs,
             config.ppo_gt_kl_coefs)  # fmt: skip
    return 1 + sum(len(g) for g in grids) + 1 + 1


def seeds(config: SentimentConfig) -> dict:
    return {"sentiment": config.seed}


def run(
    config: SentimentConfig | str,
    *,
    out_dir: str | os.PathLike = RESULTS_DIR,
    device: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Run the sentiment world alone and write ``out_dir/<config>/sentiment_*.json``; returns the paths.

    ``dpo-ref reproduce`` does the same through :func:`group`, with the other worlds.
    """
    cfg = CONFIGS[config] if isinstance(config, str) else config
    if device is not None:
        cfg = dataclasses.replace(cfg, device=device)
    start = time.perf_counter()
    results = run_sentiment(cfg, progress=progress)
    threads = torch.get_num_threads()
    if resolve_device(cfg.device).type == "cpu":
        torch.set_num_threads(cfg.cpu_threads)  # so that provenance reports the threads the run used
    try:
        info = provenance(cfg, seeds=seeds(cfg), device=resolve_device(cfg.device),
                          wall_time_s=time.perf_counter() - start)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    paths = []
    for name, data in results.items():
        path = Path(out_dir) / cfg.name / f"{name}.json"
        write_json_atomic(path, {**data, "provenance": info})
        paths.append(path)
    return paths


def group():
    """This world's entry in :data:`dpo_ref.experiments.GROUPS`: ``(run, count_runs, seeds, settings)``.

    The functions take the shared ``ExperimentConfig`` and use the sentiment config of
    the same name (``smoke``, ``cpu`` or ``gpu``) from :data:`CONFIGS`.
    """

    def run_group(config, device: str, progress) -> dict[str, dict]:
        return run_sentiment(CONFIGS[config.name], device=device, progress=progress)

    def settings(config) -> SentimentConfig:
        return CONFIGS[config.name]

    return run_group, (lambda config: count_runs(settings(config))), (lambda config: seeds(settings(config))), settings


def _run(cfg: SentimentConfig, progress: Callable[[str], None]) -> dict[str, dict]:
    dev = resolve_device(cfg.device)
    timer = _Timer(dev)
    start = time.perf_counter()
    world.check_vocabulary()
    tokenizer = world.build_tokenizer()
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    judge = world.VaderJudge()

    # 1. corpus and SFT / reference model ------------------------------------------------
    reviews = world.generate_corpus(cfg.n_reviews, seed=cfg.seed)
    reference = tiny_gpt2(
        len(tokenizer), n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=cfg.n_head, n_positions=cfg.n_positions,
        seed=cfg.seed, bos_token_id=tokenizer.bos_token_id, eos_token_id=eos, pad_token_id=pad,
    )  # fmt: skip
    with timer("pretrain"):
        pretrain = train_sft(
            reference, _pretraining_rows(reviews, tokenizer),
            dataclasses.replace(
                _train_config(cfg, dev, learning_rate=cfg.pretrain_learning_rate, steps=cfg.pretrain_steps,
                              batch_size=cfg.pretrain_batch_size),  # fmt: skip
                warmup_steps=min(50, cfg.pretrain_steps // 10),
            ),
        )  # fmt: skip
    reference = pretrain.model.eval()
    progress(f"sentiment pretraining: loss {pretrain.history[-1]['loss']:.3f}")
    for p in reference.parameters():
        p.requires_grad_(False)

    # 2. prompts and preference pairs ------------------------------------------------------
    held_out = world.generate_corpus(cfg.n_train_prompts + cfg.n_eval_prompts, seed=cfg.seed + 1)
    prompts = world.make_prompts(held_out, tokenizer, seed=cfg.seed + 2, min_tokens=cfg.min_prompt_tokens,
                                 max_tokens=cfg.max_prompt_tokens)  # fmt: skip
    train_prompts, eval_prompts = prompts[: cfg.n_train_prompts], prompts[cfg.n_train_prompts :]
    with timer("pair_sampling"):
        samples = world.sample_completions(
            reference, train_prompts, num_samples=cfg.samples_per_prompt, temperature=1.0,
            max_new_tokens=cfg.max_new_tokens, eos_token_id=eos, seed=cfg.seed + 3,
        )  # fmt: skip
        completions = world.completion_texts(tokenizer, train_prompts, samples)
        rewards = judge([world.join_text(train_prompts[p].text, c) for p, c in zip(samples.prompt_index, completions)])
        pairs, dropped = world.preference_pairs(train_prompts, completions, rewards,
                                               samples_per_prompt=cfg.samples_per_prompt)  # fmt: skip
    pair_data = _pair_tensors(pairs, tokenizer, cfg.n_positions)
    chosen_len = (pair_data["chosen_labels"] != IGNORE_INDEX).sum(1).float()
    rejected_len = (pair_data["rejected_labels"] != IGNORE_INDEX).sum(1).float()

    ctx = _Context(cfg, dev, tokenizer, reference, eval_prompts, judge, timer, progress)
    reference_eval = _evaluate(ctx, reference)

    # 3. methods -------------------------------------------------------------------------
    with timer("dpo_reference_logps"):  # part of DPO's cost: one pass of pi_ref over the pairs
        sum_data = precompute_reference_logps(reference, pair_data, reduction="sum", device=dev)
    mean_data = precompute_reference_logps(reference, pair_data, reduction="mean", device=dev)
    curves = {}

    def fresh_policy() -> torch.nn.Module:
        policy = copy.deepcopy(reference).train()
        for p in policy.parameters():
            p.requires_grad_(True)
        return policy

    for beta in cfg.dpo_betas:
        with timer("dpo"):
            objective = PairwiseObjective(functools.partial(dpo_loss, beta=beta), beta=beta)
            result = train_preference(fresh_policy(), objective, sum_data, _train_config(cfg, dev))
        curves[f"{beta:g}"] = _curve(result.history, cfg.curve_every)
        _record(ctx, "DPO", "beta", beta, result.model, result.history)
    for tau in cfg.ipo_taus:
        result = train_preference(fresh_policy(), PairwiseObjective(functools.partial(ipo_loss, beta=tau), beta=tau,
                                  reduction="mean"), mean_data, _train_config(cfg, dev))  # fmt: skip
        _record(ctx, "IPO", "tau", tau, result.model, result.history)
    kto_data = _kto_rows(pair_data, pad)
    for beta in cfg.kto_betas:
        # One KTO row per completion: twice the rows of the paired data, so the same
        # number of updates sees each completion as often as DPO does.
        result = train_preference(fresh_policy(), KTOObjective(beta=beta, reference=reference), kto_data,
                                  _train_config(cfg, dev, batch_size=2 * cfg.batch_size))  # fmt: skip
        _record(ctx, "KTO", "beta", beta, result.model, result.history)
    for lam in cfg.orpo_lambdas:
        objective = ReferenceFreeObjective(lambda c, r, lam=lam: orpo_loss(c, r, -c, lam=lam), beta=lam)
        result = train_preference(fresh_policy(), objective, pair_data, _train_config(cfg, dev))
        _record(ctx, "ORPO", "lambda", lam, result.model, result.history)
    for beta in cfg.simpo_betas:
        objective = ReferenceFreeObjective(functools.partial(simpo_loss, beta=beta, gamma=beta / 2), beta=beta)
        result = train_preference(fresh_policy(), objective, pair_data, _train_config(cfg, dev))
        _record(ctx, "SimPO", "beta", beta, result.model, result.history)
    for scale in cfg.preferred_ft_lr_scales:
        result = train_sft(fresh_policy(), chosen_as_sft(pair_data),
                           _train_config(cfg, dev, learning_rate=scale * cfg.learning_rate))  # fmt: skip
        _record(ctx, "Preferred-FT", "lr_scale", scale, result.model, result.history)
    for alpha in cfg.unlikelihood_alphas:
        objective = UnlikelihoodObjective(alpha=alpha)
        result = train_preference(fresh_policy(), objective, pair_data, _train_config(cfg, dev))
        _record(ctx, "Unlikelihood", "alpha", alpha, result.model, result.history)

    # RLHF: reward model on the same pairs, then PPO against it; PPO-GT against VADER.
    with timer("reward_model"):
        reward_model = RewardModel.from_causal_lm(reference)
        for p in reward_model.parameters():
            p.requires_grad_(True)
        rm_config = _train_config(cfg, dev, steps=cfg.reward_model_steps)
        reward_model = train_reward_model(reward_model, pair_data, rm_config).model.eval()
    for p in reward_model.parameters():
        p.requires_grad_(False)
    rm_accuracy = _reward_model_accuracy(reward_model, pair_data)
    progress("sentiment reward model")
    ppo_prompts, ppo_mask = _left_padded_prompts(train_prompts, pad)

    def learned_reward(input_ids, attention_mask):
        ids, mask = _compact(input_ids, attention_mask, pad)
        return reward_model(ids, mask)

    def vader_reward(input_ids, attention_mask):
        texts = [world.decode(tokenizer, ids[mask.bool()].tolist()) for ids, mask in zip(input_ids, attention_mask)]
        return torch.tensor(judge(texts), device=input_ids.device)

    ppo_counts = {}
    ppo_methods = (("PPO", learned_reward, cfg.ppo_kl_coefs), ("PPO-GT", vader_reward, cfg.ppo_gt_kl_coefs))
    for method, reward_fn, coefs in ppo_methods:
        for kl_coef in coefs:
            ppo_config = PPOConfig(
                kl_coef=kl_coef, rollout_batch_size=cfg.ppo_rollout_batch_size, ppo_epochs=cfg.ppo_epochs,
                minibatch_size=cfg.ppo_minibatch_size, max_new_tokens=cfg.max_new_tokens, eos_token_id=eos,
            )  # fmt: skip
            with timer(method.lower()):
                result = train_ppo(fresh_policy(), reference, reward_fn, ppo_prompts, ppo_config,
                                   _train_config(cfg, dev), prompt_attention_mask=ppo_mask)  # fmt: skip
            n_rollouts = math.ceil(cfg.steps / ppo_config.updates_per_rollout())
            ppo_counts[method] = n_rollouts * cfg.ppo_rollout_batch_size
            _record(ctx, method, "kl_coef", kl_coef, result.model.lm, result.history)

    # 4. frontier, matched KL, win rates -------------------------------------------------
    frontier = {}
    for row in ctx.runs:
        frontier.setdefault(row["method"], []).append([row["kl"]["mean"], row["reward"]["mean"], row["value"]])
    for points in frontier.values():
        points.sort()
    reference_point = [reference_eval["kl"]["mean"], reference_eval["reward"]["mean"], None]
    matched = {
        other: _matched_kl(frontier["DPO"], frontier[other], reference_point, other) for other in ("PPO", "PPO-GT")
    }

    with timer("win_rates"):
        baseline = {
            t: world.judge_samples(reference, eval_prompts, tokenizer, judge, temperature=t,
                                   max_new_tokens=cfg.max_new_tokens, seed=cfg.seed + 20_001)  # fmt: skip
            for t in cfg.win_rate_temperatures
        }
        wins = {}
        for method in frontier:
            rows = [r for r in ctx.runs if r["method"] == method]
            best = max(rows, key=lambda r: r["reward"]["mean"])
            wins[method] = {
                "selected": {best["hyperparameter"]: best["value"]},
                "by_temperature": world.win_rates(
                    ctx.models[(method, best["value"])], reference, eval_prompts, tokenizer, judge,
                    temperatures=cfg.win_rate_temperatures, max_new_tokens=cfg.max_new_tokens,
                    seed=cfg.seed + 20_000, baseline_rewards=baseline,
                ),
            }  # fmt: skip

    progress("sentiment win rates")

    # 5. cost ---------------------------------------------------------------------------
    cost = _cost(cfg, reference, reward_model, timer, len(pairs), ppo_counts.get("PPO", 0))
    if dev.type == "cuda":
        peaks = cost["peak_cuda_bytes"] = dict(timer.peak_cuda_bytes)  # per stage: pretrain, dpo, ppo, ...
        if peaks.get("dpo"):
            rlhf_peak = max(peaks.get("reward_model", 0), peaks.get("ppo", 0))
            cost["ratios_rlhf_over_dpo"]["peak_cuda_bytes"] = rlhf_peak / peaks["dpo"]
    cost["wall_time_whole_run_s"] = time.perf_counter() - start

    frontier_file = {
        "sentiment_config": dataclasses.asdict(cfg),
        "world": {
            "vocab_size": len(tokenizer),
            "n_parameters": _n_params(reference),
            "corpus": {
                "n_reviews": len(reviews),
                "mean_words": sum(len(r.split()) for r in reviews) / len(reviews),
                "vader": _estimate(judge(reviews[:2000])),
            },
            "example_reviews": reviews[:3],
            "pretrain": {
                "final_loss": pretrain.history[-1]["loss"],
                "curve": [[h["step"], h["loss"]] for i, h in enumerate(pretrain.history) if i % 10 == 0],
            },
            "reference": reference_eval,
            "reward_model_pair_accuracy": rm_accuracy,
        },
        "pairs": {
            "n_prompts": len(train_prompts),
            "samples_per_prompt": cfg.samples_per_prompt,
            "n_pairs": len(pairs),
            "n_dropped": dropped,
            "mean_chosen_reward": sum(p["chosen_reward"] for p in pairs) / len(pairs),
            "mean_rejected_reward": sum(p["rejected_reward"] for p in pairs) / len(pairs),
            "length_gap": float((chosen_len - rejected_len).mean()),
            "examples": pairs[:3],
        },
        "runs": ctx.runs,
        "frontier": {m: [p[:2] for p in pts] for m, pts in frontier.items()},
        "matched_kl": matched,
    }
    frontier_file["notes"] = _notes(frontier_file, wins, cost)
    results = {
        "sentiment_frontier": frontier_file,
        "sentiment_win_rates": {
            "temperatures": list(cfg.win_rate_temperatures),
            "baseline": "the reference (SFT) policy sampled at the same temperature",
            "judge": judge.name,
            "n_prompts": len(eval_prompts),
            "methods": wins,
        },
        "sentiment_curves": {"dpo": curves, "pretrain": frontier_file["world"]["pretrain"]["curve"]},
        "sentiment_cost": cost,
    }
    return _rounded(results)


@torch.no_grad()
def _reward_model_accuracy(reward_model, pairs) -> float:
    """Share of training pairs the reward model orders correctly (in sample: a fit check, not generalisation)."""
    device = next(reward_model.parameters()).device
    correct = 0
    n = len(pairs["chosen_input_ids"])
    for start in range(0, n, 256):
        sl = slice(start, start + 256)
        chosen, rejected = (
            reward_model(pairs[f"{side}_input_ids"][sl].to(device), pairs[f"{side}_attention_mask"][sl].to(device))
            for side in ("chosen", "rejected")
        )
        correct += int((chosen > rejected).sum())
    return correct / n


def _interpolate(points: list[list[float]], x: float) -> float | None:
    """Piecewise-linear reward at KL ``x`` along ``points`` sorted by KL; None outside their range."""
    for (x0, y0, *_), (x1, y1, *_) in zip(points, points[1:]):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    if len(points) == 1 and points[0][0] == x:
        return points[0][1]
    return None


def _matched_kl(dpo: list, other: list, reference_point: list, other_name: str) -> list[dict]:
    """DPO against another method at equal KL, at every measured point of either method.

    At a point of one method, the other's reward is linearly interpolated along its own
    points sorted by KL. pi_ref (KL 0, the reference reward) counts as a point of both:
    every method starts there, and it is the limit of a very large beta or KL penalty.
    Outside the other's KL range the row has ``other`` null (no extrapolation).
    """
    dpo_line = sorted([reference_point, *dpo])
    other_line = sorted([reference_point, *other])
    rows = []
    for kl, reward, value in dpo:
        other_reward = _interpolate(other_line, kl)
        rows.append({"at": f"DPO {value:g}", "kl": kl, "dpo_reward": reward, "other_reward": other_reward})
    for kl, reward, value in other:
        dpo_reward = _interpolate(dpo_line, kl)
        rows.append({"at": f"{other_name} {value:g}", "kl": kl, "dpo_reward": dpo_reward, "other_reward": reward})
    for row in rows:
        both = row["dpo_reward"] is not None and row["other_reward"] is not None
        row["difference"] = row["dpo_reward"] - row["other_reward"] if both else None
    return sorted(rows, key=lambda r: r["kl"])


def _cost(cfg, reference, reward_model, timer: _Timer, n_pairs: int, ppo_samples: int) -> dict:
    """What one DPO run and one RLHF run (reward model + PPO) hold and spend."""
    p_policy = _n_params(reference)
    p_value_head = reference.config.hidden_size + 1
    p_reward = _n_params(reward_model)
    adam = 2  # AdamW keeps two moments per trained parameter
    dpo_state = _bytes(p_policy * (1 + 1 + adam))  # policy + grads + moments (reference log-probs precomputed)
    dpo_state_live = dpo_state + _bytes(p_policy)  # + a live reference model
    trained_ppo = p_policy + p_value_head
    ppo_state = _bytes(trained_ppo * (1 + 1 + adam) + p_policy + p_reward)  # + reference + reward model
    rm_state = _bytes(p_reward * (1 + 1 + adam))
    n_dpo, n_ppo = len(cfg.dpo_betas), len(cfg.ppo_kl_coefs)
    def per_run(seconds: dict) -> tuple[float, float, float]:
        dpo = seconds.get("dpo", 0.0) / n_dpo + seconds.get("dpo_reference_logps", 0.0)
        ppo = seconds.get("ppo", 0.0) / n_ppo
        return dpo, ppo, seconds.get("reward_model", 0.0) + ppo

    dpo_wall, ppo_wall, rlhf_wall = per_run(timer.seconds)
    dpo_cpu, ppo_cpu, rlhf_cpu = per_run(timer.cpu_seconds)
    pair_samples = cfg.samples_per_prompt * cfg.n_train_prompts
    return {
        "memory_measure": "bytes of float32 state held during training: parameters of every model in memory, "
        "plus gradients and AdamW's two moments of the trained one (computed, not sampled)",
        "dpo": {
            "models_in_memory": 1,
            "models_in_memory_note": "policy only: reference log-probs precomputed once (2 with a live reference)",
            "state_bytes": dpo_state,
            "state_bytes_live_reference": dpo_state_live,
            "training_runs": 1,
            "samples_generated": pair_samples,
            "wall_time_s": dpo_wall,
            "cpu_time_s": dpo_cpu,
        },
        "rlhf": {
            "models_in_memory": 3,
            "models_in_memory_note": "policy with value head (shared backbone), reference, reward model during PPO; "
            "the reward model is trained first, in its own run",
            "state_bytes": max(ppo_state, rm_state),
            "state_bytes_reward_model_run": rm_state,
            "state_bytes_ppo_run": ppo_state,
            "training_runs": 2,
            "samples_generated": pair_samples + ppo_samples,
            "wall_time_s": rlhf_wall,
            "wall_time_reward_model_s": timer.seconds.get("reward_model", 0.0),
            "wall_time_ppo_s": ppo_wall,
            "cpu_time_s": rlhf_cpu,
            "cpu_time_reward_model_s": timer.cpu_seconds.get("reward_model", 0.0),
            "cpu_time_ppo_s": ppo_cpu,
        },
        "ratios_rlhf_over_dpo": {
            "models_in_memory": 3 / 1,
            "state_bytes": max(ppo_state, rm_state) / dpo_state,
            "training_runs": 2 / 1,
            "samples_generated": (pair_samples + ppo_samples) / pair_samples,
            "wall_time": rlhf_wall / dpo_wall if dpo_wall else None,
            "cpu_time": rlhf_cpu / dpo_cpu if dpo_cpu else None,
        },
        "shared_by_both": {"sft_pretrain_wall_time_s": timer.seconds.get("pretrain", 0.0),
                           "pair_sampling_wall_time_s": timer.seconds.get("pair_sampling", 0.0),
                           "n_pairs": n_pairs},  # fmt: skip
        "peak_rss_bytes_whole_process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "stage_wall_time_s": dict(timer.seconds),
        "stage_cpu_time_s": dict(timer.cpu_seconds),
    }


def _notes(results: dict, wins: dict, cost: dict) -> list[str]:
    """Sentences stating what the measured numbers show (computed, not hand-written)."""
    notes = []
    ref = results["world"]["reference"]["reward"]["mean"]
    best = {}
    for row in results["runs"]:
        if row["method"] not in best or row["reward"]["mean"] > best[row["method"]]["reward"]["mean"]:
            best[row["method"]] = row
    ranking = sorted(best.values(), key=lambda r: -r["reward"]["mean"])
    notes.append(
        f"Reference (SFT) reward {ref:+.3f}. Best reward per method: "
        + ", ".join(f"{r['method']} {r['reward']['mean']:+.3f} at KL {r['kl']['mean']:.2f}" for r in ranking)
        + "."
    )
    for other, rows in results["matched_kl"].items():
        compared = [r for r in rows if r["difference"] is not None]
        if not compared:
            notes.append(f"No DPO point lies inside {other}'s KL range, so no matched-KL comparison with {other}.")
            continue
        ahead = sum(r["difference"] > 0 for r in compared)
        dpo_min_kl = min(kl for kl, _ in results["frontier"]["DPO"])
        anchored = sum(r["kl"] < dpo_min_kl for r in compared)
        notes.append(
            f"At matched KL (pi_ref as the KL-0 point of both), DPO is ahead of {other} at {ahead} of "
            f"{len(compared)} comparable points "
            f"(mean difference {sum(r['difference'] for r in compared) / len(compared):+.3f})."
            + (f" {anchored} of them lie below DPO's smallest measured KL ({dpo_min_kl:.2f}), where DPO's reward is "
               "read off the straight line from pi_ref, which understates a concave frontier." if anchored else "")
        )
    for method, entry in wins.items():
        by_t = entry["by_temperature"]
        t_best = max(by_t, key=lambda t: by_t[t]["win_rate"])
        t_worst = min(by_t, key=lambda t: by_t[t]["win_rate"])
        notes.append(
            f"{method} ({', '.join(f'{k}={v:g}' for k, v in entry['selected'].items())}) wins "
            f"{by_t[t_best]['win_rate']:.0%} against the reference at its best temperature {t_best} "
            f"and {by_t[t_worst]['win_rate']:.0%} at its worst, {t_worst}."
        )
    notes.extend(_diagnostics(results, wins))
    ratios = cost["ratios_rlhf_over_dpo"]
    notes.append(
        f"RLHF against DPO: {cost['rlhf']['models_in_memory']} models in memory against "
        f"{cost['dpo']['models_in_memory']}, {ratios['state_bytes']:.1f}x the state bytes, "
        f"{ratios['training_runs']:.0f}x the training runs, {ratios['samples_generated']:.1f}x the samples generated "
        "(wall and CPU times in sentiment_cost.json)."
    )
    return notes


def _diagnostics(results: dict, wins: dict) -> list[str]:
    """Facts that explain the ranking, read off the same numbers."""
    runs = results["runs"]
    notes = []
    ppo = [r for r in runs if r["method"] == "PPO"]
    if ppo:
        best = max(ppo, key=lambda r: r["reward"]["mean"])
        score = best["final_metrics"].get("score")
        notes.append(
            f"PPO optimises a learned proxy: its reward model orders "
            f"{results['world']['reward_model_pair_accuracy']:.0%} of its own training pairs correctly, and at "
            f"kl_coef={best['value']:g} PPO's last rollouts scored {score:+.2f} under it while VADER gave the "
            f"evaluated policy {best['reward']['mean']:+.3f}. PPO-GT, with VADER itself as reward, shows how much of "
            "the gap to DPO is the proxy and how much the optimiser."
            if score is not None else "PPO's final rollout score was not logged."
        )
    for method in ("SimPO", "IPO", "Unlikelihood"):
        rows = [r for r in runs if r["method"] == method]
        if rows:
            far = max(rows, key=lambda r: r["kl"]["mean"])
            notes.append(
                f"{method} reaches KL up to {far['kl']['mean']:.1f} ({far['hyperparameter']}={far['value']:g}); "
                f"{far['truncated_fraction']:.0%} of its samples hit the length limit there."
                + (" So far from pi_ref the reviews stop being grammatical (see the run's example) while VADER "
                   "still rewards their positive words." if far["kl"]["mean"] > 20 else "")
            )
    selected = ", ".join(f"{m} {next(iter(w['selected'].items()))[0]}={next(iter(w['selected'].values())):g}"
                         for m, w in wins.items())  # fmt: skip
    notes.append(
        "Win rates use each method's highest-reward setting whatever its KL (" + selected + "), so they rank "
        "how positive a method can get, not its reward at a given KL: that is the frontier's job."
    )
    gap = results["pairs"]["length_gap"]
    notes.append(f"Chosen completions are {gap:+.2f} tokens longer than rejected ones on average (a length bias "
                 "that preference methods can pick up).")  # fmt: skip
    return notes




# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="smoke")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="files go to OUT/<config>/sentiment_*.json")
    args = parser.parse_args(argv)
    for path in run(args.config, out_dir=args.out, device=args.device, progress=lambda label: print(label, flush=True)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
