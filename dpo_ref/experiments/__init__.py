"""The experiments behind the results pages: one framework for both worlds.

``dpo-ref reproduce --config smoke|cpu|gpu [--device auto|cpu|cuda] [--out DIR]`` runs
them (:mod:`dpo_ref.experiments.cli`); in Python, :func:`reproduce`. The named
configurations are in :mod:`dpo_ref.experiments.configs`: an ``ExperimentConfig`` holds
one config per world. Same config and seed on the same machine give the same numbers
(only ``provenance`` and timings differ).

An experiment *group* (:class:`Group`) is one world's experiments. It runs once per seed
of the configuration and writes that seed's file, ``<group>_seed<k>.json``; once every
seed has run, its ``summarise`` step reads those files and writes
``<group>_summary.json``: means over seeds with their intervals, envelopes and verdicts
(:mod:`dpo_ref.analysis`). The pages read the summaries. A seed's work comes in
independent *parts* (the exact world's frontier and its studies, say), so that
``--jobs 2`` can keep two cores busy to the end: each part may run in its own process,
and the group's ``finish`` step joins what the parts measured into the seed's file. Each
group's module documents its files: :mod:`dpo_ref.experiments.exact` and
:mod:`dpo_ref.experiments.sentiment`. Adding a world is one module with a ``run_part``, a
``finish`` and a ``summarise``, and one entry in :data:`GROUPS`.

Every results file is written atomically to ``DIR/<config>/<name>.json`` (``DIR``
defaults to :data:`dpo_ref.paths.RESULTS_DIR`) and is a JSON object with a
``provenance`` key::

    "provenance": {
      "config": {"name": "cpu", "torch_threads": 1, "<world>": {...}},  # what the group ran
      "seeds": {...},             # the seeds the runs used (the seed file's own, or all of them)
      "versions": {"python", "dpo_ref", "torch", "transformers", ...},
      "device": "cpu: x86_64, 2 logical cores, ..." | "NVIDIA H100 ...",
      "git_commit": "<sha>[-dirty]" | null,
      "wall_time_s": 412.3,       # the seed's run (its parts together); in a summary, the sum over its seeds
      "parts": {"frontier": {"wall_time_s": 301.2, "date": "..."}, ...},  # a seed file's parts, each when it ended
      "date": "2026-11-26T16:00:00+00:00",
      "command": "dpo-ref reproduce --config cpu"
    }

Method names in results files are the canonical names of :mod:`dpo_ref.methods`
(``dpo``, ``ppo-gt``, ...: the constants ``dpo_ref.methods.DPO``, ``PPO_GT``, ...).
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpo_ref.errors import UnknownNameError

if TYPE_CHECKING:
    from dpo_ref.experiments.configs import ExperimentConfig

__all__ = ["CONFIGS", "ExperimentConfig", "get_config", "Group", "GROUPS", "reproduce", "count_runs", "group"]

Progress = Callable[[str], None]


def __getattr__(name: str):
    # the configs import torch and transformers; `dpo-ref --help` should not wait for them
    if name in ("CONFIGS", "ExperimentConfig", "get_config"):
        from dpo_ref.experiments import configs

        return getattr(configs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Group:
    """An experiment group: the parts one seed runs, how they join, and how the seeds are summarised."""

    name: str  # the name --only takes; also the prefix of its files
    world: str  # the ExperimentConfig field it reads: "exact" or "sentiment"
    # a seed's parts, each with a rough share of the seed's time (to order them before any has been timed);
    # a part depends only on the config and the seed, never on another part
    parts: dict[str, float]
    # run_part(config, seed, part, device, progress) -> what that part measured (plain values)
    run_part: Callable[[ExperimentConfig, int, str, str, Progress], dict]
    # finish(config, seed, {part: what it measured}) -> {file name: contents without provenance}
    finish: Callable[[ExperimentConfig, int, dict[str, dict]], dict[str, dict]]
    count_runs: Callable[[ExperimentConfig, str], int]  # how many times a part calls progress (progress bars)
    # summarise(config, {seed: {file name: contents}}) -> {file name: contents}
    summarise: Callable[[ExperimentConfig, dict[int, dict[str, dict]]], dict[str, dict]]

    def seeds(self, config: ExperimentConfig) -> tuple[int, ...]:
        return tuple(getattr(config, self.world).seeds)

    def settings(self, config: ExperimentConfig) -> dict[str, Any]:
        """What the group ran, as its files' provenance records it."""
        world = getattr(config, self.world)
        return {"name": config.name, "torch_threads": config.torch_threads, self.world: dataclasses.asdict(world)}


# group name -> "module:attribute" of its Group, imported only when the group runs
GROUPS: dict[str, str] = {
    "exact": "dpo_ref.experiments.exact:GROUP",
    "sentiment": "dpo_ref.experiments.sentiment:GROUP",
}


def group(name: str) -> Group:
    """The :class:`Group` called ``name``; an :class:`~dpo_ref.errors.UnknownNameError` listing them otherwise."""
    if name not in GROUPS:
        raise UnknownNameError(f"unknown experiment group {name!r}; choose from {sorted(GROUPS)}")
    module, attribute = GROUPS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def checked_groups(groups: list[str] | str | None) -> list[str]:
    """``groups`` (None or empty: every group), each name checked before anything runs."""
    if not groups:
        return list(GROUPS)
    if isinstance(groups, str):  # "exact" would otherwise be read as the groups "e", "x", ...
        groups = [groups]
    for name in groups:
        group(name)
    return list(groups)


def reproduce(
    config: str | ExperimentConfig,
    *,
    device: str = "auto",
    out: str | Path | None = None,
    groups: list[str] | None = None,
    seeds: list[int] | None = None,
    summarise: bool = True,
    progress: Progress | None = None,
) -> list[Path]:
    """Run the experiment groups of ``config`` and write their results files; returns their paths.

    ``seeds`` (default: the configuration's) picks which seed files to (re)write;
    ``summarise`` then summarises every seed file of the configuration found in ``out``.
    """
    from dpo_ref.experiments.configs import get_config
    from dpo_ref.paths import RESULTS_DIR
    from dpo_ref.runtime import resolve_device, torch_threads

    names = checked_groups(groups)
    config = get_config(config) if isinstance(config, str) else config
    dev = resolve_device(device)
    out = Path(out) if out is not None else RESULTS_DIR
    written = []
    with torch_threads(config.torch_threads, dev):
        for name in names:
            g = group(name)
            for seed in checked_seeds(g, config, seeds):
                written += run_seed(g, config, seed, dev, out, progress or (lambda _: None))
            if summarise:
                written += write_summary(g, config, dev, out)
    return written


def checked_seeds(g: Group, config: ExperimentConfig, seeds: list[int] | None) -> tuple[int, ...]:
    """``seeds`` (None: all of the configuration's), each one of the configuration's."""
    known = g.seeds(config)
    if seeds is None:
        return known
    unknown = [s for s in seeds if s not in known]
    if unknown:
        raise UnknownNameError(f"seed {unknown[0]} is not a seed of the {config.name} configuration {list(known)}")
    return tuple(seeds)


def run_seed(g: Group, config: ExperimentConfig, seed: int, device, out: Path, progress: Progress) -> list[Path]:
    """Run every part of one seed of one group, one after the other, and write the seed's files."""
    return write_seed(
        g, config, seed, device, out, {part: run_part(g, config, seed, part, device, progress) for part in g.parts}
    )


def run_part(g: Group, config: ExperimentConfig, seed: int, part: str, device, progress: Progress) -> dict:
    """One part of one seed: ``{"measured", "wall_time_s", "date", "git_commit"}`` (what :func:`write_seed` joins).
    The commit is read as the part starts: a run of many minutes records the code it ran, even if the checkout
    moves on before it ends."""
    from dpo_ref.experiments.provenance import git_commit, now

    commit, start = git_commit(), time.perf_counter()
    measured = g.run_part(config, seed, part, str(device), progress)
    return {"measured": measured, "wall_time_s": time.perf_counter() - start, "date": now(), "git_commit": commit}


def write_seed(g: Group, config: ExperimentConfig, seed: int, device, out: Path, parts: dict[str, dict]) -> list[Path]:
    """Join the parts of one seed (:func:`run_part`'s results, by part) and write its files with provenance."""
    from dpo_ref.experiments.provenance import provenance

    missing = [part for part in g.parts if part not in parts]
    if missing:
        raise ValueError(f"{g.name} seed {seed}: parts {missing} have not run")
    results = g.finish(config, seed, {part: parts[part]["measured"] for part in g.parts})
    commits = sorted({parts[part]["git_commit"] or "unknown" for part in g.parts})
    info = provenance(
        g.settings(config),
        seeds={"seed": seed},
        device=device,
        wall_time_s=sum(parts[part]["wall_time_s"] for part in g.parts),
        commit=commits[0] if len(commits) == 1 else " and ".join(commits),
    )
    if len(g.parts) > 1:  # each part's end and code: they may have run at different times, in different processes
        info["parts"] = {
            part: {
                "wall_time_s": round(parts[part]["wall_time_s"], 1),
                "date": parts[part]["date"],
                "git_commit": parts[part]["git_commit"],
            }
            for part in g.parts
        }
    return _write(results, info, out / config.name)


def write_summary(g: Group, config: ExperimentConfig, device, out: Path) -> list[Path]:
    """Summarise every seed file of ``g`` in ``out/<config>/``; the summary records the seeds it read."""
    from dpo_ref.experiments.provenance import provenance
    from dpo_ref.results import load_results

    per_seed, wall = {}, 0.0
    for seed in g.seeds(config):
        name = f"{g.name}_seed{seed}"
        if (out / config.name / f"{name}.json").is_file():
            data = load_results(name, config=config.name, data_dir=out)
            wall += data["provenance"]["wall_time_s"]
            per_seed[seed] = {name: data}
    if not per_seed:
        return []
    info = provenance(g.settings(config), seeds={"seeds": sorted(per_seed)}, device=device, wall_time_s=wall)
    return _write(g.summarise(config, per_seed), info, out / config.name)


def _write(results: dict[str, dict], info: dict, folder: Path) -> list[Path]:
    from dpo_ref.experiments.provenance import write_json_atomic

    paths = []
    for file_name, data in results.items():
        path = folder / f"{file_name}.json"
        write_json_atomic(path, {**data, "provenance": info})
        paths.append(path)
    return paths


def count_runs(config: ExperimentConfig, groups: list[str] | None = None, seeds: list[int] | None = None) -> int:
    """The number of training runs ``reproduce(config, groups=groups)`` will do (for progress bars)."""
    total = 0
    for name in checked_groups(groups):
        g = group(name)
        total += sum(g.count_runs(config, part) for part in g.parts) * len(checked_seeds(g, config, seeds))
    return total
