"""One run of the exact world: a seed's shared budget, and the RUN record of a trained policy.

:class:`Runner` trains a method from the world's reference (or a given policy) on a
seed's pairs, evaluates it exactly along training, and returns its RUN record
(:mod:`dpo_ref.experiments.summary`); PPO's runs add their own objective, exactly.
:mod:`dpo_ref.experiments.exact` runs the grids with it, and
:mod:`dpo_ref.experiments.exact_studies` the studies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from dpo_ref.evaluate import exact_metrics
from dpo_ref.experiments.configs import ExactExperimentConfig
from dpo_ref.methods import DPO, METHODS, PPO_GT, TrainingData
from dpo_ref.train import TrainConfig, train_ppo, train_preference
from dpo_ref.train.ppo import diagnostics as ppo_diagnostics
from dpo_ref.worlds.exact import ExactWorld

__all__ = ["Runner", "TARGETS_OPTIMUM", "optimal_objective", "run_record"]

Progress = Callable[[str], None]

# what DPO and PPO-GT converge to is pi*_beta; the other methods aim elsewhere
TARGETS_OPTIMUM = (DPO, PPO_GT)


class Runner:
    """The world, the seed, the shared budget and the progress callback of every run of a seed."""

    def __init__(self, cfg: ExactExperimentConfig, world: ExactWorld, seed: int, device: str, progress: Progress):
        self.cfg, self.world, self.seed, self.device, self.progress = cfg, world, seed, device, progress

    def train_config(
        self,
        *,
        steps: int | None = None,
        learning_rate: float | None = None,
        log_every: int | None = None,
        eval_every: int | None = None,
        rows_per_pair: int = 1,
    ) -> TrainConfig:
        steps = steps or self.cfg.steps
        return TrainConfig(
            steps=steps,
            batch_size=self.cfg.batch_size * rows_per_pair,  # the same pairs per update, whatever the rows
            learning_rate=learning_rate or self.cfg.learning_rate,
            seed=self.seed,
            device=self.device,
            log_every=log_every or self.cfg.eval_every,
            eval_every=min(eval_every or self.cfg.eval_every, steps),
        )

    def offline(
        self,
        name: str,
        data: TrainingData,
        *,
        extra_eval: Callable | None = None,
        record: dict | None = None,
        steps: int | None = None,
        lr_scale: float = 1.0,
        **params: float,
    ) -> dict:
        """Train method ``name`` from the reference on ``data``; its RUN record."""
        return self.train(name, data, extra_eval=extra_eval, record=record, steps=steps, lr_scale=lr_scale, **params)[0]

    def train(
        self,
        name: str,
        data: TrainingData,
        *,
        policy: torch.nn.Module | None = None,
        extra_eval: Callable | None = None,
        record: dict | None = None,
        steps: int | None = None,
        lr_scale: float = 1.0,
        **params: float,
    ) -> tuple[dict, torch.nn.Module]:
        """Train method ``name`` from ``policy`` (default: a copy of the reference) against ``data``'s
        reference, at ``lr_scale`` times the shared learning rate; its RUN record and the trained model.
        KLs are always to the world's pi_ref."""
        method = METHODS[name]
        params = method.params(**params)
        result = train_preference(
            policy if policy is not None else self.world.new_policy(),
            method.objective(reference=data.reference, **params),
            data.rows_for(method),
            self.train_config(
                steps=steps, learning_rate=lr_scale * self.cfg.learning_rate, rows_per_pair=method.rows_per_pair
            ),
            eval_fn=self.eval_fn(name, params.get("beta"), extra=extra_eval),
        )
        self.progress(f"{method.label} {params}")
        return run_record(name, self.seed, {**params, **(record or {})}, result.history), result.model

    def eval_fn(self, name: str, beta: float | None, *, scores: torch.Tensor | None = None, extra=None):
        """The exact evaluation of a run: reward, KL, entropy; KL to pi*_beta where that is the target."""
        target = beta if name in TARGETS_OPTIMUM else None

        def evaluate(model: torch.nn.Module) -> dict[str, float]:
            model = getattr(model, "lm", model)  # PPO's model holds the policy as .lm
            logps = self.world.policy_logps(model)
            out = exact_metrics(self.world, logps, beta=target, scores=scores)
            return {**out, **(extra(logps) if extra is not None else {})}

        return evaluate

    def ppo(self, name: str, kl_coef: float, reward_fn, scores: torch.Tensor) -> dict:
        """PPO (learned reward) or PPO-GT (``scores`` = r*) at one KL coefficient, ``name`` the registry's; its RUN record."""
        cfg, world = self.cfg, self.world
        # Evaluated exactly after every rollout (evaluation draws no samples, so the run is
        # the same as with fewer evaluations): /ppo-problem/ animates the whole path. What
        # is measured from the trajectory (matched-KL comparisons, whether the objective
        # still rose) keeps every other method's grid, every eval_every updates.
        rollout = cfg.ppo.updates_per_rollout()
        result = train_ppo(
            world.new_policy(),
            world.reference,
            reward_fn,
            world.prompts,
            dataclasses.replace(cfg.ppo, kl_coef=kl_coef),
            self.train_config(learning_rate=cfg.ppo_learning_rate, log_every=rollout, eval_every=rollout),
            eval_fn=self.eval_fn(name, kl_coef, scores=scores),
        )
        self.progress(f"{METHODS[name].label} kl_coef={kl_coef}")
        record = run_record(name, self.seed, {"kl_coef": kl_coef}, result.history)
        record["every_rollout"] = record["trajectory"]
        record["trajectory"] = on_grid(record["every_rollout"], cfg.eval_every)
        # its own objective, exactly: E[score] - kl_coef * KL, at the start (pi_ref) and the end, and the most any
        # policy reaches (at pi_ref's tilt by exp(score / kl_coef)): how much of the gain PPO's budget bought
        start, end = (point["score"] - kl_coef * point["kl"] for point in (record["trajectory"][0], record["final"]))
        record["objective"] = {
            "start": start,
            "end": end,
            "rose": end > start + 1e-9,
            "optimum": optimal_objective(world.reference_logps, scores, kl_coef),
        }
        record["diagnostics"] = ppo_diagnostics(result.history)
        return record


def optimal_objective(reference_logps: torch.Tensor, scores: torch.Tensor, kl_coef: float) -> float:
    """The largest E[score] - kl_coef * KL(pi || pi_ref) any policy reaches, averaged over prompts: per prompt,
    kl_coef * log sum_y pi_ref(y) exp(score(y) / kl_coef), reached by pi_ref tilted by exp(score / kl_coef)."""
    tilted = reference_logps.double().cpu() + scores.double().cpu() / kl_coef
    return float(kl_coef * torch.logsumexp(tilted, dim=-1).mean())


def run_record(method: str, seed: int, params: dict, history: list[dict]) -> dict:
    trajectory = trajectory_of(history)
    return {
        "method": method,
        "seed": seed,
        "params": params,
        "final": trajectory[-1],
        "trajectory": trajectory,
        "train_metrics": last_train_metrics(history),
    }


def on_grid(points: list[dict], every: int) -> list[dict]:
    """The evaluations at multiples of ``every`` steps, and the last one (the run's end)."""
    return [p for i, p in enumerate(points) if p["step"] % every == 0 or i == len(points) - 1]


def trajectory_of(history: list[dict]) -> list[dict]:
    """The evaluated records of a run, with the ``eval/`` prefix dropped."""
    out = []
    for record in history:
        ev = {k[5:]: v for k, v in record.items() if k.startswith("eval/")}
        if ev:
            out.append({"step": int(record["step"]), **ev})
    return out


def last_train_metrics(history: list[dict]) -> dict:
    for record in reversed(history):
        metrics = {k: v for k, v in record.items() if not k.startswith("eval/") and k != "step"}
        if metrics:
            return metrics
    return {}
