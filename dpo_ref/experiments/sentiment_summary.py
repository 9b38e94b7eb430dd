"""The sentiment world's seeds turned into claims: its part of the one summariser.

:func:`summarise` reads the ``sentiment_seed<k>.json`` contents and writes
``sentiment_summary.json``, the file the pages read, through
:func:`dpo_ref.experiments.summary.summarise` with the sentiment world's numbers
(:data:`SENTIMENT`). Every number comes from the test prompts; settings were selected on
the validation prompts. Differences are paired by seed (the seeds share nothing else, but
every method of a seed trains on the same pairs).

``sentiment_summary.json``
    the shared sections (:mod:`dpo_ref.experiments.summary`): ``seeds``; ``methods``:
    per method, ``settings`` (one row per grid value: ``params``, intervals of the test
    ``reward``, ``kl``, ``length``, the validation reward, and ``length_adjusted_gain``:
    the reward minus pi_ref's reward at the same completion length; ``trajectory``: the
    test reward and KL at the evaluations along training), ``envelope`` and ``selected``
    (the setting each seed chose on validation prompts, and the intervals of its test
    numbers); ``failed``; ``matched_kl``; ``kto_reference_point``; ``ppo`` (besides the
    shared fields, the ``rise`` of its objective). The sentiment world's stages: ``world``
    (seed 0's), ``reference`` (intervals of pi_ref's test reward, KL and length;
    ``length_bins``: its reward by completion length, averaged over seeds), ``pairs``,
    ``pair_examples`` and ``reward_model``; ``win_rates``: per method and temperature,
    the interval of the win rate against pi_ref and its verdict against one half, and DPO
    minus each method, paired; ``curves``: DPO's logged metrics (TRL's names) per beta,
    step by step, each an interval over seeds; and ``cost`` (seed 0).
"""

from __future__ import annotations

from dpo_ref.analysis import bounded_interval, interval, verdict
from dpo_ref.experiments.summary import WorldSummary, first_seed
from dpo_ref.experiments.summary import summarise as shared_summary
from dpo_ref.methods import DPO

__all__ = ["summarise"]


def summarise(cfg, seeds: dict[int, dict]) -> dict:
    """``sentiment_summary.json``'s contents from ``{seed: sentiment_seed<k> contents}``."""
    return shared_summary(SENTIMENT, cfg, seeds)


def _reference(seeds: dict[int, dict]) -> dict:
    refs = [d["reference"]["test"] for d in seeds.values()]
    n_bins = min(len(d["reference"]["length_bins"]) for d in seeds.values())
    bins = [
        {q: sum(d["reference"]["length_bins"][i][q] for d in seeds.values()) / len(seeds) for q in ("length", "reward")}
        for i in range(n_bins)
    ]
    return {
        **{q: bounded_interval(q, [r[q]["mean"] for r in refs]) for q in ("reward", "kl", "length")},
        "length_bins": bins,
    }


def _reward_at_length(bins: list[dict], length: float) -> float:
    """pi_ref's reward at a completion length: linear between its length bins, flat beyond them."""
    if length <= bins[0]["length"]:
        return bins[0]["reward"]
    for a, b in zip(bins, bins[1:]):
        if a["length"] <= length <= b["length"]:
            w = 0.0 if b["length"] == a["length"] else (length - a["length"]) / (b["length"] - a["length"])
            return a["reward"] + w * (b["reward"] - a["reward"])
    return bins[-1]["reward"]


def _numbers(rows: list[dict], bins: dict) -> dict:
    """Intervals over seeds of one setting's test numbers."""
    return {
        **{q: bounded_interval(q, [r["final"][q]["mean"] for r in rows]) for q in ("reward", "kl", "length")},
        "val_reward": interval([r["val"]["reward"]["mean"] for r in rows]),
        "length_adjusted_gain": interval(
            [
                r["final"]["reward"]["mean"] - _reward_at_length(bins[r["seed"]], r["final"]["length"]["mean"])
                for r in rows
            ]
        ),
        "truncated_fraction": bounded_interval("truncated_fraction", [r["final"]["truncated_fraction"] for r in rows]),
    }


def _length_bins(seeds: dict[int, dict]) -> dict[int, list[dict]]:
    return {s: data["reference"]["length_bins"] for s, data in seeds.items()}


def _setting_row(group: list[dict], bins: dict[int, list[dict]]) -> dict:
    """One setting's test numbers over seeds, an example completion, and its test numbers along training."""
    return {"example": group[0]["final"]["example"], **_numbers(group, bins), "trajectory": _trajectory(group)}


def _mean_points(group: list[dict], row: dict) -> list[tuple[float, float]]:
    """One setting's trained policies averaged over seeds: along training, and at its end."""
    along = [(p["kl"]["mean"], p["reward"]["mean"]) for p in row["trajectory"]]
    return [*along, (row["kl"]["mean"], row["reward"]["mean"])]


def _selected(records: list[dict], seeds: dict[int, dict]) -> dict:
    """The setting each seed chose on validation prompts, and the intervals of its test numbers."""
    method = records[0]["method"]
    chosen = [r for r in records if seeds[r["seed"]]["selected"].get(method, {}).get("params") == r["params"]]
    if not chosen:
        return {"selected": None}
    return {"selected": {"params": {r["seed"]: r["params"] for r in chosen}, **_numbers(chosen, _length_bins(seeds))}}


def _trajectory(group: list[dict]) -> list[dict]:
    """One setting's test reward and KL at its evaluations along training (before its end), over seeds."""
    steps = [p["step"] for p in group[0].get("trajectory", [])]
    return [
        {
            "step": step,
            **{q: bounded_interval(q, [r["trajectory"][i][q]["mean"] for r in group]) for q in ("reward", "kl")},
        }
        for i, step in enumerate(steps)
    ]


def _win_rates(seeds: dict[int, dict], cfg) -> dict:
    """Per method and temperature: the win rate against pi_ref over seeds, and DPO minus the method, paired."""
    out = {}
    methods = sorted({m for d in seeds.values() for m in d["win_rates"]})
    for method in methods:
        per_t = {}
        for t in (f"{t:g}" for t in cfg.win_rate_temperatures):
            values = {s: d["win_rates"][method][t]["win_rate"] for s, d in seeds.items() if method in d["win_rates"]}
            above_half = interval([v - 0.5 for v in values.values()])
            row = {
                "win_rate": bounded_interval("win_rate", list(values.values())),
                "verdict_vs_half": verdict(above_half),
            }
            if method != DPO:
                dpo = {s: d["win_rates"][DPO][t]["win_rate"] for s, d in seeds.items() if DPO in d["win_rates"]}
                difference = interval([dpo[s] - v for s, v in values.items() if s in dpo])
                row["dpo_minus"] = {"difference": difference, "verdict": verdict(difference)}
            per_t[t] = row
        out[method] = per_t
    return out


def _curves(seeds: dict[int, dict]) -> dict[str, dict]:
    """DPO's logged metrics per beta: ``{"step": [...], "<name>": [interval at each step]}`` over seeds."""
    out = {}
    for beta in seeds[min(seeds)]["curves"]:
        per_seed = [d["curves"][beta] for d in seeds.values()]
        n = min(len(c["step"]) for c in per_seed)
        names = [name for name in per_seed[0] if name != "step"]
        out[beta] = {
            "step": per_seed[0]["step"][:n],
            **{name: [bounded_interval(name, [c[name][i] for c in per_seed]) for i in range(n)] for name in names},
        }
    return out


def _ppo_row(group: list[dict], kl_coef: float) -> dict:
    """How much PPO's own objective rose, on validation samples (each seed's an estimate)."""
    return {"rise": interval([r["objective"]["rise"] for r in group])}


def _pairs(cfg, seeds: dict[int, dict], runs: list[dict]) -> dict:
    return {
        k: interval([d["pairs"][k] for d in seeds.values()])
        for k in ("n_pairs", "mean_chosen_reward", "mean_rejected_reward", "length_gap")
    }


def _reward_model(cfg, seeds: dict[int, dict], runs: list[dict]) -> dict:
    accuracy = [d["reward_model"]["pair_accuracy"] for d in seeds.values()]
    return {"pair_accuracy": bounded_interval("pair_accuracy", accuracy)}


SENTIMENT = WorldSummary(
    setting_row=lambda group, seeds: _setting_row(group, _length_bins(seeds)),
    mean_points=_mean_points,
    ppo_row=_ppo_row,
    method_extra=_selected,
    stages={
        "world": first_seed("world"),
        "reference": lambda cfg, seeds, runs: _reference(seeds),
        "pairs": _pairs,
        "pair_examples": lambda cfg, seeds, runs: seeds[min(seeds)]["pairs"]["examples"],
        "reward_model": _reward_model,
        "win_rates": lambda cfg, seeds, runs: _win_rates(seeds, cfg),
        "curves": lambda cfg, seeds, runs: _curves(seeds),
        "cost": lambda cfg, seeds, runs: seeds[min(seeds)].get("cost"),
    },
)
