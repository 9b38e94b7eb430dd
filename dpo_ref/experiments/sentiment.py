"""The sentiment-world experiments (the DPO paper's IMDb experiment, at laptop scale).

    dpo-ref reproduce --config cpu --only sentiment

Each seed runs these stages, on a world built from ``world_seed`` (the same corpus,
prompts and reference for every seed; see :mod:`dpo_ref.worlds.sentiment`):

1. :func:`build_reference`: the review corpus, the word-level tokenizer, and a tiny
   GPT-2 pretrained on the reviews with the trainer's SFT: both the SFT model and pi_ref;
2. :func:`make_pairs`: 4 samples of pi_ref for every training prompt (seeded by the
   seed), scored by VADER, all 6 pairs of them (ties dropped);
3. :func:`train_offline`: every offline method over its grid, from pi_ref, on exactly
   those pairs, with the same optimiser, learning rate and number of updates;
4. :func:`train_rlhf`: a reward model on the same pairs, then PPO against it, and PPO-GT
   with VADER itself as the reward, both rewards normalised under pi_ref's samples, over
   the same KL grid; each run's own objective measured at its start and end;
5. every policy evaluated on validation prompts (which select each method's setting) and
   on test prompts (which every reported number comes from): VADER reward, KL(pi || pi_ref)
   and completion length, from samples at temperature 1; on test prompts also at
   ``checkpoints`` points along training, so each method has trained points near pi_ref; then :func:`win_rates` of each
   method's selected setting against pi_ref over sampling temperatures, on test prompts;
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
    (``pair_accuracy``, ``score_scale``); ``runs``: one per (method, setting):
    ``method``, ``seed``, ``hyperparameter``, ``value``, ``val``, ``test`` (evaluations),
    ``trajectory`` (``{"step", "reward", "kl", "length"}`` on the test prompts at
    ``checkpoints`` steps along training), ``final_metrics`` (TRL's names), and for PPO ``objective`` (``start``, ``end``,
    ``rise``: estimates on validation samples, ``rose``) and ``diagnostics``;
    ``selected``: each method's setting with the highest validation reward (failed PPO
    runs excluded); ``win_rates``: per method, ``{"0.25": {"win_rate", "stderr", ...}}``
    on test prompts; ``curves``: DPO's logged metrics per beta; ``cost`` (seed 0 only).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from dpo_ref.experiments import Group
from dpo_ref.experiments.configs import SentimentConfig
from dpo_ref.experiments.costs import StageTimer, model_sizes, n_params, peak_rss_bytes, rlhf_against_dpo
from dpo_ref.experiments.shared_worlds import trained_once
from dpo_ref.logps import IGNORE_INDEX
from dpo_ref.methods import METHODS, OFFLINE_METHODS, TrainingData
from dpo_ref.models import tiny_gpt2
from dpo_ref.runtime import resolve_device
from dpo_ref.train import (
    PPOConfig,
    RewardModel,
    TrainConfig,
    train_ppo,
    train_preference,
    train_reward_model,
    train_sft,
)
from dpo_ref.train.ppo import diagnostics as ppo_diagnostics
from dpo_ref.worlds import sentiment as world

__all__ = ["PARTS", "run_part", "finish", "count_runs", "GROUP"]

Progress = Callable[[str], None]


PARTS = {"offline": 0.5, "rlhf": 0.5}  # each part's share of a seed's time, roughly (measured on cpu)


def count_runs(cfg: SentimentConfig, part: str) -> int:
    """How many times :func:`run_part` calls ``progress``: pretraining, each trained model, win rates."""
    offline = part == "offline"
    runs = sum(len(values) for name, values in cfg.grids.items() if (name in OFFLINE_METHODS) == offline)
    return 1 + runs + 1 + (0 if offline else 1)  # and the reward model


@dataclass
class _Context:
    """What the stages of one seed share: the config, the world, and what has been measured."""

    cfg: SentimentConfig
    seed: int
    device: torch.device
    progress: Progress
    timer: StageTimer
    tokenizer: object = None
    judge: world.VaderJudge = field(default_factory=world.VaderJudge)
    reviews: list = field(default_factory=list)
    reference: torch.nn.Module | None = None
    pretrain_history: list = field(default_factory=list)
    prompts: dict = field(default_factory=dict)  # "train", "val", "test" -> prompts
    pairs: list = field(default_factory=list)  # pair dicts: prompt, chosen, rejected and their rewards
    dropped: dict = field(default_factory=dict)
    pair_data: dict = field(default_factory=dict)  # the pairs as padded tensors
    reference_samples: world.Samples | None = None  # pi_ref's samples of the training prompts (the pairs' source)
    runs: list = field(default_factory=list)  # one evaluated row per (method, setting)
    models: dict = field(default_factory=dict)  # (method, value) -> trained policy
    curves: dict = field(default_factory=dict)  # DPO's logged metrics per beta
    reward_model: torch.nn.Module | None = None
    ppo_samples: int = 0  # completions one PPO run samples

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

    def fresh_policy(self) -> torch.nn.Module:
        return copy.deepcopy(self.reference).train().requires_grad_(True)

    def evaluate(self, policy: torch.nn.Module, split: str, *, num_samples: int | None = None, **kwargs) -> dict:
        cfg = self.cfg
        return world.evaluate_policy(
            policy,
            self.reference,
            self.prompts[split],
            self.tokenizer,
            self.judge,
            num_samples=num_samples or cfg.eval_samples_per_prompt,
            max_new_tokens=cfg.max_new_tokens,
            seed=10_000 + 100 * self.seed + (0 if split == "val" else 1),
            **kwargs,
        )

    def record(
        self,
        method: str,
        hyperparameter: str,
        value: float,
        policy: torch.nn.Module,
        history,
        *,
        val: dict | None = None,
        **extra,
    ) -> dict:
        policy = policy.eval()
        row = {
            "method": method,
            "seed": self.seed,
            "hyperparameter": hyperparameter,
            "value": value,
            "val": val or self.evaluate(policy, "val"),
            "test": self.evaluate(policy, "test"),
            "final_metrics": {k: v for k, v in (history[-1] if history else {}).items() if k != "step"},
            **extra,
        }
        self.runs.append(row)
        self.models[(method, value)] = policy
        self.progress(
            f"sentiment seed {self.seed} {METHODS[method].label} {hyperparameter}={value:g}: "
            f"test reward {row['test']['reward']['mean']:+.3f}, KL {row['test']['kl']['mean']:.2f}"
        )
        return row


def run_part(
    cfg: SentimentConfig, seed: int, part: str, *, device: str = "auto", progress: Progress | None = None
) -> dict:
    """One part of a seed, ``"offline"`` or ``"rlhf"``: what :func:`finish` joins into ``sentiment_seed<seed>.json``."""
    dev = resolve_device(device)
    ctx = _Context(cfg, seed, dev, progress or (lambda _: None), StageTimer(dev))
    start = time.perf_counter()
    build_reference(ctx)
    make_pairs(ctx)
    if part == "offline":
        test = ctx.evaluate(ctx.reference, "test", keep_samples=True)
        bins = length_bins(test.pop("samples"))  # the same samples give pi_ref's reward by length
        reference = {"val": ctx.evaluate(ctx.reference, "val"), "test": test}
        train_offline(ctx)
        out = {
            "world": _world(ctx),
            "reference": {**reference, "length_bins": bins},
            "pairs": _pairs_summary(ctx),
            "curves": ctx.curves,
        }
    else:
        train_rlhf(ctx)
        out = {
            "reward_model": {"pair_accuracy": _reward_model_accuracy(ctx.reward_model, ctx.pair_data)},
            "sizes": model_sizes(ctx.reference, ctx.reward_model),
            "ppo_samples": ctx.ppo_samples,
        }
    selected = select(ctx.runs)
    return {
        **out,
        "runs": ctx.runs,
        "selected": selected,
        "win_rates": win_rates(ctx, selected),
        "n_pairs": len(ctx.pairs),
        "seconds": ctx.timer.seconds,
        "cpu_seconds": ctx.timer.cpu_seconds,
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


def build_reference(ctx: _Context) -> None:
    """The corpus, the word-level tokenizer, the tiny GPT-2 pretrained on the reviews, and the prompts."""
    cfg = ctx.cfg
    world.check_vocabulary()
    ctx.tokenizer = tokenizer = world.build_tokenizer()
    ctx.reviews = world.generate_corpus(cfg.n_reviews, seed=cfg.world_seed)
    model = tiny_gpt2(
        len(tokenizer),
        n_layer=cfg.n_layer,
        n_embd=cfg.n_embd,
        n_head=cfg.n_head,
        n_positions=cfg.n_positions,
        seed=cfg.world_seed,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    train = dataclasses.replace(
        ctx.train_config(
            learning_rate=cfg.pretrain_learning_rate, steps=cfg.pretrain_steps, batch_size=cfg.pretrain_batch_size
        ),
        warmup_steps=min(50, cfg.pretrain_steps // 10),
        seed=cfg.world_seed,
        group_by_length=False,  # the reference belongs to the world, whatever the experiments' batching
    )

    def pretrain() -> dict:
        with ctx.timer("pretrain"):
            result = train_sft(model, world.pretraining_rows(ctx.reviews, tokenizer), train)
        return {
            "state_dict": {k: v.detach().clone() for k, v in result.model.state_dict().items()},
            "history": result.history,
            "seconds": ctx.timer.seconds["pretrain"],
            "cpu_seconds": ctx.timer.cpu_seconds["pretrain"],
        }

    # every seed's reference is the same model: trained once, by the first seed to need it. Its key is the whole
    # configuration, not a list of the fields it reads, so no field added later can leave a stale model in use (a
    # change to a seed-level field, a grid say, costs one pretraining: a run's seeds still share it)
    settings = {"config": dataclasses.asdict(cfg), "device": str(ctx.device)}
    pretrained = trained_once("sentiment-reference", settings, pretrain)
    ctx.timer.seconds["pretrain"] = pretrained["seconds"]  # what pretraining cost, whichever seed paid it
    ctx.timer.cpu_seconds["pretrain"] = pretrained["cpu_seconds"]
    model.load_state_dict(pretrained["state_dict"])
    ctx.reference = model.to(ctx.device).eval().requires_grad_(False)
    ctx.pretrain_history = pretrained["history"]
    held_out = world.generate_corpus(
        cfg.n_train_prompts + cfg.n_val_prompts + cfg.n_test_prompts, seed=cfg.world_seed + 1
    )
    prompts = world.make_prompts(
        held_out, tokenizer, seed=cfg.world_seed + 2, min_tokens=cfg.min_prompt_tokens, max_tokens=cfg.max_prompt_tokens
    )
    n_train, n_val = cfg.n_train_prompts, cfg.n_val_prompts
    ctx.prompts = {
        "train": prompts[:n_train],
        "val": prompts[n_train : n_train + n_val],
        "test": prompts[n_train + n_val :],
    }
    ctx.progress(f"sentiment seed {ctx.seed} pretraining: loss {ctx.pretrain_history[-1]['loss']:.3f}")


def make_pairs(ctx: _Context) -> None:
    """4 samples of pi_ref per training prompt, judged by VADER, all 6 pairs of them."""
    cfg, tokenizer, prompts = ctx.cfg, ctx.tokenizer, ctx.prompts["train"]
    with ctx.timer("pair_sampling"):
        samples = world.sample_completions(
            ctx.reference,
            prompts,
            num_samples=cfg.samples_per_prompt,
            temperature=1.0,
            max_new_tokens=cfg.max_new_tokens,
            eos_token_id=tokenizer.eos_token_id,
            seed=3 + 100 * ctx.seed,
        )
        completions = world.completion_texts(tokenizer, prompts, samples)
        texts = [world.join_text(prompts[p].text, c) for p, c in zip(samples.prompt_index, completions)]
        ctx.pairs, ctx.dropped = world.preference_pairs(
            prompts, completions, ctx.judge(texts), samples_per_prompt=cfg.samples_per_prompt
        )
    ctx.reference_samples = samples
    ctx.pair_data = world.pair_tensors(ctx.pairs, tokenizer, cfg.n_positions)


def train_offline(ctx: _Context) -> None:
    """Every offline method over its grid, from pi_ref, on the same pairs and budget."""
    cfg = ctx.cfg
    data = TrainingData(
        ctx.pair_data, reference=ctx.reference, pad_token_id=ctx.tokenizer.pad_token_id, device=ctx.device
    )
    with ctx.timer("dpo_reference_logps"):  # part of DPO's cost: one pass of pi_ref over the pairs
        data.rows_for("dpo")
    for name, values in cfg.grids.items():
        if name not in OFFLINE_METHODS:
            continue
        method = METHODS[name]
        for value in values:
            params, lr_scale = method.grid_point(value)
            # the same pairs per update for every method: KTO's batches hold its two rows per pair
            config = ctx.train_config(
                learning_rate=lr_scale * cfg.learning_rate, batch_size=method.rows_per_pair * cfg.batch_size
            )
            policy = ctx.fresh_policy()
            on_step, trajectory = ctx.along_training(policy, config.steps)
            with ctx.timer(name):
                result = train_preference(
                    policy,
                    method.objective(reference=ctx.reference, **params),
                    data.rows_for(method),
                    config,
                    on_step=on_step,
                )
            if name == "dpo":
                ctx.curves[f"{value:g}"] = _curve(result.history, cfg.curve_every)
            ctx.record(name, method.swept, value, result.model, result.history, trajectory=trajectory)


def train_rlhf(ctx: _Context) -> None:
    """A reward model on the same pairs, then PPO against it; PPO-GT against VADER itself."""
    cfg, tokenizer = ctx.cfg, ctx.tokenizer
    with ctx.timer("reward_model"):
        reward_model = RewardModel.from_causal_lm(ctx.reference).requires_grad_(True)
        reward_model = train_reward_model(reward_model, ctx.pair_data, ctx.train_config(steps=cfg.reward_model_steps))
    ctx.reward_model = reward_model.model.eval().requires_grad_(False)
    ctx.progress(f"sentiment seed {ctx.seed} reward model")
    rewards = {"ppo": _normalised(ctx, _reward_model_scorer(ctx)), "ppo-gt": _normalised(ctx, _vader_scorer(ctx))}
    prompts, prompt_mask = world.left_padded_prompts(ctx.prompts["train"], tokenizer.pad_token_id)
    objective_samples = cfg.objective_samples_per_prompt
    # pi_ref's samples, scored by both rewards: where each PPO objective starts
    scorers = {name: fn.scorer for name, fn in rewards.items()}
    start = ctx.evaluate(ctx.reference, "val", num_samples=objective_samples, scorers=scorers, keep_samples=True)
    start = start["samples"]
    for name in rewards:
        for kl_coef in cfg.grids[name]:
            ppo_config = PPOConfig(
                kl_coef=kl_coef,
                rollout_batch_size=cfg.ppo_rollout_batch_size,
                ppo_epochs=cfg.ppo_epochs,
                minibatch_size=cfg.ppo_minibatch_size,
                max_new_tokens=cfg.max_new_tokens,
                eos_token_id=tokenizer.eos_token_id,
            )
            config = dataclasses.replace(
                ctx.train_config(
                    learning_rate=cfg.ppo_learning_rate, steps=cfg.ppo_steps, log_every=ppo_config.updates_per_rollout()
                ),
                warmup_steps=0,
            )
            policy = ctx.fresh_policy()
            on_step, trajectory = ctx.along_training(policy, config.steps, config.log_every)
            with ctx.timer(name):
                result = train_ppo(
                    policy,
                    ctx.reference,
                    rewards[name],
                    prompts,
                    ppo_config,
                    config,
                    prompt_attention_mask=prompt_mask,
                    on_step=on_step,
                )
            ctx.ppo_samples = math.ceil(cfg.ppo_steps / ppo_config.updates_per_rollout()) * cfg.ppo_rollout_batch_size
            end = ctx.evaluate(
                result.model.lm.eval(),
                "val",
                num_samples=objective_samples,
                scorers={"score": rewards[name].scorer},
                keep_samples=True,
            )
            diagnostics = ppo_diagnostics(result.history)
            after = end["samples"]
            objective = _objective((start[name], start["log_ratio"]), (after["score"], after["log_ratio"]), kl_coef)
            ctx.record(
                name,
                "kl_coef",
                kl_coef,
                result.model.lm,
                result.history,
                diagnostics=diagnostics,
                objective=objective,
                trajectory=trajectory,
            )


class _Reward:
    """A reward for PPO, normalised to mean 0 and standard deviation 1 over pi_ref's samples."""

    def __init__(self, scorer, mean: float, std: float):
        self.scorer, self.mean, self.std = scorer, mean, std

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return (self.scorer.of_ids(input_ids, attention_mask) - self.mean) / self.std


def _normalised(ctx: _Context, scorer) -> _Reward:
    values = scorer(ctx.prompts["train"], ctx.reference_samples)  # pi_ref's samples of the training prompts
    return _Reward(scorer, float(values.mean()), float(values.std().clamp(min=1e-6)))


def _vader_scorer(ctx: _Context):
    tokenizer, judge = ctx.tokenizer, ctx.judge

    def of_ids(input_ids, attention_mask):
        texts = [world.decode(tokenizer, ids[mask.bool()].tolist()) for ids, mask in zip(input_ids, attention_mask)]
        return torch.tensor(judge(texts), device=input_ids.device, dtype=torch.float32)

    def scorer(prompts, samples):
        texts = world.completion_texts(tokenizer, prompts, samples)
        return torch.tensor(judge([world.join_text(prompts[p].text, c) for p, c in zip(samples.prompt_index, texts)]))

    scorer.of_ids = of_ids
    return scorer


def _reward_model_scorer(ctx: _Context):
    pad, model = ctx.tokenizer.pad_token_id, ctx.reward_model

    @torch.no_grad()
    def of_ids(input_ids, attention_mask):
        return model(*world.right_aligned(input_ids, attention_mask, pad))

    @torch.no_grad()
    def scorer(prompts, samples):
        ids, mask, _ = world.prompt_completion_batch(prompts, samples, pad, ctx.device)
        return model(ids, mask).cpu()

    scorer.of_ids = of_ids
    return scorer


def _objective(start: tuple[list, list], end: tuple[list, list], kl_coef: float) -> dict:
    """PPO's own objective, E[normalised score] - kl_coef * KL, on validation samples at the start
    (pi_ref) and the end, each given as ``(scores, log-ratios)`` per sample; it rose when the
    increase is more than two standard errors."""
    from dpo_ref.worlds.sentiment import mean_and_stderr

    def objective(scores: list, log_ratios: list) -> dict:
        return mean_and_stderr([v - kl_coef * k for v, k in zip(scores, log_ratios)]).as_dict()

    before, after = objective(*start), objective(*end)
    rise = after["mean"] - before["mean"]
    stderr = math.hypot(before["stderr"], after["stderr"])
    return {"start": before, "end": after, "rise": rise, "rise_stderr": stderr, "rose": rise > 2 * stderr}


def select(runs: list[dict]) -> dict[str, dict]:
    """Each method's setting with the highest validation reward (PPO runs whose objective did not rise excluded)."""
    best: dict[str, dict] = {}
    for row in runs:
        if row.get("objective", {}).get("rose", True) and (
            row["method"] not in best or row["val"]["reward"]["mean"] > best[row["method"]]["val"]["reward"]["mean"]
        ):
            best[row["method"]] = row
    return {m: {"hyperparameter": r["hyperparameter"], "value": r["value"]} for m, r in best.items()}


def win_rates(ctx: _Context, selected: dict[str, dict]) -> dict:
    """Each method's selected setting against pi_ref, one completion each per test prompt, per temperature."""
    cfg, test = ctx.cfg, ctx.prompts["test"]
    with ctx.timer("win_rates"):
        baseline = {
            t: world.judge_samples(
                ctx.reference,
                test,
                ctx.tokenizer,
                ctx.judge,
                temperature=t,
                max_new_tokens=cfg.max_new_tokens,
                seed=20_001 + 100 * ctx.seed,
            )
            for t in cfg.win_rate_temperatures
        }
        wins = {
            method: world.win_rates(
                ctx.models[(method, choice["value"])],
                ctx.reference,
                test,
                ctx.tokenizer,
                ctx.judge,
                temperatures=cfg.win_rate_temperatures,
                max_new_tokens=cfg.max_new_tokens,
                seed=20_000 + 100 * ctx.seed,
                baseline_rewards=baseline,
            )
            for method, choice in selected.items()
        }
    ctx.progress(f"sentiment seed {ctx.seed} win rates")
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


def _world(ctx: _Context) -> dict:
    return {
        "vocab_size": len(ctx.tokenizer),
        "n_parameters": n_params(ctx.reference),
        "corpus": {
            "n_reviews": len(ctx.reviews),
            "mean_words": sum(len(r.split()) for r in ctx.reviews) / len(ctx.reviews),
            "vader": world.mean_and_stderr(ctx.judge(ctx.reviews[:2000])).as_dict(),
        },
        "example_reviews": ctx.reviews[:3],
        "pretrain": {
            "final_loss": ctx.pretrain_history[-1]["loss"],
            "curve": [[h["step"], h["loss"]] for i, h in enumerate(ctx.pretrain_history) if i % 10 == 0],
        },
    }


def _pairs_summary(ctx: _Context) -> dict:
    pairs = ctx.pairs
    chosen_len = (ctx.pair_data["chosen_labels"] != IGNORE_INDEX).sum(1).float()
    rejected_len = (ctx.pair_data["rejected_labels"] != IGNORE_INDEX).sum(1).float()
    return {
        "n_prompts": len(ctx.prompts["train"]),
        "samples_per_prompt": ctx.cfg.samples_per_prompt,
        "n_pairs": len(pairs),
        "n_dropped": ctx.dropped,
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
