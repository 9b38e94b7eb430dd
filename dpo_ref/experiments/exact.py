"""The exact-world experiments: every method measured exactly against the optimal frontier.

:func:`run_exact` builds the world once and runs its stages in order: the offline
methods (:func:`offline_points`), the reward model and PPO (:func:`rlhf_runs`), DPO's
recovery of the closed-form optimum (:func:`recovery`) and the deterministic-preference
runs (:func:`deterministic`). Every run starts from a copy of the reference, with the
shared budget of :class:`~dpo_ref.experiments.configs.ExactExperimentConfig`. All
rewards are the true reward r*, all KLs exact, in nats, averaged over prompts.

A *run record* (``RUN`` below) is::

    {"method": "dpo" | "ipo" | ... (a name of dpo_ref.methods),
     "params": {"beta": 0.5, ...},                 # the method's hyperparameters (+ "seed" for PPO)
     "final": {"step", "reward", "kl", "entropy", ["kl_to_optimum"], ["score"]},
     "trajectory": [{"step", "reward", "kl", "entropy", ["kl_to_optimum"], ["score"]}, ...],
     "train_metrics": {"loss", "grad_norm", "rewards/chosen", ...}}   # TRL names, last step

``kl_to_optimum`` is KL(pi || pi*_beta) at the run's beta; ``score`` (PPO only) is the
exact expected score of the learned reward model (for PPO-GT too: it shows the proxy).

``exact_frontier.json``
    ``world``: sizes, prompts, ``reference_entropy``, ``reference_reward``, ``max_reward``,
    ``kl_reference_to_known``; ``optimal_frontier``: ``[{"beta", "kl", "reward"}]`` for
    pi*_beta on a log grid of beta; ``points``: RUN records (DPO at every beta, the
    variants, Preferred-FT, Unlikelihood, PPO and PPO-GT at every KL coefficient, first
    seed), each with ``optimal_reward_at_kl`` (the frontier's reward at the run's KL) and
    ``frontier_gap`` (that minus the run's reward); ``reward_model``:
    ``pair_accuracy_under_reference``, ``correlation_with_true_reward``, ``train_metrics``;
    ``matched_kl``: ``[{"method", "kl_coef", "kl", "reward", "dpo_reward_at_kl",
    "optimal_reward_at_kl"}]`` for each PPO point (DPO's reward linearly interpolated
    between its beta points; null outside their KL range).
``exact_recovery.json``
    ``beta``, ``reference_kl_to_optimum``; ``per_beta``: ``[{"beta", "kl_to_optimum",
    "reference_kl_to_optimum"}]`` from the frontier's DPO runs; ``per_n_pairs``:
    ``[{"n_pairs", "kl_to_optimum", "trajectory"}]`` for DPO at ``beta``.
``exact_deterministic.json``
    ``beta``, ``n_pairs``, ``runs``: two RUN records (DPO and IPO at ``beta``) trained
    on deterministically labelled pairs, with long trajectories of ``kl``.
``exact_ppo.json``
    ``beta``, ``optimal_at_beta`` (``{"beta", "kl", "reward"}``), ``reward_model``,
    ``runs``: RUN records of PPO (learned reward) at ``beta`` for every seed, and
    PPO-GT; their trajectories hold ``reward`` (true), ``score`` (learned) and ``kl``
    at every ``ppo_eval_every`` steps: the frames of the PPO page's animation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from dpo_ref.evaluate import exact_metrics, expected_value
from dpo_ref.experiments import Group
from dpo_ref.experiments.configs import ExactExperimentConfig
from dpo_ref.methods import METHODS, TrainingData
from dpo_ref.train import RewardModel, TrainConfig, train_ppo, train_preference, train_reward_model
from dpo_ref.worlds.exact import ExactWorld, build_exact_world

Progress = Callable[[str], None]

# the offline methods every frontier shows, beside DPO's beta grid, in the order they run
VARIANTS = ("ipo", "cdpo", "hinge", "kto", "orpo", "simpo", "preferred-ft", "unlikelihood")


def count_runs(cfg: ExactExperimentConfig) -> int:
    """Number of training runs :func:`run_exact` makes (for a progress bar)."""
    offline = len(cfg.dpo_betas) + len(VARIANTS)
    extra_seeds = len(cfg.ppo_seeds) - 1 if cfg.beta in cfg.ppo_betas else 0
    ppo = 2 * len(cfg.ppo_betas) + extra_seeds  # learned RM and GT; more seeds at beta
    return 1 + 1 + offline + ppo + len(cfg.recovery_n_pairs) + 2  # world, reward model, ..., DPO and IPO


def run_exact(cfg: ExactExperimentConfig, *, device: str = "auto", progress: Progress | None = None) -> dict[str, dict]:
    """Run every exact-world experiment; returns ``{"frontier": ..., "recovery": ..., "deterministic": ..., "ppo": ...}``."""
    run = _Runner(cfg, build_exact_world(cfg.world, device=device), device, progress or (lambda name: None))
    run.progress("world")
    pairs = run.world.preference_pairs(cfg.n_pairs, seed=cfg.seed)
    points = offline_points(run, pairs)
    reward_model_info, ppo_runs = rlhf_runs(run, pairs)
    first_seed = [r for r in ppo_runs if r["params"]["seed"] == cfg.ppo_seeds[0]]
    points = [_with_frontier_gap(run.world, p) for p in points + first_seed]
    frontier = {
        "world": _world_summary(run.world),
        "optimal_frontier": run.world.frontier(np.logspace(*cfg.frontier_log10_beta, cfg.frontier_points).tolist()),
        "points": points,
        "reward_model": reward_model_info,
        "matched_kl": _matched_kl(points),
    }
    ppo = {
        "beta": cfg.beta,
        "optimal_at_beta": run.world.optimal_point(cfg.beta),
        "reward_model": reward_model_info,
        "runs": [r for r in ppo_runs if r["params"]["kl_coef"] == cfg.beta],
    }
    dpo_points = [p for p in points if p["method"] == "dpo"]
    return {"frontier": frontier, "recovery": recovery(run, dpo_points), "deterministic": deterministic(run), "ppo": ppo}


# --------------------------------------------------------------------------- stages


def offline_points(run: _Runner, pairs: dict[str, torch.Tensor]) -> list[dict]:
    """DPO over its beta grid, then every variant at the shared beta (or its paper's value), on the same pairs."""
    cfg = run.cfg
    data = TrainingData(pairs, reference=run.world.reference, device=run.device, batch_size=1024)
    points = [run.offline("dpo", data, beta=beta) for beta in cfg.dpo_betas]
    settings = {
        "ipo": {"beta": cfg.beta},  # the paper's tau, on per-token means as TRL computes them
        "cdpo": {"beta": cfg.beta, "label_smoothing": cfg.cdpo_label_smoothing},
        "hinge": {"beta": cfg.beta},
        "kto": {"beta": cfg.kto_beta},
        "orpo": {"lam": cfg.orpo_lambda},
        "simpo": {"beta": cfg.simpo_beta, "gamma": cfg.simpo_gamma},
        "preferred-ft": {},
        "unlikelihood": {"alpha": cfg.unlikelihood_alpha},
    }
    return points + [run.offline(name, data, **settings[name]) for name in VARIANTS]


def rlhf_runs(run: _Runner, pairs: dict[str, torch.Tensor]) -> tuple[dict, list[dict]]:
    """A reward model on the same pairs, PPO against it at every KL coefficient (more seeds at
    ``beta``), and PPO-GT against the true reward; returns the reward model's summary and the runs."""
    cfg, world = run.cfg, run.world
    rm_result = train_reward_model(RewardModel.from_causal_lm(world.reference), pairs, run.train_config())
    reward_model = rm_result.model.eval().requires_grad_(False)
    run.progress("reward model")
    rows = world.all_rows()
    with torch.no_grad():  # the learned reward of every response, for exact expected scores
        scores = reward_model(rows["input_ids"].to(world.device), rows["attention_mask"].to(world.device))
    scores = scores.double().cpu().view(world.n_prompts, world.n_responses)
    info = {**_reward_model_summary(world, scores), "train_metrics": _last_train_metrics(rm_result.history)}

    def learned_reward(input_ids, attention_mask):
        with torch.no_grad():
            return reward_model(input_ids, attention_mask)

    runs = []
    for kl_coef in cfg.ppo_betas:
        for seed in cfg.ppo_seeds if kl_coef == cfg.beta else cfg.ppo_seeds[:1]:
            runs.append(run.ppo("ppo", kl_coef, seed, learned_reward, scores))
    for kl_coef in cfg.ppo_betas:
        runs.append(run.ppo("ppo-gt", kl_coef, cfg.ppo_seeds[0], world.true_reward_fn, scores))
    return info, runs


def recovery(run: _Runner, dpo_points: list[dict]) -> dict:
    """How close DPO gets to pi*_beta: against beta (the frontier's runs) and against the number of pairs."""
    cfg, world = run.cfg, run.world
    per_beta = [
        {
            "beta": p["params"]["beta"],
            "kl_to_optimum": p["final"]["kl_to_optimum"],
            "reference_kl_to_optimum": exact_metrics(world, world.reference, beta=p["params"]["beta"])["kl_to_optimum"],
        }
        for p in dpo_points
    ]
    per_n = []
    for n in cfg.recovery_n_pairs:
        data = TrainingData(world.preference_pairs(n, seed=cfg.seed + 1), reference=world.reference,
                            device=run.device, batch_size=1024)  # fmt: skip
        point = run.offline("dpo", data, beta=cfg.beta, record={"n_pairs": n})
        per_n.append({"n_pairs": n, "kl_to_optimum": point["final"]["kl_to_optimum"], "trajectory": point["trajectory"]})
    return {
        "beta": cfg.beta,
        "reference_kl_to_optimum": exact_metrics(world, world.reference, beta=cfg.beta)["kl_to_optimum"],
        "per_beta": per_beta,
        "per_n_pairs": per_n,
    }


def deterministic(run: _Runner) -> dict:
    """Deterministic preferences: DPO's KL keeps growing, IPO's stays bounded (Azar et al.)."""
    cfg = run.cfg
    pairs = run.world.preference_pairs(cfg.n_pairs, seed=cfg.seed + 2, deterministic=True)
    data = TrainingData(pairs, reference=run.world.reference, device=run.device, batch_size=1024)
    long = {"steps": cfg.deterministic_steps, "eval_every": cfg.deterministic_eval_every}
    return {
        "beta": cfg.beta,
        "n_pairs": cfg.n_pairs,
        "runs": [run.offline(name, data, beta=cfg.beta, train=long) for name in ("dpo", "ipo")],
    }


# --------------------------------------------------------------------------- one run


class _Runner:
    """The world, the shared budget and the progress callback that every run of the group uses."""

    def __init__(self, cfg: ExactExperimentConfig, world: ExactWorld, device: str, progress: Progress):
        self.cfg, self.world, self.device, self.progress = cfg, world, device, progress

    def train_config(self, *, steps: int | None = None, eval_every: int | None = None, seed: int = 0) -> TrainConfig:
        steps = steps or self.cfg.steps
        return TrainConfig(
            steps=steps,
            batch_size=self.cfg.batch_size,
            learning_rate=self.cfg.learning_rate,
            seed=self.cfg.seed * 1000 + seed,
            device=self.device,
            log_every=steps,
            eval_every=eval_every or self.cfg.eval_every,
        )

    def offline(self, name: str, data: TrainingData, *, record: dict | None = None, train: dict | None = None,
                **params: float) -> dict:  # fmt: skip
        """Train method ``name`` from the reference on ``data``; its RUN record."""
        method = METHODS[name]
        params = method.params(**params)
        beta = params.get("beta") if method.needs_reference else None  # the target pi*_beta, where there is one
        result = train_preference(
            self.world.new_policy(),
            method.objective(reference=self.world.reference, **params),
            data.rows_for(method),
            self.train_config(**(train or {})),
            eval_fn=lambda m: exact_metrics(self.world, m, beta=beta),
        )
        self.progress(method.label)
        return _run_record(name, {**params, **(record or {})}, result.history)

    def ppo(self, name: str, kl_coef: float, seed: int, reward_fn, scores: torch.Tensor) -> dict:
        """PPO (``"ppo"`` or ``"ppo-gt"``) at one KL coefficient and seed; its RUN record."""
        cfg, world = self.cfg, self.world
        result = train_ppo(
            world.new_policy(),
            world.reference,
            reward_fn,
            world.prompts,
            dataclasses.replace(cfg.ppo, kl_coef=kl_coef),
            self.train_config(steps=cfg.ppo_steps, eval_every=cfg.ppo_eval_every, seed=seed),
            eval_fn=lambda m: exact_metrics(world, m.lm, beta=kl_coef, scores=scores),
        )
        self.progress(f"{METHODS[name].label} kl_coef={kl_coef} seed={seed}")
        return _run_record(name, {"kl_coef": kl_coef, "seed": seed}, result.history)


def _run_record(method: str, params: dict, history: list[dict]) -> dict:
    trajectory = _trajectory(history)
    return {
        "method": method,
        "params": params,
        "final": trajectory[-1],
        "trajectory": trajectory,
        "train_metrics": _last_train_metrics(history),
    }


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


# --------------------------------------------------------------------------- summaries


def _world_summary(world: ExactWorld) -> dict:
    return {
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


def _with_frontier_gap(world: ExactWorld, point: dict) -> dict:
    best = world.optimal_reward_at_kl(point["final"]["kl"])
    return {**point, "optimal_reward_at_kl": best, "frontier_gap": best - point["final"]["reward"]}


def _matched_kl(points: list[dict]) -> list[dict]:
    """For each PPO and PPO-GT point: DPO's reward at the same KL, linearly interpolated between its betas."""
    dpo = [p for p in points if p["method"] == "dpo"]
    dpo_kl, dpo_reward = [p["final"]["kl"] for p in dpo], [p["final"]["reward"] for p in dpo]
    return [
        {
            "method": p["method"],
            "kl_coef": p["params"]["kl_coef"],
            "kl": p["final"]["kl"],
            "reward": p["final"]["reward"],
            "dpo_reward_at_kl": _interpolate(dpo_kl, dpo_reward, p["final"]["kl"]),
            "optimal_reward_at_kl": p["optimal_reward_at_kl"],
        }
        for p in points
        if p["method"] in ("ppo", "ppo-gt")
    ]


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


def _seeds(config) -> dict:
    e = config.exact
    return {"world": e.world.seed, "experiment": e.seed, "ppo_seeds": list(e.ppo_seeds)}


GROUP = Group(
    name="exact",
    world="exact",
    run=lambda config, device, progress: {
        f"exact_{name}": data for name, data in run_exact(config.exact, device=device, progress=progress).items()
    },
    count_runs=lambda config: count_runs(config.exact),
    seeds=_seeds,
)
