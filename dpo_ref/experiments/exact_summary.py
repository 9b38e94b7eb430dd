"""The exact world's seeds turned into claims: its part of the one summariser.

:func:`summarise` reads the ``exact_seed<k>.json`` contents and writes
``exact_summary.json``, the file the pages read, through
:func:`dpo_ref.experiments.summary.summarise`: the sections every world's summary
holds, with the exact world's numbers (:data:`EXACT`), then its own stages.

``exact_summary.json``
    the shared sections (:mod:`dpo_ref.experiments.summary`): ``seeds``; ``methods``:
    per method, ``settings`` (one row per grid value: ``params``, and the intervals of
    ``reward``, ``kl``, ``entropy``, ``frontier_gap`` and, for DPO and PPO-GT,
    ``kl_to_optimum``) and ``envelope``; ``failed``; ``matched_kl``;
    ``kto_reference_point``; ``ppo``: per method and KL coefficient, besides the shared
    fields, its ``share_of_gain`` (how much of the rise to the best achievable objective
    PPO's budget reached), the seeds in which its objective was still rising at the end,
    and each seed's run evaluated after every rollout. The exact world's stages:
    ``world`` and ``optimal_frontier`` (from the seed files, identical across seeds),
    ``reward_model``, ``recovery``, ``deterministic``, ``online``, ``shift``,
    ``displacement``, ``overoptimisation``: see each function below.
"""

from __future__ import annotations

from collections import defaultdict
from statistics import mean

from dpo_ref.analysis import (
    bounded_interval,
    envelope_at,
    interval,
    upper_envelope,
    verdict,
)
from dpo_ref.experiments.summary import WorldSummary, first_seed, points_per_seed, setting_key
from dpo_ref.experiments.summary import summarise as shared_summary
from dpo_ref.methods import DPO, DPOP, IPO, SIMPO

__all__ = ["summarise"]

QUANTITIES = ("reward", "kl", "entropy", "kl_to_optimum")


def summarise(cfg, seeds: dict[int, dict]) -> dict:
    """``exact_summary.json``'s contents from ``{seed: exact_seed<k> contents}``."""
    return shared_summary(EXACT, cfg, seeds)


def _final(records: list[dict], quantity: str) -> dict | None:
    values = [r["final"][quantity] for r in records if quantity in r["final"]]
    return bounded_interval(quantity, values) if values else None


def _setting_row(group: list[dict], seeds: dict[int, dict]) -> dict:
    """One setting's exact numbers over seeds, and how far below the optimal frontier it ended."""
    row = {q: _final(group, q) for q in QUANTITIES if _final(group, q) is not None}
    row["frontier_gap"] = interval([r["optimal_reward_at_kl"] - r["final"]["reward"] for r in group])
    return row


def _mean_points(group: list[dict], row: dict) -> list[tuple[float, float]]:
    """The ``(kl, reward)`` of one setting at each evaluation after its first update, averaged over its seeds
    (the trajectory ends where the run ends)."""
    steps = [p["step"] for p in group[0]["trajectory"]]
    return [
        (mean(r["trajectory"][i]["kl"] for r in group), mean(r["trajectory"][i]["reward"] for r in group))
        for i, step in enumerate(steps)
        if step > 0
    ]


def _ppo_row(group: list[dict], kl_coef: float) -> dict:
    """What the exact world knows about a PPO setting besides: whether its objective still rose at the end,
    how much of the achievable gain it reached, and each run evaluated after every rollout (the animation's)."""
    return {
        "rising_at_end_in_seeds": sorted(r["seed"] for r in group if _rising_at_end(r, kl_coef)),
        "share_of_gain": interval([_share_of_gain(r["objective"]) for r in group]),
        "trajectories": {r["seed"]: r.get("every_rollout", r["trajectory"]) for r in group},
    }


def _share_of_gain(objective: dict) -> float:
    """How much of the achievable rise of PPO's own objective a run reached: (end - start) / (optimum - start),
    1 at the optimum, 0 where it started, below 0 if the objective fell."""
    return (objective["end"] - objective["start"]) / (objective["optimum"] - objective["start"])


def _rising_at_end(record: dict, kl_coef: float) -> bool:
    """Whether PPO's own objective (E[score] - kl_coef KL, exact) was higher at its end than two thirds of the way."""
    points = record["trajectory"]
    objective = [p["score"] - kl_coef * p["kl"] for p in points]
    return objective[-1] > objective[round(2 * (len(points) - 1) / 3)] + 1e-9


# --------------------------------------------------------------------------- studies


def recovery(seeds: dict[int, dict], cfg) -> dict:
    """KL(pi_DPO || pi*_beta) against the number of pairs (at ``beta``) and against beta (the frontier's runs).

    Each row also has ``closer_than_reference``: pi_ref's own KL to pi*_beta minus DPO's, per seed, as an
    interval, and its ``verdict`` ("ahead": DPO ends closer to pi*_beta than it started).
    """
    per_n = defaultdict(list)  # (budget, n_pairs, steps) -> one KL per seed
    for data in seeds.values():
        for record in data["studies"]["recovery"]:
            params = record["params"]
            per_n[(params["budget"], params["n_pairs"], params["steps"])].append(record["final"]["kl_to_optimum"])
    per_beta = defaultdict(list)
    for data in seeds.values():
        for record in data["runs"]:
            if record["method"] == DPO:
                per_beta[record["params"]["beta"]].append(record["final"]["kl_to_optimum"])
    reference = seeds[min(seeds)]["world"]["reference_kl_to_optimum"]

    def row(values: list[float], start: float) -> dict:
        closer = interval([start - v for v in values])
        return {
            "farther_in_seeds": sum(v > start for v in values),  # seeds that end farther from pi*_beta than pi_ref
            "kl_to_optimum": bounded_interval("kl_to_optimum", values),
            "closer_than_reference": closer,
            "verdict": verdict(closer),
        }

    return {
        "beta": cfg.beta,
        # "updates": the same updates for every n, so fewer pairs are passed over more often; "epochs": the same
        # passes over the pairs as the most pairs get, so fewer pairs get fewer updates. `epochs` says how often
        "per_n_pairs": [
            {
                "budget": budget,
                "n_pairs": n,
                "steps": steps,
                "epochs": steps * cfg.batch_size / n,
                **row(v, reference[f"{cfg.beta:g}"]),
            }
            for (budget, n, steps), v in sorted(per_n.items(), key=lambda item: (item[0][0] != "updates", item[0][1]))
        ],
        "per_beta": [
            {"beta": b, **row(v, reference[f"{b:g}"]), "reference_kl_to_optimum": reference[f"{b:g}"]}
            for b, v in sorted(per_beta.items())
        ],
        "reference_kl_to_optimum": reference[f"{cfg.beta:g}"],
    }


def _mean_trajectory(records: list[dict], quantity: str) -> list[dict]:
    """The trajectory of ``quantity`` averaged over seeds, step by step, with intervals."""
    steps = [point["step"] for point in records[0]["trajectory"]]
    return [
        {"step": step, quantity: bounded_interval(quantity, [r["trajectory"][i][quantity] for r in records])}
        for i, step in enumerate(steps)
    ]


def deterministic(seeds: dict[int, dict]) -> dict:
    """DPO and IPO on argmax labels: the KL over training, and whether it still grows at the end.

    "Still growing" is judged from each seed's own growth over the last quarter of training
    (KL at the end minus KL at three quarters), as an interval over seeds.
    """
    out = {}
    for name in (DPO, IPO):
        records = [r for data in seeds.values() for r in data["studies"]["deterministic"] if r["method"] == name]
        quarter = (3 * len(records[0]["trajectory"])) // 4
        growth = interval([r["trajectory"][-1]["kl"] - r["trajectory"][quarter]["kl"] for r in records])
        out[name] = {
            "trajectory": _mean_trajectory(records, "kl"),
            "final_kl": _final(records, "kl"),
            "final_reward": _final(records, "reward"),
            "late_growth": growth,
            "still_growing": verdict(growth) == "ahead",
        }
    return out


def _paired(a: list[dict], b: list[dict], quantity: str) -> dict:
    """``quantity`` of ``a`` minus that of ``b``, paired by seed, with its verdict."""
    by_seed = {r["seed"]: r["final"][quantity] for r in b}
    difference = interval([r["final"][quantity] - by_seed[r["seed"]] for r in a])
    return {"difference": difference, "verdict": verdict(difference)}


def online(seeds: dict[int, dict], runs: list[dict], cfg) -> dict:
    """Online against offline DPO at ``beta``: the same labelled pairs and updates."""
    on = [{**data["studies"]["online"]["rounds"][-1], "seed": s} for s, data in seeds.items()]
    off = [r for r in runs if r["method"] == DPO and r["params"]["beta"] == cfg.beta]
    quantities = ("reward", "kl", "kl_to_optimum")
    return {
        "beta": cfg.beta,
        "rounds": cfg.online_rounds,
        "online": {q: _final(on, q) for q in quantities},
        "offline": {q: _final(off, q) for q in quantities},
        "online_minus_offline": {q: _paired(on, off, q) for q in quantities},
        "online_path": [
            {
                "round": i,
                "reward": interval([d["studies"]["online"]["rounds"][i]["final"]["reward"] for d in seeds.values()]),
                "kl": bounded_interval(
                    "kl", [d["studies"]["online"]["rounds"][i]["final"]["kl"] for d in seeds.values()]
                ),
            }
            for i in range(cfg.online_rounds)
        ],
    }


def shift(seeds: dict[int, dict]) -> dict:
    """DPO on shifted pairs, from pi_ref as it is and after Preferred-FT."""
    plain = [data["studies"]["shift"][DPO] for data in seeds.values()]
    sft = [data["studies"]["shift"]["dpo_after_preferred_ft"] for data in seeds.values()]
    first = seeds[min(seeds)]["studies"]["shift"]
    return {
        "temperature": first["temperature"],
        "data_kl_to_reference": first["data_kl_to_reference"],
        DPO: {q: _final(plain, q) for q in ("reward", "kl")},
        "preferred_ft": {
            q: _final([d["studies"]["shift"]["preferred_ft"] for d in seeds.values()], q) for q in ("reward", "kl")
        },
        "dpo_after_preferred_ft": {q: _final(sft, q) for q in ("reward", "kl")},
        "after_minus_plain": {q: _paired(sft, plain, q) for q in ("reward", "kl")},
        "after_against_dpo_grid": _against_grid(seeds, sft),
    }


def _against_grid(seeds: dict[int, dict], records: list[dict]) -> dict | None:
    """Each seed's run against the same seed's DPO grid at the run's own KL: its reward minus the upper envelope of
    DPO's trained policies there (None when that KL lies outside what they reach in some seed)."""
    differences = []
    for record in records:
        grid = [r for r in seeds[record["seed"]]["runs"] if r["method"] == DPO]
        front = upper_envelope(points_per_seed(grid)[record["seed"]])
        at = envelope_at(front, record["final"]["kl"])
        if at is None:
            return None
        differences.append(record["final"]["reward"] - at)
    difference = interval(differences)
    return {"difference": difference, "verdict": verdict(difference)}


LOG_PROB_CHANGES = ("logp_change/chosen", "logp_change/rejected")
# what DPOP's summary follows along training: the two log-prob changes, and the mass on answers both chosen and
# rejected (in different pairs), where its penalty binds
DPOP_TRACKED = (*LOG_PROB_CHANGES, "mass/both")
DISPLACEMENT = ("mass/chosen", "mass/rejected", "mass/both", "mass/unseen", "mass/unseen_low_reward", *LOG_PROB_CHANGES)


def displacement(runs: list[dict], cfg) -> dict:
    """Where DPO's probability mass goes over training, at every beta of its grid (means over seeds); with
    DPOP in the grids, also :func:`dpop_against_dpo`."""
    out = {}
    for beta in sorted({r["params"]["beta"] for r in runs if r["method"] == DPO}):
        records = [r for r in runs if r["method"] == DPO and r["params"]["beta"] == beta]
        out[f"{beta:g}"] = {
            "trajectory": [
                {
                    "step": point["step"],
                    **{q: bounded_interval(q, [r["trajectory"][i][q] for r in records]) for q in DISPLACEMENT},
                }
                for i, point in enumerate(records[0]["trajectory"])
            ],
            "start": {q: bounded_interval(q, [r["trajectory"][0][q] for r in records]) for q in DISPLACEMENT},
            # the probability of the answers only ever chosen, end minus start, per seed
            "only_chosen_change": _change(records, "mass/chosen"),
        }
    result = {"beta": cfg.beta, "per_beta": out}
    if any(r["method"] == DPOP for r in runs):
        result[DPOP] = dpop_against_dpo(runs)
    return result


def dpop_against_dpo(runs: list[dict]) -> dict:
    """DPO-Positive, the proposed fix for displacement, at each beta of its grid: its chosen and rejected answers'
    log-probability changes and the mass on answers both chosen and rejected, over training (means over seeds),
    and ``chosen_kept``: its chosen answers' change at the end minus DPO's, paired by seed at the same beta (the
    same pairs), with its verdict ("ahead": DPOP ends with the chosen answers more probable than DPO leaves
    them)."""
    out = {}
    for beta in sorted({r["params"]["beta"] for r in runs if r["method"] == DPOP}):
        dpop = {r["seed"]: r for r in runs if r["method"] == DPOP and r["params"]["beta"] == beta}
        dpo = {r["seed"]: r for r in runs if r["method"] == DPO and r["params"]["beta"] == beta}
        if set(dpop) != set(dpo):
            raise ValueError(f"DPOP at beta {beta:g} ran seeds {sorted(dpop)}, DPO seeds {sorted(dpo)}: no pairing")
        seeds = sorted(dpop)
        final = "logp_change/chosen"
        kept = interval([dpop[s]["trajectory"][-1][final] - dpo[s]["trajectory"][-1][final] for s in seeds])
        out[f"{beta:g}"] = {
            "trajectory": [
                {
                    "step": point["step"],
                    **{q: bounded_interval(q, [dpop[s]["trajectory"][i][q] for s in seeds]) for q in DPOP_TRACKED},
                }
                for i, point in enumerate(dpop[seeds[0]]["trajectory"])
            ],
            "chosen_kept": {"change": kept, "verdict": verdict(kept)},
        }
    return out


def _change(records: list[dict], quantity: str) -> dict:
    """``quantity`` at the end of training minus at its start, per seed, with its verdict ("ahead": it rose)."""
    change = interval([r["trajectory"][-1][quantity] - r["trajectory"][0][quantity] for r in records])
    return {"change": change, "verdict": verdict(change)}


# a drop of true reward below this (r* has standard deviation 1 over responses) is not called over-optimisation
OVER_OPTIMISED = 0.01


def overoptimisation(runs: list[dict]) -> dict:
    """True reward against KL over training, for DPO, IPO and SimPO over their grids.

    A setting over-optimises when its reward passes a peak and falls: ``drop`` is the
    peak reward along the trajectory minus the final one, per seed, as an interval; it
    counts when the whole interval is above :data:`OVER_OPTIMISED`.
    """
    out = {}
    for name in (DPO, IPO, SIMPO):
        rows = []
        settings = defaultdict(list)
        for r in runs:
            if r["method"] == name:
                settings[setting_key(r["params"])].append(r)
        for key, records in sorted(settings.items()):
            drop = interval([max(p["reward"] for p in r["trajectory"]) - r["final"]["reward"] for r in records])
            rows.append(
                {
                    "params": dict(key),
                    "path": [
                        {
                            "step": point["step"],
                            "reward": interval([r["trajectory"][i]["reward"] for r in records]),
                            "kl": bounded_interval("kl", [r["trajectory"][i]["kl"] for r in records]),
                        }
                        for i, point in enumerate(records[0]["trajectory"])
                    ],
                    "drop": drop,
                    "over_optimised": drop["low"] > OVER_OPTIMISED,
                }
            )
        out[name] = rows
    return out


def _reward_model(cfg, seeds: dict[int, dict], runs: list[dict]) -> dict:
    return {
        k: bounded_interval(k, [d["reward_model"][k] for d in seeds.values()])
        for k in ("pair_accuracy_under_reference", "correlation_with_true_reward")
    }


EXACT = WorldSummary(
    setting_row=_setting_row,
    mean_points=_mean_points,
    ppo_row=_ppo_row,
    stages={
        "world": first_seed("world"),
        "optimal_frontier": first_seed("optimal_frontier"),
        "reward_model": _reward_model,
        "recovery": lambda cfg, seeds, runs: recovery(seeds, cfg),
        "deterministic": lambda cfg, seeds, runs: deterministic(seeds),
        "online": lambda cfg, seeds, runs: online(seeds, runs, cfg),
        "shift": lambda cfg, seeds, runs: shift(seeds),
        "displacement": lambda cfg, seeds, runs: displacement(runs, cfg),
        "overoptimisation": lambda cfg, seeds, runs: overoptimisation(runs),
    },
)
