"""The experiments behind the results pages: one framework for both worlds.

``dpo-ref reproduce --config smoke|cpu|gpu [--device auto|cpu|cuda] [--out DIR]`` runs
them (:mod:`dpo_ref.experiments.cli`); in Python, :func:`reproduce`. The named
configurations are in :mod:`dpo_ref.experiments.configs`: an ``ExperimentConfig`` holds
one config per world. Same config and seed on the same machine give the same numbers
(only ``provenance`` and timings differ).

An experiment *group* (:class:`Group`) runs in one process and writes its results
files; ``--jobs 2`` runs two groups side by side. Each group's module documents its
files: :mod:`dpo_ref.experiments.exact` (``exact_*.json``) and
:mod:`dpo_ref.experiments.sentiment` (``sentiment_*.json``). Adding a world is one module
with a runner and one entry in :data:`GROUPS`.

Every results file is written atomically to ``DIR/<config>/<name>.json`` (``DIR``
defaults to :data:`dpo_ref.paths.RESULTS_DIR`) and is a JSON object with a
``provenance`` key::

    "provenance": {
      "config": {"name": "cpu", "torch_threads": 1, "<world>": {...}},  # what the group ran
      "seeds": {...},             # the seeds the runs used
      "versions": {"python", "dpo_ref", "torch", "transformers", ...},
      "device": "cpu: x86_64, 2 logical cores, ..." | "NVIDIA H100 ...",
      "git_commit": "<sha>[-dirty]" | null,
      "wall_time_s": 412.3,       # the whole group (its files share it)
      "date": "2026-11-26T16:00:00+00:00",
      "command": "dpo-ref reproduce --config cpu"
    }

Method names in results files are the canonical names of :mod:`dpo_ref.methods`
(``"dpo"``, ``"ppo-gt"``, ...).
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
    """An experiment group: what it runs, and what its results files record."""

    name: str  # the name --only takes
    world: str  # the ExperimentConfig field it reads: "exact" or "sentiment"
    # run(config, device, progress) -> {file name: contents without provenance}
    run: Callable[[ExperimentConfig, str, Progress], dict[str, dict]]
    count_runs: Callable[[ExperimentConfig], int]  # how many times run() calls progress (progress bars)
    seeds: Callable[[ExperimentConfig], dict]  # the seeds its runs use, for the provenance

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
    progress: Progress | None = None,
) -> list[Path]:
    """Run the experiment groups of ``config`` and write their results files; returns their paths."""
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
            written += run_group(group(name), config, dev, out, progress or (lambda _: None))
    return written


def run_group(g: Group, config: ExperimentConfig, device, out: Path, progress: Progress) -> list[Path]:
    """Run one group and write its files, each with the group's provenance."""
    from dpo_ref.experiments.provenance import provenance, write_json_atomic

    start = time.perf_counter()
    results = g.run(config, str(device), progress)
    info = provenance(g.settings(config), seeds=g.seeds(config), device=device,
                      wall_time_s=time.perf_counter() - start)  # fmt: skip
    paths = []
    for file_name, data in results.items():
        path = out / config.name / f"{file_name}.json"
        write_json_atomic(path, {**data, "provenance": info})
        paths.append(path)
    return paths


def count_runs(config: ExperimentConfig, groups: list[str] | None = None) -> int:
    """The number of training runs ``reproduce(config, groups=groups)`` will do (for progress bars)."""
    return sum(group(name).count_runs(config) for name in checked_groups(groups))
