"""The sentiment-world experiments (the DPO paper's IMDb experiment, at laptop scale).

    dpo-ref reproduce --config cpu --only sentiment

:func:`run_sentiment` runs these stages, all seeded from ``config.seed`` (see
:mod:`dpo_ref.worlds.sentiment` for the world):

1. :func:`build_reference`: generate the review corpus, build the word-level tokenizer, pretrain a tiny GPT-2 on
   the reviews with the trainer's SFT: this is both the SFT model and pi_ref;
2. :func:`make_pairs`: take review prefixes (2 to 8 tokens) of held-out reviews as prompts; sample 4
   completions per training prompt from pi_ref, score them with VADER and form the 6
   pairs per prompt (ties dropped);
3. :func:`train_offline` and :func:`train_rlhf`: train every method from pi_ref on exactly those pairs, with the same optimiser, the
   same learning rate, the same number of optimiser updates and a grid of 4 values of
   its own main hyperparameter (the tuning budget is the same for every method):
   DPO, IPO, KTO, ORPO, SimPO, Preferred-FT, Unlikelihood, PPO with a reward model
   trained on the same pairs, and PPO-GT with VADER itself as the reward;
4. evaluate each trained policy (as it is trained; :func:`win_rates`) on held-out prompts: expected VADER reward and
   KL(pi || pi_ref), both from samples at temperature 1, with standard errors; and for
   each method's best setting, its win rate against pi_ref over sampling temperatures;
5. measure what RLHF costs against DPO (:mod:`dpo_ref.experiments.costs`).

Results files, each with the shared ``provenance`` key of :mod:`dpo_ref.experiments`
(seeds ``{"sentiment": seed}``). All rewards are VADER compound scores
in [-1, 1]; all KLs are sequence-level, in nats, estimated from samples; every estimate
is ``{"mean", "stderr", "n"}``.

``sentiment_frontier.json``
    ``world``: ``vocab_size``, ``n_parameters`` of the policy, ``corpus`` (``n_reviews``,
    ``mean_words``, ``vader`` estimate), ``example_reviews``, ``pretrain``
    (``final_loss``, ``curve`` ``[[step, loss], ...]``), ``reference`` (pi_ref's
    evaluation, as a run below), ``reward_model_pair_accuracy`` (on its training pairs).
    ``pairs``: ``n_prompts``, ``samples_per_prompt``, ``n_pairs``, ``n_dropped``
    (``{"ties", "empty"}``), ``mean_chosen_reward``, ``mean_rejected_reward``,
    ``length_gap`` (chosen minus rejected completion tokens), ``examples``.
    ``runs``: one per (method, setting): ``method`` (a name of :mod:`dpo_ref.methods`),
    ``hyperparameter`` (its name; ``lr_scale`` for Preferred-FT, a multiple of the shared
    learning rate), ``value``,
    ``reward``, ``kl``, ``length`` (completion tokens), ``truncated_fraction``,
    ``example`` (one sampled review), ``final_metrics`` (last logged training metrics,
    TRL's names where they exist).
    ``frontier``: per method, ``[[kl, reward], ...]`` sorted by KL.
    ``matched_kl``: ``{"ppo": [...], "ppo-gt": [...]}``, one row per measured point of
    DPO or of the other method, sorted by KL: ``{"at" ("DPO <beta>", "PPO <kl_coef>"
    or "PPO-GT <kl_coef>"), "kl", "dpo_reward", "other_reward", "difference"}``, where the method
    not measured there is linearly interpolated between its points, pi_ref counting as
    the KL-0 point of both (null outside its KL range).
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

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from dpo_ref.experiments import Group
from dpo_ref.experiments.configs import SentimentConfig
from dpo_ref.experiments.costs import StageTimer, n_params, rlhf_against_dpo
from dpo_ref.logps import IGNORE_INDEX
from dpo_ref.methods import METHODS, TrainingData
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
from dpo_ref.worlds import sentiment as world

__all__ = ["run_sentiment", "count_runs", "GROUP"]

Progress = Callable[[str], None]


def _grids(cfg: SentimentConfig) -> dict[str, tuple[str, tuple[float, ...]]]:
    """Each offline method's grid: the hyperparameter swept and its values (4 each: the same budget)."""
    return {
        "dpo": ("beta", cfg.dpo_betas),
        "ipo": ("beta", cfg.ipo_taus),
        "kto": ("beta", cfg.kto_betas),
        "orpo": ("lam", cfg.orpo_lambdas),
        "simpo": ("beta", cfg.simpo_betas),
        "preferred-ft": ("lr_scale", cfg.preferred_ft_lr_scales),
        "unlikelihood": ("alpha", cfg.unlikelihood_alphas),
    }


def count_runs(cfg: SentimentConfig) -> int:
    """How many times :func:`run_sentiment` calls ``progress``: pretraining, each trained model, win rates."""
    offline = sum(len(values) for _, values in _grids(cfg).values())
    return 1 + offline + 1 + len(cfg.ppo_kl_coefs) + len(cfg.ppo_gt_kl_coefs) + 1


@dataclass
class _Context:
    """What the stages share: the config, the reference and its data, and what has been measured."""

    cfg: SentimentConfig
    device: torch.device
    progress: Progress
    timer: StageTimer
    tokenizer: object = None
    judge: world.VaderJudge = field(default_factory=world.VaderJudge)
    reviews: list = field(default_factory=list)
    reference: torch.nn.Module | None = None
    pretrain_history: list = field(default_factory=list)
    train_prompts: list = field(default_factory=list)
    eval_prompts: list = field(default_factory=list)
    pairs: list = field(default_factory=list)  # pair dicts: prompt, chosen, rejected and their rewards
    dropped: dict = field(default_factory=dict)
    pair_data: dict = field(default_factory=dict)  # the pairs as padded tensors
    runs: list = field(default_factory=list)  # one evaluated row per (method, setting)
    models: dict = field(default_factory=dict)  # (method, value) -> trained policy
    curves: dict = field(default_factory=dict)  # DPO's logged metrics per beta
    reward_model: torch.nn.Module | None = None
    ppo_samples: int = 0  # completions one PPO run samples

    def train_config(self, *, learning_rate=None, steps=None, batch_size=None) -> TrainConfig:
        cfg = self.cfg
        return TrainConfig(
            steps=steps or cfg.steps,
            batch_size=batch_size or cfg.batch_size,
            learning_rate=learning_rate or cfg.learning_rate,
            warmup_steps=cfg.warmup_steps,
            seed=cfg.seed,
            device=str(self.device),
        )

    def fresh_policy(self) -> torch.nn.Module:
        return copy.deepcopy(self.reference).train().requires_grad_(True)

    def evaluate(self, policy: torch.nn.Module) -> dict:
        cfg = self.cfg
        return world.evaluate_policy(
            policy, self.reference, self.eval_prompts, self.tokenizer, self.judge,
            num_samples=cfg.eval_samples_per_prompt, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed + 10_000,
        )  # fmt: skip

    def record(self, method: str, hyperparameter: str, value: float, policy: torch.nn.Module, history) -> None:
        policy = policy.eval()
        evaluation = self.evaluate(policy)
        final = {k: v for k, v in (history[-1] if history else {}).items() if k != "step"}
        self.runs.append({"method": method, "hyperparameter": hyperparameter, "value": value, **evaluation,
                          "final_metrics": final})  # fmt: skip
        self.models[(method, value)] = policy
        self.progress(f"sentiment {METHODS[method].label} {hyperparameter}={value:g}: "
                      f"reward {evaluation['reward']['mean']:+.3f}, KL {evaluation['kl']['mean']:.2f}")  # fmt: skip


def run_sentiment(cfg: SentimentConfig, *, device: str = "auto", progress: Progress | None = None) -> dict[str, dict]:
    """Run the sentiment world; return its results files' contents (keys: file names), without provenance."""
    dev = resolve_device(device)
    ctx = _Context(cfg, dev, progress or (lambda _: None), StageTimer(dev))
    start = time.perf_counter()
    build_reference(ctx)
    make_pairs(ctx)
    reference_eval = ctx.evaluate(ctx.reference)
    train_offline(ctx)
    train_rlhf(ctx)
    frontier = _frontier(ctx.runs)
    reference_point = [reference_eval["kl"]["mean"], reference_eval["reward"]["mean"], None]
    matched = {name: _matched_kl(frontier["dpo"], frontier[name], reference_point, METHODS[name].label)
               for name in ("ppo", "ppo-gt")}  # fmt: skip
    wins = win_rates(ctx, frontier)
    cost = _cost(ctx)
    cost["wall_time_whole_run_s"] = time.perf_counter() - start
    return _rounded({
        "sentiment_frontier": _frontier_file(ctx, reference_eval, frontier, matched),
        "sentiment_win_rates": {
            "temperatures": list(cfg.win_rate_temperatures),
            "baseline": "the reference (SFT) policy sampled at the same temperature",
            "judge": ctx.judge.name,
            "n_prompts": len(ctx.eval_prompts),
            "methods": wins,
        },
        "sentiment_curves": {"dpo": ctx.curves, "pretrain": _pretrain_curve(ctx)},
        "sentiment_cost": cost,
    })  # fmt: skip


# --------------------------------------------------------------------------- stages


def build_reference(ctx: _Context) -> None:
    """The corpus, the word-level tokenizer, and the tiny GPT-2 pretrained on the reviews: SFT model and pi_ref."""
    cfg = ctx.cfg
    world.check_vocabulary()
    ctx.tokenizer = tokenizer = world.build_tokenizer()
    ctx.reviews = world.generate_corpus(cfg.n_reviews, seed=cfg.seed)
    model = tiny_gpt2(
        len(tokenizer), n_layer=cfg.n_layer, n_embd=cfg.n_embd, n_head=cfg.n_head, n_positions=cfg.n_positions,
        seed=cfg.seed, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    train = dataclasses.replace(
        ctx.train_config(learning_rate=cfg.pretrain_learning_rate, steps=cfg.pretrain_steps,
                         batch_size=cfg.pretrain_batch_size),  # fmt: skip
        warmup_steps=min(50, cfg.pretrain_steps // 10),
    )
    with ctx.timer("pretrain"):
        result = train_sft(model, world.pretraining_rows(ctx.reviews, tokenizer), train)
    ctx.reference = result.model.eval().requires_grad_(False)
    ctx.pretrain_history = result.history
    ctx.progress(f"sentiment pretraining: loss {result.history[-1]['loss']:.3f}")


def make_pairs(ctx: _Context) -> None:
    """Held-out review prefixes as prompts; 4 samples of pi_ref per training prompt, judged, all 6 pairs of them."""
    cfg, tokenizer = ctx.cfg, ctx.tokenizer
    held_out = world.generate_corpus(cfg.n_train_prompts + cfg.n_eval_prompts, seed=cfg.seed + 1)
    prompts = world.make_prompts(held_out, tokenizer, seed=cfg.seed + 2, min_tokens=cfg.min_prompt_tokens,
                                 max_tokens=cfg.max_prompt_tokens)  # fmt: skip
    ctx.train_prompts, ctx.eval_prompts = prompts[: cfg.n_train_prompts], prompts[cfg.n_train_prompts :]
    with ctx.timer("pair_sampling"):
        samples = world.sample_completions(
            ctx.reference, ctx.train_prompts, num_samples=cfg.samples_per_prompt, temperature=1.0,
            max_new_tokens=cfg.max_new_tokens, eos_token_id=tokenizer.eos_token_id, seed=cfg.seed + 3,
        )  # fmt: skip
        completions = world.completion_texts(tokenizer, ctx.train_prompts, samples)
        texts = [world.join_text(ctx.train_prompts[p].text, c) for p, c in zip(samples.prompt_index, completions)]
        ctx.pairs, ctx.dropped = world.preference_pairs(ctx.train_prompts, completions, ctx.judge(texts),
                                                        samples_per_prompt=cfg.samples_per_prompt)  # fmt: skip
    ctx.pair_data = world.pair_tensors(ctx.pairs, tokenizer, cfg.n_positions)


def train_offline(ctx: _Context) -> None:
    """Every offline method over its grid, from pi_ref, on the same pairs and budget."""
    cfg = ctx.cfg
    data = TrainingData(ctx.pair_data, reference=ctx.reference, pad_token_id=ctx.tokenizer.pad_token_id,
                        device=ctx.device)  # fmt: skip
    with ctx.timer("dpo_reference_logps"):  # part of DPO's cost: one pass of pi_ref over the pairs
        data.rows_for("dpo")
    for name, (hyperparameter, values) in _grids(cfg).items():
        method = METHODS[name]
        for value in values:
            config = ctx.train_config()
            if name == "preferred-ft":  # its only knob is the learning rate
                config = ctx.train_config(learning_rate=value * cfg.learning_rate)
                params = {}
            else:
                params = {hyperparameter: value, **({"gamma": value / 2} if name == "simpo" else {})}
            if name == "kto":  # one row per completion: twice the rows, so each is seen as often as a pair
                config = ctx.train_config(batch_size=2 * cfg.batch_size)
            with ctx.timer(name):
                result = train_preference(ctx.fresh_policy(), method.objective(reference=ctx.reference, **params),
                                          data.rows_for(method), config)  # fmt: skip
            if name == "dpo":
                ctx.curves[f"{value:g}"] = _curve(result.history, cfg.curve_every)
            ctx.record(name, hyperparameter, value, result.model, result.history)


def train_rlhf(ctx: _Context) -> None:
    """A reward model on the same pairs, PPO against it; and PPO-GT against VADER itself."""
    cfg, tokenizer = ctx.cfg, ctx.tokenizer
    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
    with ctx.timer("reward_model"):
        reward_model = RewardModel.from_causal_lm(ctx.reference).requires_grad_(True)
        reward_model = train_reward_model(reward_model, ctx.pair_data, ctx.train_config(steps=cfg.reward_model_steps))
    ctx.reward_model = reward_model.model.eval().requires_grad_(False)
    ctx.progress("sentiment reward model")
    prompts, prompt_mask = world.left_padded_prompts(ctx.train_prompts, pad)

    def learned_reward(input_ids, attention_mask):
        return ctx.reward_model(*world.right_aligned(input_ids, attention_mask, pad))

    def vader_reward(input_ids, attention_mask):
        texts = [world.decode(tokenizer, ids[mask.bool()].tolist()) for ids, mask in zip(input_ids, attention_mask)]
        return torch.tensor(ctx.judge(texts), device=input_ids.device)

    for name, reward_fn, coefs in (("ppo", learned_reward, cfg.ppo_kl_coefs),
                                   ("ppo-gt", vader_reward, cfg.ppo_gt_kl_coefs)):  # fmt: skip
        for kl_coef in coefs:
            ppo_config = PPOConfig(
                kl_coef=kl_coef, rollout_batch_size=cfg.ppo_rollout_batch_size, ppo_epochs=cfg.ppo_epochs,
                minibatch_size=cfg.ppo_minibatch_size, max_new_tokens=cfg.max_new_tokens, eos_token_id=eos,
            )  # fmt: skip
            with ctx.timer(name):
                result = train_ppo(ctx.fresh_policy(), ctx.reference, reward_fn, prompts, ppo_config,
                                   ctx.train_config(), prompt_attention_mask=prompt_mask)  # fmt: skip
            if name == "ppo":
                ctx.ppo_samples = math.ceil(cfg.steps / ppo_config.updates_per_rollout()) * cfg.ppo_rollout_batch_size
            ctx.record(name, "kl_coef", kl_coef, result.model.lm, result.history)


def win_rates(ctx: _Context, frontier: dict) -> dict:
    """Each method's highest-reward setting against pi_ref, one completion each per held-out prompt, per temperature."""
    cfg = ctx.cfg
    with ctx.timer("win_rates"):
        baseline = {
            t: world.judge_samples(ctx.reference, ctx.eval_prompts, ctx.tokenizer, ctx.judge, temperature=t,
                                   max_new_tokens=cfg.max_new_tokens, seed=cfg.seed + 20_001)  # fmt: skip
            for t in cfg.win_rate_temperatures
        }
        wins = {}
        for method in frontier:
            best = max((r for r in ctx.runs if r["method"] == method), key=lambda r: r["reward"]["mean"])
            wins[method] = {
                "selected": {best["hyperparameter"]: best["value"]},
                "by_temperature": world.win_rates(
                    ctx.models[(method, best["value"])], ctx.reference, ctx.eval_prompts, ctx.tokenizer, ctx.judge,
                    temperatures=cfg.win_rate_temperatures, max_new_tokens=cfg.max_new_tokens,
                    seed=cfg.seed + 20_000, baseline_rewards=baseline,
                ),
            }  # fmt: skip
    ctx.progress("sentiment win rates")
    return wins


# --------------------------------------------------------------------------- files


def _cost(ctx: _Context) -> dict:
    cost = rlhf_against_dpo(ctx.cfg, ctx.reference, ctx.reward_model, ctx.timer, len(ctx.pairs), ctx.ppo_samples)
    if ctx.device.type == "cuda":
        peaks = cost["peak_cuda_bytes"] = dict(ctx.timer.peak_cuda_bytes)  # per stage: pretrain, dpo, ppo, ...
        if peaks.get("dpo"):
            rlhf_peak = max(peaks.get("reward_model", 0), peaks.get("ppo", 0))
            cost["ratios_rlhf_over_dpo"]["peak_cuda_bytes"] = rlhf_peak / peaks["dpo"]
    return cost


def _frontier_file(ctx: _Context, reference_eval: dict, frontier: dict, matched: dict) -> dict:
    chosen_len = (ctx.pair_data["chosen_labels"] != IGNORE_INDEX).sum(1).float()
    rejected_len = (ctx.pair_data["rejected_labels"] != IGNORE_INDEX).sum(1).float()
    pairs = ctx.pairs
    return {
        "world": {
            "vocab_size": len(ctx.tokenizer),
            "n_parameters": n_params(ctx.reference),
            "corpus": {
                "n_reviews": len(ctx.reviews),
                "mean_words": sum(len(r.split()) for r in ctx.reviews) / len(ctx.reviews),
                "vader": world.mean_and_stderr(ctx.judge(ctx.reviews[:2000])).as_dict(),
            },
            "example_reviews": ctx.reviews[:3],
            "pretrain": {"final_loss": ctx.pretrain_history[-1]["loss"], "curve": _pretrain_curve(ctx)},
            "reference": reference_eval,
            "reward_model_pair_accuracy": _reward_model_accuracy(ctx.reward_model, ctx.pair_data),
        },
        "pairs": {
            "n_prompts": len(ctx.train_prompts),
            "samples_per_prompt": ctx.cfg.samples_per_prompt,
            "n_pairs": len(pairs),
            "n_dropped": ctx.dropped,
            "mean_chosen_reward": sum(p["chosen_reward"] for p in pairs) / len(pairs),
            "mean_rejected_reward": sum(p["rejected_reward"] for p in pairs) / len(pairs),
            "length_gap": float((chosen_len - rejected_len).mean()),
            "examples": pairs[:3],
        },
        "runs": ctx.runs,
        "frontier": {m: [p[:2] for p in pts] for m, pts in frontier.items()},
        "matched_kl": matched,
    }


def _pretrain_curve(ctx: _Context) -> list[list[float]]:
    return [[h["step"], h["loss"]] for i, h in enumerate(ctx.pretrain_history) if i % 10 == 0]


def _frontier(runs: list[dict]) -> dict[str, list[list]]:
    """Per method, its ``[kl, reward, value]`` points sorted by KL."""
    frontier: dict[str, list[list]] = {}
    for row in runs:
        frontier.setdefault(row["method"], []).append([row["kl"]["mean"], row["reward"]["mean"], row["value"]])
    for points in frontier.values():
        points.sort()
    return frontier


def _curve(history: list[dict], every: int) -> dict[str, list]:
    names = ("step", "loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
             "logps/chosen", "logps/rejected")  # fmt: skip
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


def _matched_kl(dpo: list, other: list, reference_point: list, other_label: str) -> list[dict]:
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
        rows.append({"at": f"{other_label} {value:g}", "kl": kl, "dpo_reward": dpo_reward, "other_reward": reward})
    for row in rows:
        both = row["dpo_reward"] is not None and row["other_reward"] is not None
        row["difference"] = row["dpo_reward"] - row["other_reward"] if both else None
    return sorted(rows, key=lambda r: r["kl"])


GROUP = Group(
    name="sentiment",
    world="sentiment",
    run=lambda config, device, progress: run_sentiment(config.sentiment, device=device, progress=progress),
    count_runs=lambda config: count_runs(config.sentiment),
    seeds=lambda config: {"sentiment": config.sentiment.seed},
)
