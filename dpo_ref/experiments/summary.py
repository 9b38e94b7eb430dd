"""One summariser for both worlds: the seeds' RUN records in, intervals over seeds, envelopes and verdicts out.

Both worlds write the same RUN record, one per trained policy::

    {"method": <a name of dpo_ref.methods>, "seed": 0,
     "params": {"beta": 0.5, ...},        # its setting: every hyperparameter (Method.setting)
     "final": {"reward": ..., "kl": ..., ...},               # where the run ended
     "trajectory": [{"step": 40, "reward": ..., "kl": ...}, ...],   # evaluations along training
     "train_metrics": {...},              # TRL's names, the last logged step
     ["objective": {"start", "end", "rose", ...}],   # PPO: its own objective
     ["diagnostics": [...]],              # PPO: approx-KL, clip fraction, ... per rollout
     ...}                                 # what the world measures besides (its stages)

A quantity is a number where the world measures it exactly (the exact world) and an
estimate ``{"mean", "stderr", "n"}`` where it samples (the sentiment world): :func:`value`
reads either. :func:`summarise` computes what every world's summary holds (``methods``,
``failed``, ``matched_kl``, ``kto_reference_point``, ``ppo``) and then each of the
world's named stages (:class:`WorldSummary`): the exact world's recovery or shift
studies, the sentiment world's win rates. Every interval is a 95% Student-t interval
over seeds (:func:`dpo_ref.analysis.interval`); every difference is paired by seed;
every verdict is ``"ahead"``, ``"behind"`` or ``"level"`` (:func:`dpo_ref.analysis.verdict`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from dpo_ref.analysis import bounded_interval, interval, kto_reference_point, matched_kl, upper_envelope
from dpo_ref.methods import DPO, KTO, PPO

__all__ = ["WorldSummary", "summarise", "first_seed", "value", "setting_key", "by_method", "trained_points"]

Point = tuple[float, float]  # (KL, reward) of one trained policy


def value(quantity: float | dict) -> float:
    """A measured quantity's value: the number itself (exact), or the mean of an estimate (sampled)."""
    return quantity["mean"] if isinstance(quantity, dict) else quantity


def setting_key(params: dict) -> tuple:
    """A setting as a dictionary key: its hyperparameters in name order."""
    return tuple(sorted(params.items()))


def by_method(runs: list[dict]) -> dict[str, list[dict]]:
    """The runs grouped by method, in the order the methods first appear."""
    out = defaultdict(list)
    for record in runs:
        out[record["method"]].append(record)
    return dict(out)


def trained_points(record: dict) -> list[Point]:
    """Every trained policy of one run: its evaluations along training (after its first update) and its end."""
    along = [(value(p["kl"]), value(p["reward"])) for p in record.get("trajectory", []) if p["step"] > 0]
    return [*along, (value(record["final"]["kl"]), value(record["final"]["reward"]))]


@dataclass(frozen=True)
class WorldSummary:
    """What a world adds to the shared summary: how one setting's runs become a table row, where the trained
    policies of a setting lie (averaged over seeds), the world's own fields for a method and a PPO setting,
    and the world's named stages."""

    # the runs of one setting (one per seed) and the seeds' files -> its row's numbers: intervals over seeds of
    # what the world measures
    setting_row: Callable[[list[dict], dict[int, dict]], dict]
    # the runs of one setting and its row -> its trained policies averaged over seeds, for the method's envelope
    mean_points: Callable[[list[dict], dict], list[Point]]
    # the runs of one PPO setting and its KL coefficient -> the world's own fields for that setting
    ppo_row: Callable[[list[dict], float], dict]
    # a method's runs and the seeds' files -> the world's own fields for that method (e.g. the selected setting)
    method_extra: Callable[[list[dict], dict[int, dict]], dict] = lambda records, seeds: {}
    # name -> stage(cfg, seeds, runs): the rest of the summary, each a named section
    stages: dict[str, Callable] = field(default_factory=dict)


def first_seed(key: str) -> Callable:
    """A stage that copies ``key`` from the first seed's file: what the world's seeds share (the world itself)."""
    return lambda cfg, seeds, runs: seeds[min(seeds)][key]


def summarise(world: WorldSummary, cfg, seeds: dict[int, dict]) -> dict:
    """A world's summary from ``{seed: its seed file's contents}``: the shared sections, then its stages."""
    runs = [record for data in seeds.values() for record in data["runs"]]
    failed = failed_settings(runs)
    kept = [r for r in runs if (r["method"], setting_key(r["params"])) not in failed]
    return {
        "seeds": sorted(seeds),
        "methods": {name: _method(records, seeds, world) for name, records in by_method(kept).items()},
        "failed": [{"method": m, "params": dict(p)} for m, p in sorted(failed)],
        "matched_kl": matched(kept),
        "kto_reference_point": kto_reference_point([r["train_metrics"] for r in runs if r["method"] == KTO]),
        PPO: ppo(runs, world),
        **{name: stage(cfg, seeds, runs) for name, stage in world.stages.items()},
    }


def failed_settings(runs: list[dict]) -> set[tuple[str, tuple]]:
    """PPO settings whose own objective did not rise in some seed: reported, left out of every comparison."""
    return {(r["method"], setting_key(r["params"])) for r in runs if "objective" in r and not r["objective"]["rose"]}


def _method(records: list[dict], seeds: dict[int, dict], world: WorldSummary) -> dict:
    """One method: a row per setting with intervals over seeds (in KL order), and the upper envelope of its
    trained policies (every setting along training and at its end, averaged over seeds): no point of it is
    untrained."""
    settings = defaultdict(list)
    for record in records:
        settings[setting_key(record["params"])].append(record)
    rows, trained = [], []
    for key, group in sorted(settings.items()):
        row = {"params": dict(key), "seeds": sorted(r["seed"] for r in group), **world.setting_row(group, seeds)}
        rows.append(row)
        trained.extend(world.mean_points(group, row))
    rows.sort(key=lambda row: row["kl"]["mean"])
    envelope = [list(point) for point in upper_envelope(trained)]
    return {"settings": rows, "envelope": envelope, **world.method_extra(records, seeds)}


def points_per_seed(records: list[dict]) -> dict[int, list[Point]]:
    """Every trained policy of each seed's runs."""
    out = defaultdict(list)
    for record in records:
        out[record["seed"]].extend(trained_points(record))
    return dict(out)


def matched(runs: list[dict]) -> dict[str, dict | None]:
    """DPO's trained policies against every other method's, at matched KL, seed by seed."""
    methods = by_method(runs)
    dpo = points_per_seed(methods[DPO])
    return {name: matched_kl(dpo, points_per_seed(records)) for name, records in methods.items() if name != DPO}


def ppo(runs: list[dict], world: WorldSummary) -> list[dict]:
    """Per PPO method and KL coefficient: its own objective at the start and the end, the seeds in which it
    rose, its diagnostics at the end (intervals) and along training (per seed), and the world's own fields."""
    groups = defaultdict(list)
    for record in runs:
        if "objective" in record:
            groups[(record["method"], record["params"]["kl_coef"])].append(record)
    out = []
    for (method, kl_coef), group in sorted(groups.items()):
        last = [r["diagnostics"][-1] for r in group if r["diagnostics"]]
        out.append(
            {
                "method": method,
                "kl_coef": kl_coef,
                "objective_start": interval([value(r["objective"]["start"]) for r in group]),
                "objective_end": interval([value(r["objective"]["end"]) for r in group]),
                "rose_in_seeds": sorted(r["seed"] for r in group if r["objective"]["rose"]),
                "seeds": sorted(r["seed"] for r in group),
                "final_diagnostics": {
                    k: bounded_interval(k, [d[k] for d in last]) for k in (last[0] if last else {}) if k != "step"
                },
                "diagnostics": {r["seed"]: r["diagnostics"] for r in group},
                **world.ppo_row(group, kl_coef),
            }
        )
    return out
