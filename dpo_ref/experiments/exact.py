"""The exact-world experiments: every method measured exactly against the optimal frontier.

Each seed builds the world (the same for every seed), draws its own preference pairs,
and runs two parts (:func:`run_part`), independent of each other:

``frontier``
    1. every offline method over its grid (:func:`offline_runs`), DPO's runs also tracking
       where the probability mass goes (:func:`dpo_ref.experiments.exact_studies.displacement`);
    2. a reward model on the same pairs, then PPO against it and PPO-GT against r*, over
       the same KL coefficients (:func:`rlhf_runs`), each run with its diagnostics and its
       RLHF objective at the start and at the end;
``studies``
    the studies of :mod:`dpo_ref.experiments.exact_studies`: recovery of pi*_beta against
    the number of pairs, deterministic labels, online against offline DPO, distribution
    shift with and without Preferred-FT.

Then :func:`dpo_ref.experiments.exact_summary.summarise` turns the seeds into means with
intervals, envelopes and verdicts. All rewards are the true reward r*, all KLs exact, in
nats, averaged over prompts.

``exact_seed<k>.json``
    ``seed``; ``world`` (sizes, prompts, ``reference_entropy``, ``reference_reward``,
    ``max_reward``, ``kl_reference_to_known``); ``optimal_frontier`` (``[{"beta", "kl",
    "reward"}]``, pi*_beta on a log grid of beta); ``runs``: a RUN record per trained
    policy (below); ``reward_model``: its exact ``pair_accuracy_under_reference`` and
    ``correlation_with_true_reward``; ``studies``: see
    :mod:`~dpo_ref.experiments.exact_studies`.

A RUN record::

    {"method": <a name of dpo_ref.methods>, "seed": 0,
     "params": {"beta": 0.5, ...},                  # the method's hyperparameters
     "final": {"step", "reward", "kl", "entropy", ["kl_to_optimum"], ...},
     "trajectory": [{"step", "reward", "kl", ...}, ...],   # every eval_every steps
     ["every_rollout": [{"step", "reward", "kl", ...}, ...]],  # PPO: after every rollout (the animation)
     "train_metrics": {...},                        # TRL's names, last logged step
     ["objective": {"start", "end", "rose"}],        # PPO: its own objective, exactly
     ["diagnostics": [{"step", "policy/approxkl", "policy/clipfrac", "loss/value", ...}]]}

``kl_to_optimum`` (KL(pi || pi*_beta)) is recorded only for the methods whose target is
pi*_beta: DPO and PPO-GT. ``score`` (PPO) is the exact expected score of the learned
reward model (PPO-GT's is r* itself).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from dpo_ref.evaluate import exact_metrics, expected_value
from dpo_ref.experiments import Group, exact_studies
from dpo_ref.experiments.configs import ExactExperimentConfig, offline_grid
from dpo_ref.experiments.exact_runner import Runner, last_train_metrics
from dpo_ref.experiments.shared_worlds import reference_once
from dpo_ref.methods import DPO, DPOP, LR_SCALE, METHODS, OFFLINE_METHODS, PPO, PPO_GT, TrainingData
from dpo_ref.runtime import resolve_device
from dpo_ref.train import RewardModel, train_reward_model
from dpo_ref.worlds.exact import ExactWorld, build_exact_world

Progress = Callable[[str], None]


PARTS = {"frontier": 0.7, "studies": 0.3}  # each part's share of a seed's time, roughly (measured on cpu)


def count_runs(cfg: ExactExperimentConfig, part: str) -> int:
    """Number of progress steps of :func:`run_part` (for a progress bar)."""
    if part == "studies":
        return 1 + exact_studies.count_runs(cfg)  # world, studies
    rlhf = sum(len(values) for name, values in cfg.grids.items() if name not in OFFLINE_METHODS)
    return 1 + len(offline_grid(cfg.grids)) + 1 + rlhf  # world, offline, reward model, PPO and PPO-GT


def run_part(
    cfg: ExactExperimentConfig, seed: int, part: str, *, device: str = "auto", progress: Progress | None = None
) -> dict:
    """One part of a seed (``"frontier"`` or ``"studies"``); its keys of ``exact_seed<seed>.json``."""
    run = Runner(cfg, shared_world(cfg, device), seed, device, progress or (lambda name: None))
    run.progress("world")
    pairs = run.world.preference_pairs(cfg.n_pairs, seed=seed)
    if part == "studies":
        return {"studies": exact_studies.run_all(run, pairs)}
    runs = offline_runs(run, pairs)
    reward_model, ppo_runs = rlhf_runs(run, pairs)
    world = run.world
    for record in runs + ppo_runs:  # the best reward any policy reaches at the run's KL
        record["optimal_reward_at_kl"] = world.optimal_reward_at_kl(record["final"]["kl"])
    return {
        "seed": seed,
        "world": world_summary(world, cfg),
        "optimal_frontier": world.frontier(np.logspace(*cfg.frontier_log10_beta, cfg.frontier_points).tolist()),
        "runs": runs + ppo_runs,
        "reward_model": reward_model,
    }


def finish(parts: dict[str, dict]) -> dict:
    """The two parts of a seed joined: the contents of ``exact_seed<seed>.json``."""
    return {**parts["frontier"], **parts["studies"]}


def shared_world(cfg: ExactExperimentConfig, device: str) -> ExactWorld:
    """The world every seed shares, its reference trained once (:mod:`dpo_ref.experiments.shared_worlds`)."""

    def pretrain() -> dict:
        reference = build_exact_world(cfg.world, device=device).reference
        return {"state_dict": {k: v.detach().clone() for k, v in reference.state_dict().items()}}

    state = reference_once("exact-reference", cfg.world, resolve_device(device), pretrain)["state_dict"]
    return build_exact_world(cfg.world, device=device, reference_state=state)


# --------------------------------------------------------------------------- stages


# the methods whose runs also record where the probability mass goes: DPO, and DPOP, the fix proposed for its
# displacement (exact_studies.displacement; the summary sets one against the other)
TRACKS_DISPLACEMENT = (DPO, DPOP)


def offline_runs(run: Runner, pairs: dict[str, torch.Tensor]) -> list[dict]:
    """Every offline method over its grid, on the seed's pairs; DPO's and DPOP's runs track displaced mass."""
    data = TrainingData(pairs, reference=run.world.reference, device=run.device, batch_size=1024)
    records = []
    for name, value in offline_grid(run.cfg.grids):
        params, lr_scale = METHODS[name].grid_point(value)
        extra = (
            (lambda logps: exact_studies.displacement(run.world, logps, pairs)) if name in TRACKS_DISPLACEMENT else None
        )
        record = {LR_SCALE: lr_scale} if METHODS[name].swept == LR_SCALE else None
        records.append(run.offline(name, data, extra_eval=extra, record=record, lr_scale=lr_scale, **params))
    return records


def rlhf_runs(run: Runner, pairs: dict[str, torch.Tensor]) -> tuple[dict, list[dict]]:
    """A reward model on the seed's pairs; PPO against it and PPO-GT against r*, at every KL coefficient."""
    cfg, world = run.cfg, run.world
    result = train_reward_model(RewardModel.from_causal_lm(world.reference), pairs, run.train_config())
    reward_model = result.model.eval().requires_grad_(False)
    run.progress("reward model")
    rows = world.all_rows()
    with torch.no_grad():  # the learned reward of every response, for exact expected scores
        scores = reward_model(rows["input_ids"].to(world.device), rows["attention_mask"].to(world.device))
    scores = scores.double().cpu().view(world.n_prompts, world.n_responses)
    info = {**reward_model_summary(world, scores), "train_metrics": last_train_metrics(result.history)}

    def learned_reward(input_ids, attention_mask):
        with torch.no_grad():
            return reward_model(input_ids, attention_mask)

    ppo = [run.ppo(PPO, kl_coef, learned_reward, scores) for kl_coef in cfg.grids[PPO]]
    gt = [run.ppo(PPO_GT, kl_coef, world.true_reward_fn, world.true_rewards) for kl_coef in cfg.grids[PPO_GT]]
    return info, ppo + gt


# --------------------------------------------------------------------------- summaries of the world


def world_summary(world: ExactWorld, cfg: ExactExperimentConfig) -> dict:
    betas = sorted({*cfg.grids[DPO], cfg.beta})
    return {
        # how far pi_ref itself is from each pi*_beta: where DPO's recovery starts
        "reference_kl_to_optimum": {
            f"{b:g}": exact_metrics(world, world.reference_logps, beta=b)["kl_to_optimum"] for b in betas
        },
        "n_prompts": world.n_prompts,
        "n_responses_per_prompt": world.n_responses,
        "prompts": world.prompts.tolist(),
        "reference_entropy": exact_metrics(world, world.reference_logps)["entropy"],
        "kl_reference_to_known": float(
            (world.reference_logps.exp() * (world.reference_logps - world.known_logps)).sum(1).mean()
        ),
        "reference_reward": expected_value(world.reference_logps, world.true_rewards),
        "max_reward": float(world.true_rewards.max(1).values.mean()),
    }


def reward_model_summary(world: ExactWorld, scores: torch.Tensor) -> dict:
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


def _summarise(config, per_seed: dict[int, dict[str, dict]]) -> dict[str, dict]:
    from dpo_ref.experiments.exact_summary import summarise

    return {"exact_summary": summarise(config.exact, {s: files[f"exact_seed{s}"] for s, files in per_seed.items()})}


GROUP = Group(
    name="exact",
    world="exact",
    parts=PARTS,
    run_part=lambda config, seed, part, device, progress: run_part(
        config.exact, seed, part, device=device, progress=progress
    ),
    finish=lambda config, seed, parts: {f"exact_seed{seed}": finish(parts)},
    count_runs=lambda config, part: count_runs(config.exact, part),
    summarise=_summarise,
)
