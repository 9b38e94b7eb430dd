"""The exact-world experiments: every method measured exactly against the optimal frontier.

:func:`run_exact` builds the world once and returns four result dicts (``frontier``,
``recovery``, ``deterministic``, ``ppo``), whose layout is documented in
:mod:`dpo_ref.experiments`. Runs are independent: each starts from a copy of the
reference, with the shared budget of :class:`~dpo_ref.experiments.configs.ExactExperimentConfig`.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import numpy as np
import torch

from dpo_ref.evaluate import exact_metrics, expected_value
from dpo_ref.experiments.configs import ExactExperimentConfig
from dpo_ref.losses import dpo_loss, hinge_loss, ipo_loss, orpo_loss, simpo_loss
from dpo_ref.train import (
    KTOObjective,
    PairwiseObjective,
    RewardModel,
    ReferenceFreeObjective,
    SFTObjective,
    TrainConfig,
    UnlikelihoodObjective,
    chosen_as_sft,
    kto_rows_from_pairs,
    precompute_reference_logps,
    train_ppo,
    train_preference,
    train_reward_model,
)
from dpo_ref.worlds.exact import ExactWorld, build_exact_world

Progress = Callable[[str], None]


def count_runs(cfg: ExactExperimentConfig) -> int:
    """Number of training runs :func:`run_exact` makes (for a progress bar)."""
    offline = len(cfg.dpo_betas) + 8  # IPO, cDPO, hinge, KTO, ORPO, SimPO, Preferred-FT, Unlikelihood
    extra_seeds = len(cfg.ppo_seeds) - 1 if cfg.beta in cfg.ppo_betas else 0
    ppo = 2 * len(cfg.ppo_betas) + extra_seeds  # learned RM and GT; more seeds at beta
    return 1 + 1 + offline + ppo + len(cfg.recovery_n_pairs) + 2  # world, reward model, ..., DPO and IPO


def _trajectory(history: list[dict]) -> list[dict]:
    """The evaluated records of a run, with the ``eval/`` prefix dropped."""
    out = []
    for record in history:
        ev = {k[5:]: v for k, v in record.items() if k.startswith("eval/")}
        if ev:
            out.append({"step": int(record["step"]), **ev})
    return out


def _last_train_metrics(history: list[dict]) -> dict:
    for record in reversed(history):
        metrics = {k: v for k, v in record.items() if not k.startswith("eval/") and k != "step"}
        if metrics:
            return metrics
    return {}


class _Runner:
    def __init__(self, cfg: ExactExperimentConfig, device: str, progress: Progress):
        self.cfg, self.device, self.progress = cfg, device, progress

    def train_config(self, *, steps: int | None = None, eval_every: int | None = None, seed: int = 0) -> TrainConfig:
        cfg = self.cfg
        steps = steps or cfg.steps
        return TrainConfig(
            steps=steps,
            batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate,
            seed=cfg.seed * 1000 + seed,
            device=self.device,
            log_every=steps,
            eval_every=eval_every or cfg.eval_every,
        )

    def offline(self, world: ExactWorld, method: str, params: dict, objective, data, *, beta=None, **train_kw) -> dict:
        result = train_preference(
            world.new_policy(),
            objective,
            data,
            self.train_config(**train_kw),
            eval_fn=lambda m: exact_metrics(world, m, beta=beta),
        )
        self.progress(method)
        trajectory = _trajectory(result.history)
        return {
            "method": method,
            "params": params,
            "final": trajectory[-1],
            "trajectory": trajectory,
            "train_metrics": _last_train_metrics(result.history),
        }


def _with_frontier_gap(world: ExactWorld, point: dict) -> dict:
    best = world.optimal_reward_at_kl(point["final"]["kl"])
    return {**point, "optimal_reward_at_kl": best, "frontier_gap": best - point["final"]["reward"]}


def _interpolate(xs: list[float], ys: list[float], x: float) -> float | None:
    order = np.argsort(xs)
    xs, ys = np.asarray(xs)[order], np.asarray(ys)[order]
    if x < xs[0] or x > xs[-1]:
        return None
    return float(np.interp(x, xs, ys))


def _reward_model_summary(world: ExactWorld, scores: torch.Tensor) -> dict:
    """How well the learned reward orders responses: exact pairwise accuracy under pi_ref x pi_ref."""
    ref = world.reference_logps.exp()  # (P, R)
    accuracy = []
    for p in range(world.n_prompts):
        true_diff = world.true_rewards[p][:, None] - world.true_rewards[p][None, :]
        score_diff = scores[p][:, None] - scores[p][None, :]
        weight = ref[p][:, None] * ref[p][None, :] * (true_diff != 0)
        accuracy.append(float((weight * ((true_diff > 0) == (score_diff > 0))).sum() / weight.sum()))
    centred_true = world.true_rewards - world.true_rewards.mean(1, keepdim=True)
    centred_score = scores - scores.mean(1, keepdim=True)
    correlation = float((centred_true * centred_score).sum() / (centred_true.norm() * centred_score.norm()))
    return {"pair_accuracy_under_reference": float(np.mean(accuracy)), "correlation_with_true_reward": correlation}


def run_exact(cfg: ExactExperimentConfig, *, device: str = "auto", progress: Progress | None = None) -> dict[str, dict]:
    """Run every exact-world experiment; returns ``{"frontier": ..., "recovery": ..., "deterministic": ..., "ppo": ...}``."""
    progress = progress or (lambda name: None)
    run = _Runner(cfg, device, progress)
    world = build_exact_world(cfg.world, device=device)
    progress("world")

    betas = np.logspace(*cfg.frontier_log10_beta, cfg.frontier_points).tolist()
    frontier = world.frontier(betas)
    world_summary = {
        "n_prompts": world.n_prompts,
        "n_responses_per_prompt": world.n_responses,
        "prompts": world.prompts.tolist(),
        "reference_entropy": exact_metrics(world, world.reference)["entropy"],
        "kl_reference_to_known": float(
            (world.reference_logps.exp() * (world.reference_logps - world.known_logps)).sum(1).mean()
        ),
        "reference_reward": expected_value(world.reference_logps, world.true_rewards),
        "max_reward": float(world.true_rewards.max(1).values.mean()),
    }

    pairs = world.preference_pairs(cfg.n_pairs, seed=cfg.seed)
    pairs_sum = precompute_reference_logps(world.reference, pairs, batch_size=1024, device=device)
    pairs_mean = precompute_reference_logps(world.reference, pairs, batch_size=1024, reduction="mean", device=device)
    b = cfg.beta
    points = []

    # ---- the DPO family and the offline baselines, all on the same pairs
    for beta in cfg.dpo_betas:
        obj = PairwiseObjective(functools.partial(dpo_loss, beta=beta), beta=beta)
        points.append(run.offline(world, "DPO", {"beta": beta}, obj, pairs_sum, beta=beta))
    # IPO as TRL computes it: per-token mean log-ratios (beta is the paper's tau)
    obj = PairwiseObjective(functools.partial(ipo_loss, beta=b), beta=b, reduction="mean")
    points.append(run.offline(world, "IPO", {"beta": b, "reduction": "mean"}, obj, pairs_mean, beta=b))
    eps = cfg.cdpo_label_smoothing
    obj = PairwiseObjective(functools.partial(dpo_loss, beta=b, label_smoothing=eps), beta=b)
    points.append(run.offline(world, "cDPO", {"beta": b, "label_smoothing": eps}, obj, pairs_sum, beta=b))
    obj = PairwiseObjective(functools.partial(hinge_loss, beta=b), beta=b)
    points.append(run.offline(world, "hinge", {"beta": b}, obj, pairs_sum, beta=b))
    obj = KTOObjective(beta=cfg.kto_beta, reference=world.reference)
    points.append(run.offline(world, "KTO", {"beta": cfg.kto_beta}, obj, kto_rows_from_pairs(pairs), beta=cfg.kto_beta))
    lam = cfg.orpo_lambda
    obj = ReferenceFreeObjective(lambda c, r: orpo_loss(c, r, -c, lam=lam), beta=lam)
    points.append(run.offline(world, "ORPO", {"lambda": lam}, obj, pairs))
    obj = ReferenceFreeObjective(
        functools.partial(simpo_loss, beta=cfg.simpo_beta, gamma=cfg.simpo_gamma), beta=cfg.simpo_beta
    )
    points.append(run.offline(world, "SimPO", {"beta": cfg.simpo_beta, "gamma": cfg.simpo_gamma}, obj, pairs))
    points.append(run.offline(world, "Preferred-FT", {}, SFTObjective(), chosen_as_sft(pairs)))
    obj = UnlikelihoodObjective(alpha=cfg.unlikelihood_alpha)
    points.append(run.offline(world, "Unlikelihood", {"alpha": cfg.unlikelihood_alpha}, obj, pairs))

    # ---- RLHF: a reward model on the same pairs, then PPO; and PPO with the true reward
    rm_result = train_reward_model(RewardModel.from_causal_lm(world.reference), pairs, run.train_config())
    reward_model = rm_result.model.eval()
    for p in reward_model.parameters():
        p.requires_grad_(False)
    progress("reward model")
    rows = world.all_rows()
    with torch.no_grad():  # the learned reward of every response, for exact expected scores
        scores = reward_model(rows["input_ids"].to(world.device), rows["attention_mask"].to(world.device))
    scores = scores.double().cpu().view(world.n_prompts, world.n_responses)
    reward_model_info = {
        **_reward_model_summary(world, scores),
        "train_metrics": _last_train_metrics(rm_result.history),
    }

    def learned_reward(input_ids, attention_mask):
        with torch.no_grad():
            return reward_model(input_ids, attention_mask)

    def ppo_run(method: str, beta: float, seed: int, reward_fn) -> dict:
        ppo_cfg = dataclasses.replace(cfg.ppo, kl_coef=beta)
        result = train_ppo(
            world.new_policy(),
            world.reference,
            reward_fn,
            world.prompts,
            ppo_cfg,
            run.train_config(steps=cfg.ppo_steps, eval_every=cfg.ppo_eval_every, seed=seed),
            eval_fn=lambda m: exact_metrics(world, m.lm, beta=beta, scores=scores),
        )
        progress(f"{method} beta={beta} seed={seed}")
        trajectory = _trajectory(result.history)
        return {
            "method": method,
            "params": {"beta": beta, "seed": seed},
            "final": trajectory[-1],
            "trajectory": trajectory,
            "train_metrics": _last_train_metrics(result.history),
        }

    ppo_runs = []
    for beta in cfg.ppo_betas:
        seeds = cfg.ppo_seeds if beta == b else cfg.ppo_seeds[:1]
        for seed in seeds:
            ppo_runs.append(ppo_run("PPO", beta, seed, learned_reward))
    for beta in cfg.ppo_betas:
        ppo_runs.append(ppo_run("PPO-GT", beta, cfg.ppo_seeds[0], world.true_reward_fn))
    first_seed = [r for r in ppo_runs if r["params"]["seed"] == cfg.ppo_seeds[0]]
    points.extend(first_seed)
    points = [_with_frontier_gap(world, p) for p in points]

    dpo = [p for p in points if p["method"] == "DPO"]
    dpo_kl = [p["final"]["kl"] for p in dpo]
    dpo_reward = [p["final"]["reward"] for p in dpo]
    matched = []
    for p in points:
        if p["method"] in ("PPO", "PPO-GT"):
            kl = p["final"]["kl"]
            matched.append({
                "method": p["method"],
                "beta": p["params"]["beta"],
                "kl": kl,
                "reward": p["final"]["reward"],
                "dpo_reward_at_kl": _interpolate(dpo_kl, dpo_reward, kl),
                "optimal_reward_at_kl": p["optimal_reward_at_kl"],
            })  # fmt: skip

    frontier_result = {
        "world": world_summary,
        "optimal_frontier": frontier,
        "points": points,
        "reward_model": reward_model_info,
        "matched_kl": matched,
    }

    # ---- DPO recovers pi*_beta: against beta (the runs above) and against the number of pairs
    per_beta = [
        {
            "beta": p["params"]["beta"],
            "kl_to_optimum": p["final"]["kl_to_optimum"],
            "reference_kl_to_optimum": exact_metrics(world, world.reference, beta=p["params"]["beta"])["kl_to_optimum"],
        }
        for p in dpo
    ]
    per_n = []
    for n in cfg.recovery_n_pairs:
        data = precompute_reference_logps(
            world.reference, world.preference_pairs(n, seed=cfg.seed + 1), batch_size=1024, device=device
        )
        obj = PairwiseObjective(functools.partial(dpo_loss, beta=b), beta=b)
        point = run.offline(world, "DPO", {"beta": b, "n_pairs": n}, obj, data, beta=b)
        per_n.append({"n_pairs": n, "kl_to_optimum": point["final"]["kl_to_optimum"], "trajectory": point["trajectory"]})
    recovery = {
        "beta": b,
        "reference_kl_to_optimum": exact_metrics(world, world.reference, beta=b)["kl_to_optimum"],
        "per_beta": per_beta,
        "per_n_pairs": per_n,
    }

    # ---- deterministic preferences: DPO's KL keeps growing, IPO's stays bounded (Azar et al.)
    det_pairs = world.preference_pairs(cfg.n_pairs, seed=cfg.seed + 2, deterministic=True)
    det_sum = precompute_reference_logps(world.reference, det_pairs, batch_size=1024, device=device)
    det_mean = precompute_reference_logps(world.reference, det_pairs, batch_size=1024, reduction="mean", device=device)
    long = {"steps": cfg.deterministic_steps, "eval_every": cfg.deterministic_eval_every}
    deterministic = {
        "beta": b,
        "n_pairs": cfg.n_pairs,
        "runs": [
            run.offline(world, "DPO", {"beta": b}, PairwiseObjective(functools.partial(dpo_loss, beta=b), beta=b),
                        det_sum, beta=b, **long),
            run.offline(world, "IPO", {"beta": b, "reduction": "mean"},
                        PairwiseObjective(functools.partial(ipo_loss, beta=b), beta=b, reduction="mean"),
                        det_mean, beta=b, **long),
        ],  # fmt: skip
    }

    ppo = {
        "beta": b,
        "optimal_at_beta": world.optimal_point(b),
        "reward_model": reward_model_info,
        "runs": [r for r in ppo_runs if r["params"]["beta"] == b],
    }
    return {"frontier": frontier_result, "recovery": recovery, "deterministic": deterministic, "ppo": ppo}
