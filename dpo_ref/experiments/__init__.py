"""Experiments behind the results pages, their named configurations and their results files.

``dpo-ref reproduce --config smoke|cpu|gpu [--device auto|cpu|cuda] [--out DIR]`` runs
them (:mod:`dpo_ref.experiments.cli`); in Python, :func:`reproduce`. Configurations are
in :mod:`dpo_ref.experiments.configs`. Same config and seed on the same machine give the
same numbers (only ``provenance`` differs).

Results files
-------------
Written atomically to ``DIR/<config>/<name>.json`` (``DIR`` defaults to
``docs/results/data``). Every file is a JSON object with a ``provenance`` key::

    "provenance": {
      "config": {...},            # the whole ExperimentConfig, as dataclasses.asdict
      "seeds": {...},             # the seeds the runs used
      "versions": {"python", "dpo_ref", "torch", "transformers", ...},
      "device": "cpu: x86_64, 2 logical cores, ..." | "NVIDIA H100 ...",
      "git_commit": "<sha>[-dirty]" | null,
      "wall_time_s": 412.3,       # the whole experiment group (all exact_*.json share it)
      "date": "2026-11-26T16:00:00+00:00",
      "command": "dpo-ref reproduce --config cpu"
    }

All rewards are the true reward r*, all KLs exact, in nats, averaged over prompts. A
*run record* (``RUN`` below) is::

    {"method": "DPO" | "IPO" | "cDPO" | "hinge" | "KTO" | "ORPO" | "SimPO" | "Preferred-FT"
               | "Unlikelihood" | "PPO" | "PPO-GT",
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
    ``matched_kl``: ``[{"method", "beta", "kl", "reward", "dpo_reward_at_kl",
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

import time
from pathlib import Path
from typing import Callable

from dpo_ref.errors import UserError

__all__ = ["CONFIGS", "ExperimentConfig", "get_config", "reproduce", "count_runs", "GROUPS", "UnknownGroupError"]


def __getattr__(name: str):
    # the configs import torch and transformers; `dpo-ref --help` should not wait for them
    if name in ("CONFIGS", "ExperimentConfig", "get_config"):
        from dpo_ref.experiments import configs

        return getattr(configs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

from dpo_ref.paths import RESULTS_DIR as DEFAULT_OUT  # noqa: E402


def _exact_group():
    from dpo_ref.experiments.exact import count_runs, run_exact

    def run(config: ExperimentConfig, device: str, progress) -> dict[str, dict]:
        results = run_exact(config.exact, device=device, progress=progress)
        return {f"exact_{name}": data for name, data in results.items()}

    def seeds(config: ExperimentConfig) -> dict:
        e = config.exact
        return {"world": e.world.seed, "experiment": e.seed, "ppo_seeds": list(e.ppo_seeds)}

    # provenance records the whole ExperimentConfig: its `exact` field is what ran
    return run, (lambda config: count_runs(config.exact)), seeds, (lambda config: config)


def _sentiment_group():
    from dpo_ref.experiments.sentiment import group

    return group()  # files sentiment_*.json; schema in dpo_ref.experiments.sentiment


# experiment group -> factory of (run, count_runs, seeds, settings); `settings(config)` is
# the dataclass of what the group ran, recorded in the provenance of its files. Another
# world adds its own entry.
GROUPS: dict[str, Callable] = {"exact": _exact_group, "sentiment": _sentiment_group}


def reproduce(
    config: str | ExperimentConfig,
    *,
    device: str = "auto",
    out: str | Path = DEFAULT_OUT,
    groups: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Run the experiment groups of ``config`` and write their results files; returns their paths.

    ``groups`` (default: all of :data:`GROUPS`) is checked before anything runs: an
    unknown name is a ``ValueError`` listing the known groups.
    """
    groups = _checked_groups(groups)
    import torch

    from dpo_ref.experiments.configs import get_config
    from dpo_ref.train import resolve_device

    config = get_config(config) if isinstance(config, str) else config
    dev = resolve_device(device)
    threads = torch.get_num_threads()
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    try:
        written = _run_groups(config, dev, Path(out), groups, progress)
    finally:
        torch.set_num_threads(threads)
    return written


def _run_groups(config, dev, out: Path, groups, progress) -> list[Path]:
    from dpo_ref.experiments.provenance import provenance, write_json_atomic

    written = []
    for name in _checked_groups(groups):
        run, _, seeds, settings = GROUPS[name]()
        start = time.perf_counter()
        results = run(config, str(dev), progress or (lambda _: None))
        info = provenance(settings(config), seeds=seeds(config), device=dev, wall_time_s=time.perf_counter() - start)
        for file_name, data in results.items():
            path = out / config.name / f"{file_name}.json"
            write_json_atomic(path, {**data, "provenance": info})
            written.append(path)
    return written


def count_runs(config: ExperimentConfig, groups: list[str] | None = None) -> int:
    """The number of training runs ``reproduce(config, groups=groups)`` will do (for progress bars)."""
    return sum(GROUPS[name]()[1](config) for name in _checked_groups(groups))


def _checked_groups(groups: list[str] | None) -> list[str]:
    """``groups`` (None or empty: every group), each name checked against :data:`GROUPS` before any runs."""
    if not groups:
        return list(GROUPS)
    if isinstance(groups, str):  # "exact" would otherwise be read as the groups "e", "x", ...
        groups = [groups]
    unknown = [name for name in groups if name not in GROUPS]
    if unknown:
        raise UnknownGroupError(f"unknown experiment group {unknown[0]!r}; choose from {sorted(GROUPS)}")
    return list(groups)


class UnknownGroupError(UserError, KeyError):
    """A name not in :data:`GROUPS`: bad input (``ValueError``) and a failed lookup (``KeyError``)."""

    __str__ = ValueError.__str__  # the message as it is; KeyError's __str__ would quote it
