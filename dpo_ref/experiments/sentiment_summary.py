"""The sentiment world's seeds turned into claims: means with 95% intervals, envelopes, verdicts.

:func:`summarise` reads the ``sentiment_seed<k>.json`` contents and writes
``sentiment_summary.json``, the file the pages read. Every number comes from the test
prompts; settings were selected on the validation prompts. Intervals are 95% Student-t
intervals over seeds (:func:`dpo_ref.analysis.interval`), differences are paired by seed
(the seeds share nothing else, but every method of a seed trains on the same pairs).

``sentiment_summary.json``
    ``seeds``, ``world`` (seed 0's), ``reference`` (intervals of pi_ref's test reward, KL
    and length; ``length_bins``: its reward by completion length, averaged over seeds),
    ``pairs`` and ``reward_model`` (intervals); ``methods``: per method, ``settings`` (one
    row per grid value: intervals of the test ``reward``, ``kl``, ``length``, the
    validation reward, and ``length_adjusted_gain``: the reward minus pi_ref's reward at
    the same completion length; ``trajectory``: the test reward and KL at the evaluations
    along training), ``envelope`` (the upper envelope of the trained policies: every
    setting along training and at its end, averaged over seeds) and ``selected`` (the setting each seed chose on validation prompts, and the
    intervals of its test numbers); ``failed``: PPO settings whose objective did not rise
    in some seed (left out of ``methods`` and of every comparison); ``matched_kl``: DPO
    against every other method at matched KL, over the KLs trained policies of both reach
    (None where they share none); ``kto_reference_point``: KTO's :math:`z_0`
    at the end of its runs (:func:`dpo_ref.analysis.kto_reference_point`); ``win_rates``: per method and temperature,
    the interval of the win rate against pi_ref and its verdict against one half, and
    DPO minus each method, paired; ``ppo``: per method and KL coefficient, the objective's
    start, end and rise, the seeds in which it rose, the final diagnostics and their
    trajectories; ``curves``: DPO's logged metrics (TRL's names) per beta, step by step, each
    an interval over seeds; and ``cost`` (seed 0).
"""

from __future__ import annotations

from collections import defaultdict

from dpo_ref.analysis import bounded_interval, interval, kto_reference_point, matched_kl, upper_envelope, verdict
from dpo_ref.methods import DPO, KTO, PPO

__all__ = ["summarise"]


def summarise(cfg, seeds: dict[int, dict]) -> dict:
    first = seeds[min(seeds)]
    runs = [row for data in seeds.values() for row in data["runs"]]
    failed = {(r["method"], r["value"]) for r in runs if not r.get("objective", {}).get("rose", True)}
    kept = [r for r in runs if (r["method"], r["value"]) not in failed]
    bins = {s: data["reference"]["length_bins"] for s, data in seeds.items()}
    return {
        "seeds": sorted(seeds),
        "world": first["world"],
        "reference": _reference(seeds),
        "pairs": {
            k: interval([d["pairs"][k] for d in seeds.values()])
            for k in ("n_pairs", "mean_chosen_reward", "mean_rejected_reward", "length_gap")
        },
        "pair_examples": first["pairs"]["examples"],
        "reward_model": {
            "pair_accuracy": bounded_interval(
                "pair_accuracy", [d["reward_model"]["pair_accuracy"] for d in seeds.values()]
            )
        },
        "methods": {name: _method(rows, seeds, bins) for name, rows in _by_method(kept).items()},
        "failed": [{"method": m, "value": v} for m, v in sorted(failed)],
        "matched_kl": _matched(kept),
        "kto_reference_point": kto_reference_point([r["final_metrics"] for r in runs if r["method"] == KTO]),
        "win_rates": _win_rates(seeds, cfg),
        PPO: _ppo(runs),
        "curves": _curves(seeds),
        "cost": first.get("cost"),
    }


def _by_method(runs: list[dict]) -> dict[str, list[dict]]:
    out = defaultdict(list)
    for row in runs:
        out[row["method"]].append(row)
    return dict(out)


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
        **{q: bounded_interval(q, [r["test"][q]["mean"] for r in rows]) for q in ("reward", "kl", "length")},
        "val_reward": interval([r["val"]["reward"]["mean"] for r in rows]),
        "length_adjusted_gain": interval(
            [
                r["test"]["reward"]["mean"] - _reward_at_length(bins[r["seed"]], r["test"]["length"]["mean"])
                for r in rows
            ]
        ),
        "truncated_fraction": bounded_interval("truncated_fraction", [r["test"]["truncated_fraction"] for r in rows]),
    }


def _method(rows: list[dict], seeds: dict[int, dict], bins: dict) -> dict:
    settings = defaultdict(list)
    for row in rows:
        settings[row["value"]].append(row)
    table = [
        {
            "hyperparameter": group[0]["hyperparameter"],
            "value": value,
            "seeds": sorted(r["seed"] for r in group),
            "example": group[0]["test"]["example"],
            **_numbers(group, bins),
            "trajectory": _trajectory(group),
        }
        for value, group in sorted(settings.items())
    ]
    table.sort(key=lambda row: row["kl"]["mean"])
    # every trained policy, averaged over seeds: each setting along training and at its end
    trained = [(p["kl"]["mean"], p["reward"]["mean"]) for row in table for p in row["trajectory"]]
    envelope = upper_envelope([*trained, *((r["kl"]["mean"], r["reward"]["mean"]) for r in table)])
    method = rows[0]["method"]
    chosen = [r for r in rows if seeds[r["seed"]]["selected"].get(method, {}).get("value") == r["value"]]
    selected = {"values": {r["seed"]: r["value"] for r in chosen}, **_numbers(chosen, bins)} if chosen else None
    return {"settings": table, "envelope": [list(p) for p in envelope], "selected": selected}


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


def _matched(runs: list[dict]) -> dict[str, dict | None]:
    """DPO's trained policies against every other method's at matched KL: every run at its evaluations along
    training and at its end, on the test prompts."""

    def points(rows):
        out = defaultdict(list)
        for r in rows:
            along = [(p["kl"]["mean"], p["reward"]["mean"]) for p in r.get("trajectory", [])]
            out[r["seed"]].extend([*along, (r["test"]["kl"]["mean"], r["test"]["reward"]["mean"])])
        return dict(out)

    methods = _by_method(runs)
    dpo = points(methods[DPO])
    return {name: matched_kl(dpo, points(rows)) for name, rows in methods.items() if name != DPO}


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


def _ppo(runs: list[dict]) -> list[dict]:
    groups = defaultdict(list)
    for r in runs:
        if "objective" in r:
            groups[(r["method"], r["value"])].append(r)
    out = []
    for (method, kl_coef), rows in sorted(groups.items()):
        last = [r["diagnostics"][-1] for r in rows if r["diagnostics"]]
        out.append(
            {
                "method": method,
                "kl_coef": kl_coef,
                "objective_start": interval([r["objective"]["start"]["mean"] for r in rows]),
                "objective_end": interval([r["objective"]["end"]["mean"] for r in rows]),
                "rise": interval([r["objective"]["rise"] for r in rows]),
                "rose_in_seeds": sorted(r["seed"] for r in rows if r["objective"]["rose"]),
                "seeds": sorted(r["seed"] for r in rows),
                "final_diagnostics": {
                    k: bounded_interval(k, [d[k] for d in last]) for k in (last[0] if last else {}) if k != "step"
                },
                "diagnostics": {r["seed"]: r["diagnostics"] for r in rows},
            }
        )
    return out
