"""The sentiment-world experiments (the DPO paper's IMDb experiment, at laptop scale).

    dpo-ref reproduce --config cpu --only sentiment

Each seed runs these stages, on the world of ``cfg.world`` (the same corpus, prompts and
reference for every seed; see :mod:`dpo_ref.worlds.sentiment`):

1. :func:`shared_world`: the world built by
   :func:`~dpo_ref.worlds.sentiment.build_sentiment_world`: the review corpus, the
   word-level tokenizer, and a tiny GPT-2 pretrained on the reviews with the trainer's SFT
   (both the SFT model and pi_ref), pretrained once for all seeds;
2. :meth:`~dpo_ref.worlds.sentiment.SentimentWorld.preference_pairs`: 4 samples of pi_ref
   for every training prompt (seeded by the seed), scored by VADER, all 6 pairs of them
   (ties dropped);
3. :func:`offline_runs`: every offline method over its grid, from pi_ref, on exactly
   those pairs, with the same optimiser, learning rate and number of updates;
4. :func:`rlhf_runs`: a reward model on the same pairs, then PPO against it, and PPO-GT
   with VADER itself as the reward, both rewards normalised under pi_ref's samples, over
   the same KL grid; each run's own objective measured at its start and end;
5. every policy evaluated on validation prompts (which select each method's setting) and
   on test prompts (which every reported number comes from): VADER reward, KL(pi || pi_ref)
   and completion length, from samples at temperature 1; on test prompts also at
   ``checkpoints`` points along training, so each method has trained points near pi_ref;
   then :func:`win_rates` of each method's selected setting against pi_ref over sampling temperatures, on test prompts;
6. on seed 0, what RLHF costs against DPO (:mod:`dpo_ref.experiments.costs`).

Stages 1 and 2 are deterministic; after them the seed splits into two parts that may run
in separate processes (:func:`run_part`): ``offline`` (stage 3, and stage 5 for its
methods) and ``rlhf`` (stage 4, and stage 5 for PPO and PPO-GT). Every setting is
selected within its own method, so each part selects and judges its own; :func:`finish`
joins them and adds stage 6.

:func:`dpo_ref.experiments.sentiment_summary.summarise` turns the seeds into intervals,
envelopes and verdicts. All rewards are VADER compound scores in [-1, 1]; all KLs are
sequence-level, in nats, estimated from samples; every per-seed estimate is ``{"mean",
"stderr", "n"}`` over samples. The labels are deterministic (VADER scores a text the same
way every time, and the higher score wins): IPO's regime, where DPO has no finite optimum.

``sentiment_seed<k>.json``
    ``seed``; ``world`` (``vocab_size``, ``n_parameters``, ``corpus``, ``example_reviews``,
    ``pretrain``); ``reference`` (pi_ref's ``val`` and ``test`` evaluations, and
    ``length_bins``: its test reward by completion length, for the length-controlled
    view); ``pairs`` (``n_pairs``, ``n_dropped``, ``mean_chosen_reward``,
    ``mean_rejected_reward``, ``length_gap``, ``examples``); ``reward_model``
    (``pair_accuracy``); ``runs``: one RUN record per (method, setting), the record both
    worlds write (:mod:`dpo_ref.experiments.summary`): ``params``, ``final`` (the test
    prompts' evaluation: estimates of reward, KL and length, the share of completions cut
    at the cap, an example), ``trajectory`` (``{"step", "reward", "kl", "length"}`` on the
    test prompts at ``checkpoints`` steps along training), ``train_metrics`` (TRL's
    names), and besides ``val`` (the validation prompts' evaluation, which selects the
    setting); for PPO ``objective`` (``start``, ``end``, ``rise``: estimates on validation
    samples, ``rose``) and ``diagnostics``;
    ``selected``: each method's setting (``params``) with the highest validation reward
    (failed PPO runs excluded); ``win_rates``: per method, ``{"0.25": {"win_rate", "stderr", ...}}``
    on test prompts; ``curves``: DPO's logged metrics per beta; ``cost`` (seed 0 only).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import torch

from dpo_ref.experiments import Group
from dpo_ref.experiments.configs import SentimentConfig, offline_grid
from dpo_ref.experiments.costs import StageTimer, model_sizes, peak_rss_bytes, rlhf_against_dpo
from dpo_ref.experiments.shared_worlds import reference_once
from dpo_ref.experiments.summary import setting_key
from dpo_ref.logps import IGNORE_INDEX
from dpo_ref.methods import DPO, METHODS, OFFLINE_METHODS, PPO, PPO_GT, TrainingData
from dpo_ref.runtime import resolve_device
from dpo_ref.train import (
    PPOConfig,
    RewardModel,
    TrainConfig,
    train_ppo,
    train_preference,
    train_reward_model,
)
from dpo_ref.train.ppo import diagnostics as ppo_diagnostics
from dpo_ref.worlds.sentiment import (
    PreferenceData,
    SentimentWorld,
    build_sentiment_world,
    completion_texts,
    decode,
    join_text,
    judge_samples,
    left_padded_prompts,
    mean_and_stderr,
    pretrain_reference,
    prompt_completion_batch,
    right_aligned,
)
from dpo_ref.worlds.sentiment import win_rates as sentiment_win_rates

__all__ = ["PARTS", "run_part", "finish", "count_runs", "GROUP"]

Progress = Callable[[str], None]


PARTS = {"offline": 0.5, "rlhf": 0.5}  # each part's share of a seed's time, roughly (measured on cpu)


def count_runs(cfg: SentimentConfig, part: str) -> int:
    """How many times :func:`run_part` calls ``progress``: pretraining, each trained model, win rates."""
    offline = part == "offline"
    runs = sum(len(values) for name, values in cfg.grids.items() if (name in OFFLINE_METHODS) == offline)
    return 1 + runs + 1 + (0 if offline else 1)  # and the reward model


class Runner:
    """What every run of one seed shares: the config, the world, the seed, its budget, its timer and progress,
    and the policies trained so far (for the win rates)."""

    def __init__(self, cfg: SentimentConfig, world: SentimentWorld, seed: int, progress: Progress, timer: StageTimer):
        self.cfg, self.world, self.seed, self.progress, self.timer = cfg, world, seed, progress, timer
        self.device = world.device
        self.models: dict[tuple[str, tuple], torch.nn.Module] = {}  # (method, setting_key(params)) -> trained policy

    def train_config(self, *, learning_rate=None, steps=None, batch_size=None, log_every=1) -> TrainConfig:
        cfg = self.cfg
        return TrainConfig(
            steps=steps or cfg.steps,
            batch_size=batch_size or cfg.batch_size,
            learning_rate=learning_rate or cfg.learning_rate,
            warmup_steps=cfg.warmup_steps,
            seed=self.seed,
            device=str(self.device),
            log_every=log_every,
            group_by_length=cfg.group_by_length,
        )

    def evaluate(self, policy: torch.nn.Module, split: str, *, num_samples: int | None = None, **kwargs) -> dict:
        """The world's evaluation on ``split``, with this seed's sampling seed for that split."""
        seed = 10_000 + 100 * self.seed + (0 if split == "val" else 1)
        return self.world.evaluate(
            policy, split, seed=seed, num_samples=num_samples or self.cfg.eval_samples_per_prompt, **kwargs
        )

    def along_training(self, policy: torch.nn.Module, steps: int, log_every: int = 1) -> tuple[Callable, list]:
        """An ``on_step`` for the trainer that evaluates ``policy`` (trained in place) on the test prompts at
        ``cfg.checkpoints`` logged steps spread evenly before the end, and the list it fills with
        ``{"step", "reward", "kl", "length"}``: the run's trained points between pi_ref and its end."""
        n = self.cfg.checkpoints
        at = {log_every * round(k * steps / (n + 1) / log_every) for k in range(1, n + 1)}
        trajectory: list[dict] = []

        def on_step(step: int, record: dict) -> None:
            if step in at and 0 < step < steps:
                was_training = policy.training
                evaluation = self.evaluate(policy.eval(), "test")
                policy.train(was_training)
                trajectory.append({"step": step, **{q: evaluation[q] for q in ("reward", "kl", "length")}})

        return on_step, trajectory

    def record(self, method: str, params: dict, policy: torch.nn.Module, history, **extra) -> dict:
        """The run's RUN record (:mod:`dpo_ref.experiments.summary`), its policy evaluated on validation prompts
        (``val``, which select each method's setting) and on test prompts (``final``); the policy kept for the
        win rates."""
        policy = policy.eval()
        row = {
            "method": method,
            "seed": self.seed,
            "params": params,
            "val": self.evaluate(policy, "val"),
            "final": self.evaluate(policy, "test"),
            "train_metrics": {k: v for k, v in (history[-1] if history else {}).items() if k != "step"},
            **extra,
        }
        self.models[(method, setting_key(params))] = policy
        self.progress(
            f"sentiment seed {self.seed} {METHODS[method].label} {params}: "
            f"test reward {row['final']['reward']['mean']:+.3f}, KL {row['final']['kl']['mean']:.2f}"
        )
        return row


def run_part(
    cfg: SentimentConfig, seed: int, part: str, *, device: str = "auto", progress: Progress | None = None
) -> dict:
    """One part of a seed, ``"offline"`` or ``"rlhf"``: what :func:`finish` joins into ``sentiment_seed<seed>.json``."""
    dev = resolve_device(device)
    timer = StageTimer(dev)
    start = time.perf_counter()
    run = Runner(cfg, shared_world(cfg, dev, timer), seed, progress or (lambda _: None), timer)
    history = run.world.pretrain_history
    run.progress(f"sentiment seed {seed} pretraining: loss {history[-1]['loss']:.3f}")
    with timer("pair_sampling"):
        pairs = run.world.preference_pairs(seed=3 + 100 * seed)
    if part == "offline":
        test = run.evaluate(run.world.reference, "test", keep_samples=True)
        bins = length_bins(test.pop("samples"))  # the same samples give pi_ref's reward by length
        reference = {"val": run.evaluate(run.world.reference, "val"), "test": test}
        runs, curves = offline_runs(run, pairs)
        out = {
            "world": run.world.summary(),
            "reference": {**reference, "length_bins": bins},
            "pairs": _pairs_summary(run.world, pairs),
            "curves": curves,
        }
    else:
        reward_model, runs, ppo_samples = rlhf_runs(run, pairs)
        out = {
            "reward_model": {"pair_accuracy": _reward_model_accuracy(reward_model, pairs.tensors)},
            "sizes": model_sizes(run.world.reference, reward_model),
            "ppo_samples": ppo_samples,
        }
    selected = select(runs)
    return {
        **out,
        "runs": runs,
        "selected": selected,
        "win_rates": win_rates(run, selected),
        "n_pairs": len(pairs.pairs),
        "seconds": timer.seconds,
        "cpu_seconds": timer.cpu_seconds,
        "peak_rss": peak_rss_bytes(),
        "wall_time_s": time.perf_counter() - start,
    }


def finish(cfg: SentimentConfig, seed: int, parts: dict[str, dict]) -> dict:
    """The two parts of a seed joined: the contents of ``sentiment_seed<seed>.json``."""
    offline, rlhf = parts["offline"], parts["rlhf"]
    out = {
        "seed": seed,
        "world": offline["world"],
        "reference": offline["reference"],
        "pairs": offline["pairs"],
        "reward_model": rlhf["reward_model"],
        "runs": offline["runs"] + rlhf["runs"],
        "selected": {**offline["selected"], **rlhf["selected"]},
        "win_rates": {**offline["win_rates"], **rlhf["win_rates"]},
        "curves": offline["curves"],
    }
    if seed == cfg.seeds[0]:
        # each part timed pretraining and pair sampling, which both share: count those once
        shared = ("pretrain", "pair_sampling")
        seconds, cpu_seconds = (
            {**offline[key], **{k: v for k, v in rlhf[key].items() if k not in shared}}
            for key in ("seconds", "cpu_seconds")
        )
        seconds["win_rates"] = offline["seconds"]["win_rates"] + rlhf["seconds"]["win_rates"]
        cpu_seconds["win_rates"] = offline["cpu_seconds"]["win_rates"] + rlhf["cpu_seconds"]["win_rates"]
        out["cost"] = rlhf_against_dpo(
            cfg,
            rlhf["sizes"],
            seconds,
            cpu_seconds,
            n_pairs=rlhf["n_pairs"],
            ppo_samples=rlhf["ppo_samples"],
            peak_rss=max(offline["peak_rss"], rlhf["peak_rss"]),
        )
        out["cost"]["wall_time_whole_run_s"] = offline["wall_time_s"] + rlhf["wall_time_s"]
    return _rounded(out)


# --------------------------------------------------------------------------- stages


def shared_world(cfg: SentimentConfig, device: torch.device, timer: StageTimer) -> SentimentWorld:
    """The world every seed shares, its reference pretrained once (:mod:`dpo_ref.experiments.shared_worlds`)."""

    def pretrain() -> dict:
        with timer("pretrain"):
            pretrained = pretrain_reference(cfg.world, device)
        return {**pretrained, "seconds": timer.seconds["pretrain"], "cpu_seconds": timer.cpu_seconds["pretrain"]}

    pretrained = reference_once("sentiment-reference", cfg.world, device, pretrain)
    timer.seconds["pretrain"] = pretrained["seconds"]  # what pretraining cost, whichever seed paid it
    timer.cpu_seconds["pretrain"] = pretrained["cpu_seconds"]
    return build_sentiment_world(cfg.world, device=device, pretrained=pretrained)


def offline_runs(run: Runner, pairs: PreferenceData) -> tuple[list[dict], dict]:
    """Every offline method over its grid, from pi_ref, on the same pairs and budget: the runs' records, and
    DPO's logged metrics per beta."""
    cfg, world = run.cfg, run.world
    data = TrainingData(
        pairs.tensors, reference=world.reference, pad_token_id=world.tokenizer.pad_token_id, device=run.device
    )
    with run.timer("dpo_reference_logps"):  # part of DPO's cost: one pass of pi_ref over the pairs
        data.rows_for(DPO)
    records, curves = [], {}
    for name, value in offline_grid(cfg.grids):
        method = METHODS[name]
        params, lr_scale = method.grid_point(value)
        # the same pairs per update for every method: KTO's batches hold its two rows per pair
        config = run.train_config(
            learning_rate=lr_scale * cfg.learning_rate, batch_size=method.rows_per_pair * cfg.batch_size
        )
        policy = world.new_policy()
        on_step, trajectory = run.along_training(policy, config.steps)
        with run.timer(name):
            result = train_preference(
                policy,
                method.objective(reference=world.reference, **params),
                data.rows_for(method),
                config,
                on_step=on_step,
            )
        if name == DPO:
            curves[f"{value:g}"] = _curve(result.history, cfg.curve_every)
        records.append(run.record(name, method.setting(value), result.model, result.history, trajectory=trajectory))
    return records, curves


def rlhf_runs(run: Runner, pairs: PreferenceData) -> tuple[torch.nn.Module, list[dict], int]:
    """A reward model on the same pairs, then PPO against it; PPO-GT against VADER itself. The reward model,
    the runs' records, and how many completions one PPO run samples."""
    cfg, world = run.cfg, run.world
    with run.timer("reward_model"):
        reward_model = RewardModel.from_causal_lm(world.reference).requires_grad_(True)
        reward_model = train_reward_model(reward_model, pairs.tensors, run.train_config(steps=cfg.reward_model_steps))
    reward_model = reward_model.model.eval().requires_grad_(False)
    run.progress(f"sentiment seed {run.seed} reward model")
    rewards = {
        PPO: _normalised(world, pairs, _reward_model_scorer(world, reward_model)),
        PPO_GT: _normalised(world, pairs, _vader_scorer(world)),
    }
    prompts, prompt_mask = left_padded_prompts(world.prompts["train"], world.tokenizer.pad_token_id)
    objective_samples = cfg.objective_samples_per_prompt
    # pi_ref's samples, scored by both rewards: where each PPO objective starts
    scorers = {name: fn.scorer for name, fn in rewards.items()}
    start = run.evaluate(world.reference, "val", num_samples=objective_samples, scorers=scorers, keep_samples=True)
    start = start["samples"]
    records, ppo_samples = [], 0
    for name in rewards:
        for kl_coef in cfg.grids[name]:
            ppo_config = PPOConfig(
                kl_coef=kl_coef,
                rollout_batch_size=cfg.ppo_rollout_batch_size,
                ppo_epochs=cfg.ppo_epochs,
                minibatch_size=cfg.ppo_minibatch_size,
                max_new_tokens=world.config.max_new_tokens,
                eos_token_id=world.tokenizer.eos_token_id,
            )
            config = dataclasses.replace(
                run.train_config(
                    learning_rate=cfg.ppo_learning_rate, steps=cfg.ppo_steps, log_every=ppo_config.updates_per_rollout()
                ),
                warmup_steps=0,
            )
            policy = world.new_policy()
            on_step, trajectory = run.along_training(policy, config.steps, config.log_every)
            with run.timer(name):
                result = train_ppo(
                    policy,
                    world.reference,
                    rewards[name],
                    prompts,
                    ppo_config,
                    config,
                    prompt_attention_mask=prompt_mask,
                    on_step=on_step,
                )
            ppo_samples = math.ceil(cfg.ppo_steps / ppo_config.updates_per_rollout()) * cfg.ppo_rollout_batch_size
            end = run.evaluate(
                result.model.lm.eval(),
                "val",
                num_samples=objective_samples,
                scorers={"score": rewards[name].scorer},
                keep_samples=True,
            )
            diagnostics = ppo_diagnostics(result.history)
            after = end["samples"]
            objective = _objective((start[name], start["log_ratio"]), (after["score"], after["log_ratio"]), kl_coef)
            records.append(
                run.record(
                    name,
                    {"kl_coef": kl_coef},
                    result.model.lm,
                    result.history,
                    diagnostics=diagnostics,
                    objective=objective,
                    trajectory=trajectory,
                )
            )
    return reward_model, records, ppo_samples


class _Reward:
    """A reward for PPO, normalised to mean 0 and standard deviation 1 over pi_ref's samples."""

    def __init__(self, scorer, mean: float, std: float):
        self.scorer, self.mean, self.std = scorer, mean, std

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return (self.scorer.of_ids(input_ids, attention_mask) - self.mean) / self.std


def _normalised(world: SentimentWorld, pairs: PreferenceData, scorer) -> _Reward:
    values = scorer(world.prompts["train"], pairs.samples)  # pi_ref's samples of the training prompts
    return _Reward(scorer, float(values.mean()), float(values.std().clamp(min=1e-6)))


def _vader_scorer(world: SentimentWorld):
    tokenizer, judge = world.tokenizer, world.judge

    def of_ids(input_ids, attention_mask):
        texts = [decode(tokenizer, ids[mask.bool()].tolist()) for ids, mask in zip(input_ids, attention_mask)]
        return torch.tensor(judge(texts), device=input_ids.device, dtype=torch.float32)

    def scorer(prompts, samples):
        texts = completion_texts(tokenizer, prompts, samples)
        return torch.tensor(judge([join_text(prompts[p].text, c) for p, c in zip(samples.prompt_index, texts)]))

    scorer.of_ids = of_ids
    return scorer


def _reward_model_scorer(world: SentimentWorld, model: torch.nn.Module):
    pad, device = world.tokenizer.pad_token_id, world.device

    @torch.no_grad()
    def of_ids(input_ids, attention_mask):
        return model(*right_aligned(input_ids, attention_mask, pad))

    @torch.no_grad()
    def scorer(prompts, samples):
        ids, mask, _ = prompt_completion_batch(prompts, samples, pad, device)
        return model(ids, mask).cpu()

    scorer.of_ids = of_ids
    return scorer


def _objective(start: tuple[list, list], end: tuple[list, list], kl_coef: float) -> dict:
    """PPO's own objective, E[normalised score] - kl_coef * KL, on validation samples at the start
    (pi_ref) and the end, each given as ``(scores, log-ratios)`` per sample; it rose when the
    increase is more than two standard errors."""

    def objective(scores: list, log_ratios: list) -> dict:
        return mean_and_stderr([v - kl_coef * k for v, k in zip(scores, log_ratios)]).as_dict()

    before, after = objective(*start), objective(*end)
    rise = after["mean"] - before["mean"]
    stderr = math.hypot(before["stderr"], after["stderr"])
    return {"start": before, "end": after, "rise": rise, "rise_stderr": stderr, "rose": rise > 2 * stderr}


def select(runs: list[dict]) -> dict[str, dict]:
    """Each method's setting with the highest validation reward (PPO runs whose objective did not rise excluded):
    ``{method: {"params": ...}}``."""
    best: dict[str, dict] = {}
    for row in runs:
        if row.get("objective", {}).get("rose", True) and (
            row["method"] not in best or row["val"]["reward"]["mean"] > best[row["method"]]["val"]["reward"]["mean"]
        ):
            best[row["method"]] = row
    return {m: {"params": r["params"]} for m, r in best.items()}


def win_rates(run: Runner, selected: dict[str, dict]) -> dict:
    """Each method's selected setting against pi_ref, one completion each per test prompt, per temperature."""
    cfg, world, test = run.cfg, run.world, run.world.prompts["test"]
    with run.timer("win_rates"):
        baseline = {
            t: judge_samples(
                world.reference,
                test,
                world.tokenizer,
                world.judge,
                temperature=t,
                max_new_tokens=world.config.max_new_tokens,
                seed=20_001 + 100 * run.seed,
            )
            for t in cfg.win_rate_temperatures
        }
        wins = {
            method: sentiment_win_rates(
                run.models[(method, setting_key(choice["params"]))],
                world.reference,
                test,
                world.tokenizer,
                world.judge,
                temperatures=cfg.win_rate_temperatures,
                max_new_tokens=world.config.max_new_tokens,
                seed=20_000 + 100 * run.seed,
                baseline_rewards=baseline,
            )
            for method, choice in selected.items()
        }
    run.progress(f"sentiment seed {run.seed} win rates")
    return wins


def length_bins(samples: dict, n_bins: int = 6) -> list[dict]:
    """pi_ref's test reward by completion length, from its evaluation's ``samples``: what length alone buys,
    for the length-controlled view."""
    pairs = sorted(zip(samples["length"], samples["reward"]))
    size = math.ceil(len(pairs) / n_bins)
    bins = []
    for start in range(0, len(pairs), size):
        chunk = pairs[start : start + size]
        bins.append(
            {
                "length": sum(p[0] for p in chunk) / len(chunk),
                "reward": sum(p[1] for p in chunk) / len(chunk),
                "n": len(chunk),
            }
        )
    return bins


# --------------------------------------------------------------------------- summaries


def _pairs_summary(world: SentimentWorld, data: PreferenceData) -> dict:
    pairs, tensors = data.pairs, data.tensors
    chosen_len = (tensors["chosen_labels"] != IGNORE_INDEX).sum(1).float()
    rejected_len = (tensors["rejected_labels"] != IGNORE_INDEX).sum(1).float()
    return {
        "n_prompts": len(world.prompts["train"]),
        "samples_per_prompt": world.config.samples_per_prompt,
        "n_pairs": len(pairs),
        "n_dropped": data.dropped,
        "mean_chosen_reward": sum(p["chosen_reward"] for p in pairs) / len(pairs),
        "mean_rejected_reward": sum(p["rejected_reward"] for p in pairs) / len(pairs),
        "length_gap": float((chosen_len - rejected_len).mean()),
        "examples": pairs[:3],
    }


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


def _curve(history: list[dict], every: int) -> dict[str, list]:
    names = (
        "step",
        "loss",
        "rewards/chosen",
        "rewards/rejected",
        "rewards/margins",
        "rewards/accuracies",
        "logps/chosen",
        "logps/rejected",
    )
    kept = [h for i, h in enumerate(history) if i % every == 0 or i == len(history) - 1]
    return {name: [h.get(name) for h in kept] for name in names}


def _rounded(obj, digits: int = 6):
    """Round floats for the JSON file (keeps diffs small; the same run gives the same digits)."""
    if isinstance(obj, float):
        return round(obj, digits) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_rounded(v, digits) for v in obj]
    return obj


def _summarise(config, per_seed: dict[int, dict[str, dict]]) -> dict[str, dict]:
    from dpo_ref.experiments.sentiment_summary import summarise

    seeds = {s: files[f"sentiment_seed{s}"] for s, files in per_seed.items()}
    return {"sentiment_summary": summarise(config.sentiment, seeds)}


GROUP = Group(
    name="sentiment",
    world="sentiment",
    parts=PARTS,
    run_part=lambda config, seed, part, device, progress: run_part(
        config.sentiment, seed, part, device=device, progress=progress
    ),
    finish=lambda config, seed, parts: {f"sentiment_seed{seed}": finish(config.sentiment, seed, parts)},
    count_runs=lambda config, part: count_runs(config.sentiment, part),
    summarise=_summarise,
)
