"""Every number a results page quotes, pinned on hand-made inputs with answers worked out by hand.

The path from measured runs to a sentence on a page is: per-seed records
(``exact_seed<k>.json``, ``sentiment_seed<k>.json``) -> the summarisers of
:mod:`dpo_ref.experiments` (grouping by method, the failed-run filter, envelopes,
matched-KL comparisons) -> :mod:`dpo_ref.analysis` (intervals over seeds, envelopes,
verdicts) -> the macros of :mod:`dpo_ref.site.macros` (numbers and verdicts as words).
Each step is fed here with small records written by hand, in the shape of the real seed
files under ``docs/results/data/cpu``, and its output is checked against numbers
computed by hand (the working is in the comments): never against the same code run a
second way, and never against a results file that code wrote.

Throughout, three seeds give 2 degrees of freedom and the two-sided 95% t quantile
4.303; a sample ``c - d, c, c + d`` has mean ``c``, standard deviation ``d`` and standard
error ``d / sqrt(3)``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from dpo_ref.analysis import T_975, envelope_at, interval, matched_kl, upper_envelope, verdict
from dpo_ref.experiments import exact_summary, sentiment_summary
from dpo_ref.experiments.exact_summary import DISPLACEMENT
from dpo_ref.site import macros

SQRT3 = math.sqrt(3)
T2 = 4.303  # t_{0.975} with 2 degrees of freedom, to 3 decimals (tables: 4.30265)


def iv(mean: float, sem: float, n: int = 3, t: float = T2) -> dict:
    """The interval a mean and a standard error worked out by hand should give: mean +- t * sem."""
    return {"mean": mean, "sem": sem, "low": mean - t * sem, "high": mean + t * sem, "n": n}


def iv_log(values: list[float]) -> dict:
    """A quantity above 0 (a KL, a length), by hand: the t-interval of log(v), mapped back with exp."""
    mean, sd = mean_sd(values)
    z_mean, z_sd = mean_sd([math.log(v) for v in values])
    half = T2 * z_sd / SQRT3
    return {"mean": mean, "sem": sd / SQRT3, "low": math.exp(z_mean - half), "high": math.exp(z_mean + half), "n": 3}


def iv_logit(values: list[float]) -> dict:
    """A share in (0, 1), by hand: the t-interval of log(v / (1 - v)), mapped back with the logistic."""
    mean, sd = mean_sd(values)
    z_mean, z_sd = mean_sd([math.log(v / (1 - v)) for v in values])
    half = T2 * z_sd / SQRT3
    back = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    return {"mean": mean, "sem": sd / SQRT3, "low": back(z_mean - half), "high": back(z_mean + half), "n": 3}


def points(front) -> list[float]:
    """An envelope's points, flattened for pytest.approx."""
    return [v for point in front for v in point]


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation, the textbook way."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def close(got: dict, expected: dict, abs_tol: float = 1e-12) -> bool:
    return set(got) == set(expected) and all(got[k] == pytest.approx(expected[k], abs=abs_tol) for k in expected)


def plain(html: str) -> str:
    """A macro's text without the spans that mark numbers and verdicts."""
    for tag in ('<span class="dpo-number">', "</span>"):
        html = html.replace(tag, "")
    for word in ("ahead", "behind", "level"):
        html = html.replace(f'<span class="dpo-verdict" data-verdict="{word}">', "")
    return html


# =========================================================================== dpo_ref.analysis

# the two-sided 95% quantile of Student's t, from printed tables (4 decimals)
T_TABLE = {
    1: 12.7062,
    2: 4.3027,
    3: 3.1824,
    4: 2.7764,
    5: 2.5706,
    6: 2.4469,
    7: 2.3646,
    8: 2.3060,
    9: 2.2622,
    10: 2.2281,
    11: 2.2010,
    12: 2.1788,
    15: 2.1314,
    20: 2.0860,
    30: 2.0423,
    60: 2.0003,
}


def test_three_seed_interval_by_hand():
    # 1, 3, 5: mean 3, sample standard deviation 2 (squares 4 + 0 + 4 over 2 degrees of freedom),
    # standard error 2 / sqrt(3), half-width 4.303 * 2 / sqrt(3) = 4.96868
    got = interval([1.0, 3.0, 5.0])
    assert close(
        got, {"mean": 3.0, "sem": 2 / SQRT3, "low": 3 - 4.303 * 2 / SQRT3, "high": 3 + 4.303 * 2 / SQRT3, "n": 3}
    )
    assert got["low"] == pytest.approx(-1.968676, abs=1e-6) and got["high"] == pytest.approx(7.968676, abs=1e-6)
    # the order of the seeds changes nothing
    assert close(interval([5.0, 1.0, 3.0]), got)


def test_the_t_quantile_for_2_degrees_of_freedom_is_4_303():
    assert T_975[2] == 4.303
    got = interval([0.2, 0.5, 0.8])  # standard deviation 0.3, standard error 0.3 / sqrt(3)
    quantile = (got["high"] - got["mean"]) / got["sem"]
    assert quantile == pytest.approx(4.303, abs=1e-12)
    assert quantile == pytest.approx(T_TABLE[2], abs=5e-4)


@pytest.mark.parametrize("dof", sorted(T_TABLE))
def test_the_t_quantile_matches_the_tables_at_every_sample_size(dof):
    # any sample of dof + 1 values that are not all equal: here 0, 2, 0, 2, ...
    values = [float(i % 2) * 2 for i in range(dof + 1)]
    got = interval(values)
    quantile = (got["high"] - got["mean"]) / got["sem"]
    # up to 10 degrees of freedom the table to 3 decimals; beyond, within 0.003 (analysis.py's own promise)
    assert quantile == pytest.approx(T_TABLE[dof], abs=5e-4 if dof <= 10 else 3e-3), dof


def test_an_interval_with_more_than_10_degrees_of_freedom_by_hand():
    # 12 seeds, six at 0 and six at 2: mean 1; squares 12 * 1 over 11 degrees of freedom, so the standard
    # deviation is sqrt(12 / 11) and the standard error sqrt(12 / 11) / sqrt(12) = 1 / sqrt(11)
    got = interval([0.0, 2.0] * 6)
    assert got["n"] == 12 and got["mean"] == pytest.approx(1.0) and got["sem"] == pytest.approx(1 / math.sqrt(11))
    # t_{0.975, 11} = 2.20099 from the tables
    assert got["high"] == pytest.approx(1 + 2.20099 / math.sqrt(11), abs=3e-3 / math.sqrt(11))
    assert got["low"] == pytest.approx(1 - 2.20099 / math.sqrt(11), abs=3e-3 / math.sqrt(11))
    # and the quantile falls with the degrees of freedom: below 10 degrees' 2.228, above 20 degrees' 2.086
    quantile = (got["high"] - got["mean"]) / got["sem"]
    assert 2.086 < quantile < 2.228


def test_tied_seeds_give_a_zero_width_interval():
    assert interval([0.7, 0.7, 0.7]) == {"mean": 0.7, "sem": 0.0, "low": 0.7, "high": 0.7, "n": 3}
    assert verdict(interval([0.7, 0.7, 0.7])) == "ahead"  # every seed above 0, and nothing in between
    assert verdict(interval([-0.2, -0.2])) == "behind"
    assert verdict(interval([0.0, 0.0, 0.0])) == "level"
    # one seed claims nothing, whatever its value
    assert interval([2.5]) == {"mean": 2.5, "sem": 0.0, "low": 2.5, "high": 2.5, "n": 1}
    assert verdict(interval([2.5])) == "level"


def test_an_interval_whose_low_is_exactly_0_is_level():
    # 3.303, 3.303, 6.303: mean 4.303; deviations -1, -1, 2, squares 6 over 2 degrees of freedom, so the
    # standard deviation is sqrt(3) and the standard error 1: the interval is 4.303 +- 4.303, from exactly 0
    got = interval([3.303, 3.303, 6.303])
    assert got == {"mean": 4.303, "sem": 1.0, "low": 0.0, "high": 8.606, "n": 3}
    assert verdict(got) == "level"
    mirrored = interval([-6.303, -3.303, -3.303])
    assert mirrored["high"] == 0.0 and verdict(mirrored) == "level"
    # two seeds (1 degree of freedom, t = 12.706): 5.853 and 6.853 have mean 6.353 and standard error 0.5
    two = interval([5.853, 6.853])
    assert two == {"mean": 6.353, "sem": 0.5, "low": 0.0, "high": 12.706, "n": 2}
    assert verdict(two) == "level"


@pytest.mark.parametrize(
    ("low", "high", "n", "expected"),
    [
        (0.01, 0.3, 3, "ahead"),
        (1e-12, 0.3, 2, "ahead"),
        (-0.3, -0.01, 3, "behind"),
        (-0.3, -1e-12, 2, "behind"),
        (-0.1, 0.1, 3, "level"),
        (0.0, 0.2, 3, "level"),  # touching 0 is not above it
        (-0.2, 0.0, 3, "level"),
        (0.5, 0.5, 1, "level"),  # one seed
        (-0.5, -0.5, 1, "level"),
    ],
)
def test_verdicts_on_hand_made_intervals(low, high, n, expected):
    assert verdict({"mean": (low + high) / 2, "sem": 0.1, "low": low, "high": high, "n": n}) == expected


def test_upper_envelope_ties_and_the_reference_point():
    # two settings at the same KL: only the better one; equal reward at more KL: dominated
    assert upper_envelope([(1.0, 0.3), (1.0, 0.5)]) == [(1.0, 0.5)]
    assert upper_envelope([(2.0, 0.5), (1.0, 0.5)]) == [(1.0, 0.5)]
    # pi_ref at KL 0 starts the envelope, and dominates a setting that lost reward
    assert upper_envelope([(1.0, 0.5), (2.0, 0.7)], origin=(0.0, 0.6)) == [(0.0, 0.6), (2.0, 0.7)]
    # every setting below pi_ref: the envelope is pi_ref alone
    assert upper_envelope([(1.0, -0.2), (3.0, 0.05)], origin=(0.0, 0.1)) == [(0.0, 0.1)]
    # a setting at KL 0 that beats pi_ref's reward replaces it
    assert upper_envelope([(0.0, 0.2)], origin=(0.0, 0.1)) == [(0.0, 0.2)]
    out = upper_envelope([(1, 2)], origin=(0, 1))
    assert out == [(0.0, 1.0), (1.0, 2.0)] and all(type(v) is float for p in out for v in p)


def test_the_envelope_below_the_lowest_kl_setting_is_the_chord_from_pi_ref():
    # pi_ref at (0, -0.1), settings at (2, 0.5) and (4, 0.9): below KL 2 the straight line from pi_ref,
    # -0.1 + (0.5 + 0.1) * kl / 2
    front = upper_envelope([(4.0, 0.9), (2.0, 0.5)], origin=(0.0, -0.1))
    assert front == [(0.0, -0.1), (2.0, 0.5), (4.0, 0.9)]
    assert envelope_at(front, 0.0) == pytest.approx(-0.1)
    assert envelope_at(front, 0.5) == pytest.approx(0.05)
    assert envelope_at(front, 1.5) == pytest.approx(0.35)
    assert envelope_at(front, 2.0) == pytest.approx(0.5)
    assert envelope_at(front, 3.0) == pytest.approx(0.7)
    assert envelope_at(front, 4.0) == pytest.approx(0.9)
    assert envelope_at(front, 4.0 + 1e-9) is None and envelope_at(front, -1e-9) is None
    assert envelope_at([(1.0, 0.3)], 1.0) == 0.3 and envelope_at([(1.0, 0.3)], 0.5) is None
    assert envelope_at([], 0.0) is None


def _one_setting(rewards: list[float]) -> dict[int, list[tuple[float, float]]]:
    return {seed: [(1.0, reward)] for seed, reward in enumerate(rewards)}


def _two_settings(rewards: list[float]) -> dict[int, list[tuple[float, float]]]:
    """Each seed: trained policies at KL 1 (reward r) and KL 3 (reward r + 1)."""
    return {seed: [(1.0, reward), (3.0, reward + 1.0)] for seed, reward in enumerate(rewards)}


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        # differences 0.2, 0.3, 0.4 at every KL (mean 0.3, sd 0.1): t = 0.3 / (0.1 / sqrt 3) = 5.2 > 4.303
        ([0.4, 0.5, 0.6], [0.2, 0.2, 0.2], "ahead"),
        ([0.2, 0.2, 0.2], [0.4, 0.5, 0.6], "behind"),
        # differences 0.2, -0.2, 0.4: mean 0.133, sd 0.306, t = 0.75
        ([0.4, 0.2, 0.6], [0.2, 0.4, 0.2], "level"),
    ],
)
def test_matched_kl_verdicts_on_hand_made_points(ours, theirs, expected):
    # both methods trained at KL 1 and 3 in every seed: the range is [1, 3], the difference the same at every KL
    result = matched_kl(_two_settings(ours), _two_settings(theirs), n_points=2)
    assert (result["low"], result["high"]) == (1.0, 3.0)
    rows = result["points"]
    assert [row["kl"] for row in rows] == pytest.approx([1.5, 2.5])  # the middles of [1, 2] and [2, 3]
    mean, sd = mean_sd([a - b for a, b in zip(ours, theirs)])
    assert close(rows[0]["difference"], iv(mean, sd / SQRT3))
    assert close(result["mean_difference"], iv(mean, sd / SQRT3)) and result["verdict"] == expected
    mean, sd = mean_sd(ours)
    assert close(rows[1]["method"], iv(mean + 0.75, sd / SQRT3))  # at KL 2.5: r + 0.75


def test_matched_kl_range_is_what_every_seed_of_both_methods_covers():
    # method covers [1, 3] in seeds 0 and 1 but only [1, 2.5] in seed 2; other covers [2, 4]:
    # the common range is [2, 2.5]; one KL in its middle, 2.25. Seed 3 has no other run: left out.
    method = {0: [(1.0, 0.1), (3.0, 0.5)], 1: [(1.0, 0.2), (3.0, 0.6)], 2: [(1.0, 0.3), (2.5, 0.6)], 3: [(0.0, 9.0)]}
    other = {0: [(2.0, 0.0), (4.0, 0.4)], 1: [(2.0, 0.1), (4.0, 0.5)], 2: [(2.0, 0.2), (4.0, 0.6)]}
    result = matched_kl(method, other, n_points=1)
    assert (result["low"], result["high"]) == (2.0, 2.5)
    (row,) = result["points"]
    assert row["kl"] == pytest.approx(2.25)
    # method at 2.25: 0.1 + 0.4 * 1.25 / 2 = 0.35; 0.2 + 0.4 * 0.625 = 0.45; 0.3 + 0.3 * 1.25 / 1.5 = 0.55
    # other at 2.25: 0.0 + 0.4 * 0.25 / 2 = 0.05; 0.15; 0.25; differences 0.3, 0.3, 0.3
    assert close(row["method"], iv(0.45, 0.1 / SQRT3))
    assert close(row["other"], iv(0.15, 0.1 / SQRT3))
    assert row["difference"]["mean"] == pytest.approx(0.3) and row["difference"]["n"] == 3
    assert row["difference"]["sem"] == pytest.approx(0.0, abs=1e-12) and result["verdict"] == "ahead"
    assert matched_kl(method, {s: [(5.0, 1.0)] for s in range(3)}) is None  # no trained KL in common


# =========================================================================== the exact world's summary

S = (0, 1, 2)


def _point(step: int, reward: float, kl: float, **extra) -> dict:
    return {"step": step, "reward": reward, "kl": kl, "entropy": 2.0, **extra}


def _exact_run(method, seed, params, *, kl, reward, optimal, peak=None, kl_to_optimum=None, **extra) -> dict:
    """One run record of ``exact_seed<k>.json``: final metrics, a three-point trajectory, train metrics."""
    final = _point(240, reward, kl)
    more = {}
    if kl_to_optimum is not None:
        final["kl_to_optimum"] = kl_to_optimum
    if method == "dpo":  # where DPO's probability mass goes: mass/chosen grows by 0.1 a point, + 0.01 a seed
        more = {
            i: {q: (0.1 * (i + 1) + 0.01 * seed if q == "mass/chosen" else 0.0) for q in DISPLACEMENT} for i in range(3)
        }
    trajectory = [
        _point(0, 0.0, 0.0, **more.get(0, {})),
        _point(120, peak if peak is not None else reward / 2, kl / 2, **more.get(1, {})),
        _point(240, reward, kl, **more.get(2, {})),
    ]
    if method.startswith("ppo"):  # PPO's points carry its score (here the true reward), as the seed files do
        trajectory = [{**point, "score": point["reward"]} for point in trajectory]
    record = {
        "method": method,
        "seed": seed,
        "params": params,
        "final": final,
        "trajectory": trajectory,
        "train_metrics": {"loss": 0.5},
        "optimal_reward_at_kl": optimal,
    }
    record.update(extra)
    return record


def _ppo_extra(start: float, end: float, rose: bool, kl: float, optimum: float = 0.9) -> dict:
    return {
        "objective": {"start": start, "end": end, "rose": rose, "optimum": optimum},
        "diagnostics": [
            {"step": 8, "objective": start, "kl": 0.0, "score": start, "loss/value": 0.3},
            {"step": 16, "objective": end, "kl": kl, "score": end + 0.1, "loss/value": 0.1},
        ],
    }


def _study_record(seed, params, final, trajectory=()) -> dict:
    return {
        "method": "dpo",
        "seed": seed,
        "params": params,
        "final": final,
        "trajectory": list(trajectory),
        "train_metrics": {"loss": 0.5},
    }


def exact_seed(s: int) -> dict:
    """``exact_seed<s>.json`` without provenance, written by hand (the shape of docs/results/data/cpu's)."""
    r05, r01 = [0.55, 0.6, 0.65][s], [1.1, 1.2, 1.3][s]  # DPO's reward at beta 0.5 (KL 1) and 0.1 (KL 3)
    runs = [
        _exact_run(
            "dpo", s, {"beta": 0.1}, kl=3.0, reward=r01, optimal=1.6, peak=1.5, kl_to_optimum=[3.5, 4.0, 4.5][s]
        ),
        _exact_run("dpo", s, {"beta": 0.5}, kl=1.0, reward=r05, optimal=0.8, kl_to_optimum=[0.5, 0.6, 0.7][s]),
        _exact_run("ipo", s, {"beta": 1.0}, kl=2.0, reward=0.8, optimal=1.3),
        _exact_run(
            "kto",
            s,
            {"beta": 0.1, "desirable_weight": 1.0, "undesirable_weight": 1.0},
            kl=0.5,
            reward=[0.1, 0.2, 0.3][s],
            optimal=0.6,
        ),
        _exact_run(
            "ppo",
            s,
            {"kl_coef": 0.2},
            kl=1.5,
            reward=[0.5, 0.6, 0.7][s],
            optimal=1.0,
            **_ppo_extra(0.1, [0.3, 0.4, 0.5][s], True, 1.5),
        ),
        # a PPO setting whose own objective fell in seed 1: reported, never plotted or compared
        _exact_run(
            "ppo",
            s,
            {"kl_coef": 0.5},
            kl=0.5,
            reward=0.9,
            optimal=0.6,
            **_ppo_extra(0.2, [0.3, 0.1, 0.25][s], s != 1, 0.5),
        ),
    ]
    runs[3]["train_metrics"] = {"loss": 0.5, "kl": [0.0, 0.05, 0.0][s], "kl/unclamped": [-2.0, 0.05, -1.0][s]}
    g_dpo, g_ipo = [0.5, 0.6, 0.7][s], [0.1, -0.1, 0.0][s]  # growth of the KL over the last quarter

    def deterministic(name, growth):
        kls = [0.0, 1.0, 2.0, 3.0, 3.0 + growth]
        return {
            **_study_record(
                s, {"beta": 0.5}, _point(960, 1.6, kls[-1]), [_point(240 * i, 0.4 * i, kl) for i, kl in enumerate(kls)]
            ),
            "method": name,
        }

    return {
        "seed": s,
        "world": {
            "reference_kl_to_optimum": {"0.1": 10.0, "0.5": 1.0},
            "n_prompts": 4,
            "n_responses_per_prompt": 1296,
            "reference_reward": 0.0,
            "max_reward": 2.2,
        },
        "optimal_frontier": [{"beta": 0.1, "kl": 3.0, "reward": 1.6}],
        "runs": runs,
        "reward_model": {
            "pair_accuracy_under_reference": [0.80, 0.81, 0.82][s],
            "correlation_with_true_reward": [0.5, 0.6, 0.7][s],
            "train_metrics": {"loss": 0.69},
        },
        "studies": {
            "recovery": [
                _study_record(
                    s,
                    {"beta": 0.5, "n_pairs": 100, "budget": "updates", "steps": 240},
                    {"reward": 0.5, "kl": 1.0, "kl_to_optimum": [0.8, 1.0, 1.2][s]},
                ),
                # the same 100 pairs for as many epochs as 500 get in 240 updates: 48 updates
                _study_record(
                    s,
                    {"beta": 0.5, "n_pairs": 100, "budget": "epochs", "steps": 48},
                    {"reward": 0.3, "kl": 0.5, "kl_to_optimum": [0.6, 0.7, 0.8][s]},
                ),
                _study_record(
                    s,
                    {"beta": 0.5, "n_pairs": 500, "budget": "updates", "steps": 240},
                    {"reward": 0.6, "kl": 1.0, "kl_to_optimum": [0.2, 0.3, 0.4][s]},
                ),
                _study_record(
                    s,
                    {"beta": 0.5, "n_pairs": 500, "budget": "epochs", "steps": 240},
                    {"reward": 0.6, "kl": 1.0, "kl_to_optimum": [0.2, 0.3, 0.4][s]},
                ),
            ],
            "deterministic": [deterministic("dpo", g_dpo), deterministic("ipo", g_ipo)],
            "online": {
                "beta": 0.5,
                "rounds": [
                    _study_record(
                        s,
                        {"beta": 0.5, "round": 0, "n_pairs": 1000},
                        {"reward": [0.3, 0.4, 0.5][s], "kl": 0.5, "kl_to_optimum": 0.9},
                    ),
                    _study_record(
                        s,
                        {"beta": 0.5, "round": 1, "n_pairs": 1000},
                        {"reward": [0.75, 0.7, 0.95][s], "kl": [1.2, 1.1, 1.3][s], "kl_to_optimum": [0.4, 0.5, 0.6][s]},
                    ),
                ],
                "final": {"reward": 0.0},
            },
            "shift": {
                "temperature": 2.0,
                "data_kl_to_reference": 0.7,
                "dpo": _study_record(
                    s, {"beta": 0.5, "start": "reference"}, {"reward": [0.5, 0.55, 0.6][s], "kl": 0.6}
                ),
                "preferred_ft": {
                    **_study_record(s, {}, {"reward": [0.0, 0.01, 0.02][s], "kl": 0.8}),
                    "method": "preferred-ft",
                },
                "dpo_after_preferred_ft": _study_record(
                    s, {"beta": 0.5, "start": "preferred-ft"}, {"reward": [0.8, 0.9, 1.0][s], "kl": 2.0}
                ),
            },
        },
    }


EXACT_CFG = SimpleNamespace(beta=0.5, online_rounds=2, steps=240, batch_size=128)


@pytest.fixture(scope="module")
def exact() -> dict:
    return exact_summary.summarise(EXACT_CFG, {s: exact_seed(s) for s in S})


def test_exact_runs_are_grouped_by_method_and_setting(exact):
    assert exact["seeds"] == [0, 1, 2]
    assert set(exact["methods"]) == {"dpo", "ipo", "kto", "ppo"}
    dpo = exact["methods"]["dpo"]["settings"]
    assert [row["params"] for row in dpo] == [{"beta": 0.5}, {"beta": 0.1}]  # in KL order: KL 1, then KL 3
    low, high = dpo
    assert low["seeds"] == [0, 1, 2]
    # rewards 0.55, 0.6, 0.65 (sd 0.05); KL 1 in every seed; KL to pi*: 0.5, 0.6, 0.7 (sd 0.1)
    assert close(low["reward"], iv(0.6, 0.05 / SQRT3))
    assert close(low["kl"], iv(1.0, 0.0))
    assert close(low["entropy"], iv(2.0, 0.0))
    assert close(low["kl_to_optimum"], iv_log([0.5, 0.6, 0.7]))  # a KL: its interval stays above 0
    # frontier gap: 0.8 - reward = 0.25, 0.2, 0.15
    assert close(low["frontier_gap"], iv(0.2, 0.05 / SQRT3))
    assert close(high["reward"], iv(1.2, 0.1 / SQRT3))
    assert close(high["frontier_gap"], iv(0.4, 0.1 / SQRT3))  # 1.6 - (1.1, 1.2, 1.3)
    # methods that do not aim at pi*_beta carry no KL to it
    assert "kl_to_optimum" not in exact["methods"]["ipo"]["settings"][0]
    assert close(exact["reward_model"]["pair_accuracy_under_reference"], iv_logit([0.80, 0.81, 0.82]))


def test_exact_envelopes_are_made_of_trained_policies(exact):
    # every setting's evaluations after its first update, averaged over seeds, and never pi_ref: DPO's
    # (0.5, 0.3), (1, 0.6) at beta 0.5 and (1.5, 1.5), (3, 1.2) at beta 0.1, the last below (1.5, 1.5)
    assert points(exact["methods"]["dpo"]["envelope"]) == pytest.approx(points([[0.5, 0.3], [1.0, 0.6], [1.5, 1.5]]))
    assert points(exact["methods"]["ipo"]["envelope"]) == pytest.approx(points([[1.0, 0.4], [2.0, 0.8]]))
    assert points(exact["methods"]["ppo"]["envelope"]) == pytest.approx(points([[0.75, 0.3], [1.5, 0.6]]))


def test_exact_ppo_settings_whose_objective_fell_are_reported_not_plotted(exact):
    assert exact["failed"] == [{"method": "ppo", "params": {"kl_coef": 0.5}}]
    assert [row["params"] for row in exact["methods"]["ppo"]["settings"]] == [{"kl_coef": 0.2}]
    # the PPO table keeps both, with the seeds in which each rose
    table = {row["kl_coef"]: row for row in exact["ppo"]}
    assert [(row["method"], row["kl_coef"]) for row in exact["ppo"]] == [("ppo", 0.2), ("ppo", 0.5)]
    assert table[0.5]["rose_in_seeds"] == [0, 2] and table[0.5]["seeds"] == [0, 1, 2]
    assert table[0.2]["rose_in_seeds"] == [0, 1, 2]
    # still rising at the end: objective score - kl_coef KL at the end against two thirds in (the middle of three
    # points): kl_coef 0.2: p - 0.3 against p / 2 - 0.15, higher for p = 0.5, 0.6, 0.7; kl_coef 0.5: 0.65 > 0.325
    assert table[0.2]["rising_at_end_in_seeds"] == [0, 1, 2] and table[0.5]["rising_at_end_in_seeds"] == [0, 1, 2]
    assert close(table[0.2]["objective_start"], iv(0.1, 0.0))
    assert close(table[0.2]["objective_end"], iv(0.4, 0.1 / SQRT3))
    # of the rise to the optimum 0.9 from 0.1, ends 0.3, 0.4, 0.5 reach a quarter, 3/8 and a half; at 0.5, from 0.2,
    # 0.3, 0.1, 0.25 reach 1/7, -1/7 (it fell) and 1/14
    assert close(table[0.2]["share_of_gain"], iv(0.375, 0.125 / SQRT3))
    mean, sd = mean_sd([1 / 7, -1 / 7, 1 / 14])
    assert close(table[0.5]["share_of_gain"], iv(mean, sd / SQRT3))
    # the last diagnostics row of each seed, without its step: objective 0.3, 0.4, 0.5; score 0.1 more
    final = table[0.2]["final_diagnostics"]
    assert set(final) == {"objective", "kl", "score", "loss/value"}
    assert close(final["score"], iv(0.5, 0.1 / SQRT3)) and close(final["kl"], iv(1.5, 0.0))
    assert set(table[0.5]["trajectories"]) == {0, 1, 2} and len(table[0.5]["diagnostics"][1]) == 2


def _dpo_at(kl: float, r05: float) -> float:
    """DPO's envelope in the hand-written seeds: trained points (0.5, r05/2), (1, r05), (1.5, 1.5); (3, r01) is
    below (1.5, 1.5), so dominated."""
    return r05 * kl if kl <= 1 else r05 + (1.5 - r05) * 2 * (kl - 1)


def test_exact_matched_kl_by_hand(exact):
    matched = exact["matched_kl"]
    assert set(matched) == {"ipo", "kto", "ppo"}
    # IPO's trained points: (1, 0.4) along training, (2, 0.8) at the end; DPO's reach [0.5, 1.5]: range [1, 1.5]
    ipo = matched["ipo"]
    assert (ipo["low"], ipo["high"]) == (1.0, 1.5)
    assert [row["kl"] for row in ipo["points"]] == pytest.approx([1 + 0.5 * (i + 0.5) / 6 for i in range(6)])
    # both lines inside the range: the mean over six symmetric KLs is the difference at 1.25,
    # (r05 + 1.5) / 2 - 0.5 = 0.525, 0.55, 0.575: mean 0.55, sd 0.025
    assert close(ipo["mean_difference"], iv(0.55, 0.025 / SQRT3)) and ipo["verdict"] == "ahead"
    at_first = ipo["points"][0]  # KL 1 + 1/24
    assert close(at_first["other"], iv(0.4 * (1 + 1 / 24), 0.0))
    # KTO's trained points stop at KL 0.5, where DPO's start: no range, no verdict
    assert matched["kto"] is None
    # PPO (its failed setting left out): trained points (0.75, p/2) and (1.5, p): range [0.75, 1.5]
    ppo = matched["ppo"]
    assert (ppo["low"], ppo["high"]) == (0.75, 1.5)
    kls = [0.75 + 0.75 * (i + 0.5) / 6 for i in range(6)]
    per_seed = [
        sum(_dpo_at(k, r05) - p * k / 1.5 for k in kls) / 6 for r05, p in ((0.55, 0.5), (0.6, 0.6), (0.65, 0.7))
    ]
    assert per_seed == pytest.approx([0.46875, 0.425, 0.38125])
    assert close(ppo["mean_difference"], iv(0.425, 0.04375 / SQRT3)) and ppo["verdict"] == "ahead"


def test_exact_kto_reference_point_and_studies(exact):
    assert exact["kto_reference_point"] == {"n_runs": 3, "z0_max": 0.05, "estimate_min": -2.0, "estimate_max": 0.05}
    rec = exact["recovery"]
    assert rec["beta"] == 0.5 and rec["reference_kl_to_optimum"] == 1.0
    # the same updates first, then the same epochs, each in order of pairs
    assert [(row["budget"], row["n_pairs"], row["steps"]) for row in rec["per_n_pairs"]] == [
        ("updates", 100, 240),
        ("updates", 500, 240),
        ("epochs", 100, 48),
        ("epochs", 500, 240),
    ]
    epochs = {row["n_pairs"]: row for row in rec["per_n_pairs"] if row["budget"] == "epochs"}
    # 48 updates of 128 pairs over 100 pairs: 61.44 epochs, as 240 updates over 500; closer by 0.4, 0.3, 0.2
    assert epochs[100]["epochs"] == pytest.approx(61.44) == epochs[500]["epochs"]
    assert close(epochs[100]["closer_than_reference"], iv(0.3, 0.1 / SQRT3)) and epochs[100]["verdict"] == "ahead"
    per_n = {row["n_pairs"]: row for row in rec["per_n_pairs"] if row["budget"] == "updates"}
    # 100 pairs: KL to pi* 0.8, 1.0, 1.2 from pi_ref's 1.0: closer by 0.2, 0, -0.2: level
    assert close(per_n[100]["kl_to_optimum"], iv_log([0.8, 1.0, 1.2]))
    assert close(per_n[100]["closer_than_reference"], iv(0.0, 0.2 / SQRT3)) and per_n[100]["verdict"] == "level"
    # 240 updates of 128 pairs: 307.2 passes over 100 pairs, 61.44 over 500; seed 2 (1.2 > 1.0) ends farther
    assert per_n[100]["epochs"] == pytest.approx(307.2) and per_n[500]["epochs"] == pytest.approx(61.44)
    assert per_n[100]["farther_in_seeds"] == 1 and per_n[500]["farther_in_seeds"] == 0
    # 500 pairs: closer by 0.8, 0.7, 0.6 (t = 12): ahead
    assert close(per_n[500]["closer_than_reference"], iv(0.7, 0.1 / SQRT3)) and per_n[500]["verdict"] == "ahead"
    per_beta = {row["beta"]: row for row in rec["per_beta"]}
    assert list(per_beta) == [0.1, 0.5]
    assert per_beta[0.1]["reference_kl_to_optimum"] == 10.0  # pi_ref's own, at that beta
    assert close(per_beta[0.1]["closer_than_reference"], iv(6.0, 0.5 / SQRT3))
    assert close(per_beta[0.5]["closer_than_reference"], iv(0.4, 0.1 / SQRT3)) and per_beta[0.5]["verdict"] == "ahead"

    det = exact["deterministic"]
    # growth over the last quarter (point 4 minus point 3 of five): DPO 0.5, 0.6, 0.7; IPO 0.1, -0.1, 0
    assert close(det["dpo"]["late_growth"], iv(0.6, 0.1 / SQRT3)) and det["dpo"]["still_growing"] is True
    assert close(det["ipo"]["late_growth"], iv(0.0, 0.1 / SQRT3)) and det["ipo"]["still_growing"] is False
    assert [p["step"] for p in det["dpo"]["trajectory"]] == [0, 240, 480, 720, 960]
    assert close(det["dpo"]["trajectory"][4]["kl"], iv_log([3.5, 3.6, 3.7]))
    assert close(det["dpo"]["final_kl"], iv_log([3.5, 3.6, 3.7]))


def test_exact_online_and_shift_are_paired_by_seed(exact):
    on = exact["online"]
    assert on["beta"] == 0.5 and on["rounds"] == 2
    # the last round against offline DPO at beta 0.5: rewards 0.75, 0.7, 0.95 minus 0.55, 0.6, 0.65
    # = 0.2, 0.1, 0.3 (t = 3.46): level; KL to pi* 0.4, 0.5, 0.6 minus 0.5, 0.6, 0.7 = -0.1 each: behind
    diff = on["online_minus_offline"]
    assert close(diff["reward"]["difference"], iv(0.2, 0.1 / SQRT3)) and diff["reward"]["verdict"] == "level"
    assert close(diff["kl"]["difference"], iv(0.2, 0.1 / SQRT3))
    assert diff["kl_to_optimum"]["difference"]["mean"] == pytest.approx(-0.1)
    assert diff["kl_to_optimum"]["verdict"] == "behind"
    assert close(on["online"]["reward"], iv(0.8, 0.13228756555322954 / SQRT3))  # sd of 0.75, 0.7, 0.95
    assert close(on["offline"]["reward"], iv(0.6, 0.05 / SQRT3))
    assert [row["round"] for row in on["online_path"]] == [0, 1]
    assert close(on["online_path"][0]["reward"], iv(0.4, 0.1 / SQRT3))

    shift = exact["shift"]
    assert shift["temperature"] == 2.0 and shift["data_kl_to_reference"] == 0.7
    # after Preferred-FT minus plain: rewards 0.3, 0.35, 0.4; KL 1.4 in every seed
    assert close(shift["after_minus_plain"]["reward"]["difference"], iv(0.35, 0.05 / SQRT3))
    assert shift["after_minus_plain"]["reward"]["verdict"] == "ahead"
    assert close(shift["after_minus_plain"]["kl"]["difference"], iv(1.4, 0.0))
    assert close(shift["preferred_ft"]["reward"], iv(0.01, 0.01 / SQRT3))
    # DPO after Preferred-FT ends at KL 2, beyond DPO's trained policies (they reach [0.5, 1.5]): no comparison
    assert shift["after_against_dpo_grid"] is None


def test_a_run_against_the_dpo_grid_at_its_own_kl():
    # seed s: DPO's trained points (1, 0.5 + 0.1 s) along training and (3, 1.5 + 0.1 s) at the end; the run
    # ends at KL 2, where the envelope is 1.0 + 0.1 s, with reward 1.2 + 0.1 s: 0.2 above in every seed
    def dpo(s):
        return {
            "method": "dpo",
            "seed": s,
            "final": {"kl": 3.0, "reward": 1.5 + 0.1 * s},
            "trajectory": [_point(0, 0.0, 0.0), _point(120, 0.5 + 0.1 * s, 1.0), _point(240, 1.5 + 0.1 * s, 3.0)],
        }

    seeds = {s: {"runs": [dpo(s)]} for s in S}
    runs = [{"seed": s, "final": {"kl": 2.0, "reward": 1.2 + 0.1 * s}} for s in S]
    result = exact_summary._against_grid(seeds, runs)
    assert close(result["difference"], iv(0.2, 0.0)) and result["verdict"] == "ahead"
    runs[1]["final"]["kl"] = 0.5  # below seed 1's lowest trained KL: no comparison
    assert exact_summary._against_grid(seeds, runs) is None


def test_exact_displacement_and_overoptimisation(exact):
    disp = exact["displacement"]
    assert disp["beta"] == 0.5 and list(disp["per_beta"]) == ["0.1", "0.5"]
    at = disp["per_beta"]["0.5"]
    # the first point of each seed: mass/chosen 0.10, 0.11, 0.12; every other quantity 0 in every seed
    assert close(at["start"]["mass/chosen"], iv_logit([0.10, 0.11, 0.12]))
    assert at["start"]["mass/both"] == {"mean": 0.0, "sem": 0.0, "low": 0.0, "high": 0.0, "n": 3}
    # only-chosen mass, end minus start: 0.30 - 0.10 + 0.01 s - 0.01 s = 0.2 in every seed: it rose
    assert close(at["only_chosen_change"]["change"], iv(0.2, 0.0)) and at["only_chosen_change"]["verdict"] == "ahead"
    assert [p["step"] for p in at["trajectory"]] == [0, 120, 240]
    assert close(at["trajectory"][2]["mass/chosen"], iv_logit([0.30, 0.31, 0.32]))

    over = exact["overoptimisation"]
    assert set(over) == {"dpo", "ipo", "simpo"} and over["simpo"] == []
    rows = {row["params"]["beta"]: row for row in over["dpo"]}
    # beta 0.1 peaks at 1.5 and ends at 1.1, 1.2, 1.3: drops 0.4, 0.3, 0.2, low 0.3 - 4.303 * 0.1 / sqrt 3
    # = 0.052 > 0.01: over-optimised
    assert close(rows[0.1]["drop"], iv(0.3, 0.1 / SQRT3)) and rows[0.1]["over_optimised"] is True
    # beta 0.5 peaks at its end: drop 0 in every seed, an interval from exactly 0: not over-optimised
    assert rows[0.5]["drop"] == {"mean": 0.0, "sem": 0.0, "low": 0.0, "high": 0.0, "n": 3}
    assert rows[0.5]["over_optimised"] is False
    assert close(rows[0.1]["path"][1]["reward"], iv(1.5, 0.0))
    # the macros the pages use to say it: one over-optimised setting; the only-chosen mass rose at both betas
    assert [plain(text) for text in macros.over_optimised(exact)] == ["DPO at β = 0.1"]
    assert [row["verdict"] for row in macros.only_chosen(exact)] == ["ahead", "ahead"]


def test_dpop_is_paired_with_dpo_by_seed_at_each_beta():
    def run(method, seed, beta, chosen_end, rejected_end):
        trajectory = [
            {"step": 0, "logp_change/chosen": 0.0, "logp_change/rejected": 0.0, "mass/both": 0.5},
            {"step": 240, "logp_change/chosen": chosen_end, "logp_change/rejected": rejected_end, "mass/both": 0.5},
        ]
        return {"method": method, "seed": seed, "params": {"beta": beta}, "trajectory": trajectory}

    dpo = [run("dpo", s, 0.5, c, -2.0) for s, c in zip(S, (-0.5, -0.6, -0.7))]
    dpop = [run("dpop", s, 0.5, c, r) for s, c, r in zip(S, (0.1, 0.0, 0.2), (-1.0, -1.1, -1.2))]
    result = exact_summary.dpop_against_dpo(dpo + dpop + [run("dpo", 0, 0.1, -1.0, -3.0)])
    assert list(result) == ["0.5"]  # only DPOP's own betas
    at = result["0.5"]
    # DPOP minus DPO at the end, per seed: 0.6, 0.6, 0.9: mean 0.7, sd sqrt(0.06 / 2), sem 0.1; low 0.7 - 0.43 > 0
    assert close(at["chosen_kept"]["change"], iv(0.7, 0.1)) and at["chosen_kept"]["verdict"] == "ahead"
    assert [p["step"] for p in at["trajectory"]] == [0, 240]
    assert close(at["trajectory"][1]["logp_change/rejected"], iv(-1.1, 0.1 / SQRT3))
    assert at["trajectory"][0]["logp_change/chosen"]["mean"] == 0.0
    assert at["trajectory"][1]["mass/both"] == {"mean": 0.5, "sem": 0.0, "low": 0.5, "high": 0.5, "n": 3}
    said = macros.verdict_counts(macros.dpop_kept({"displacement": {"dpop": result}}), "values of β", words="probable")
    assert plain(said) == "more probable at 1, level at none and less probable at none of 1 values of β"
    with pytest.raises(ValueError, match="DPOP at beta 0.5 ran seeds"):
        exact_summary.dpop_against_dpo(dpo + dpop[:2])


def test_exact_numbers_in_page_sentences(exact):
    """The summary above, through the macros, as the pages print it."""
    ipo = exact["matched_kl"]["ipo"]
    # 0.55 +- 4.303 * 0.025 / sqrt 3 = 0.55 +- 0.0621
    assert plain(macros.matched(ipo, "IPO")) == (
        "DPO is ahead of IPO: over the KLs that trained policies of both reach (1.00 to 1.50 nats), DPO's reward "
        "minus IPO's, averaged over that range, is 0.550 (95% interval 0.488 to 0.612)"
    )
    assert plain(macros.matched(exact["matched_kl"]["kto"], "KTO")).startswith("DPO is not compared with KTO")
    # 0.6 +- 4.303 * 0.05 / sqrt 3 = 0.6 +- 0.1242
    assert plain(macros.interval(exact["methods"]["dpo"]["settings"][0]["reward"])) == (
        "0.60 (95% interval 0.48 to 0.72)"
    )
    assert [plain(f) for f in macros.failed(exact)] == ["PPO at β = 0.5 (rose in 2 of 3 seeds)"]
    # shares of the achievable gain (see the PPO test above): 0.375 +- 0.311 at 0.2, 0.024 +- 0.369 at 0.5
    assert plain(macros.ppo_budget(exact)) == (
        "PPO's own objective was still higher at the end than two thirds of the way in 6 of the 6 PPO and PPO-GT "
        "runs, and the settings reached from 2% (95% interval −35% to 39%) (PPO at β = 0.5) to 38% (95% interval "
        "6% to 69%) (PPO at β = 0.2) of the rise to the best objective any policy reaches"
    )
    assert plain(macros.share_range(exact)) == "2% to 38%"  # the setting means, 0.024 and 0.375
    assert plain(macros.setting(macros.best(exact["methods"]["dpo"]["settings"]), "dpo")) == "β = 0.1"
    assert macros.direction(exact["deterministic"]["dpo"]["late_growth"]) == "rises"
    assert macros.direction(exact["deterministic"]["ipo"]["late_growth"]) == "does not move measurably"
    assert plain(macros.seeds(exact)) == "3 seeds"


# =========================================================================== the sentiment world's summary


def _estimate(mean: float) -> dict:
    return {"mean": mean, "stderr": 0.01, "n": 384}


def _sentiment_run(method, seed, hyperparameter, value, *, reward, kl, length, val_reward, truncated=0.0, **extra):
    test = {
        "reward": _estimate(reward),
        "kl": _estimate(kl),
        "length": _estimate(length),
        "truncated_fraction": truncated,
        "example": f"{method} {value} seed {seed}",
    }
    val = {**test, "reward": _estimate(val_reward)}
    return {
        "method": method,
        "seed": seed,
        "params": {hyperparameter: value},
        "val": val,
        "final": test,
        "train_metrics": {"loss": 0.2},
        **extra,
    }


def _along(step: int, reward: float, kl: float) -> list[dict]:
    """A run's one evaluation along training, on test prompts, as the seed files hold it."""
    return [{"step": step, "reward": _estimate(reward), "kl": _estimate(kl), "length": _estimate(10.0)}]


def _sentiment_ppo(seed, value, *, reward, start, end, rose, kl=1.0) -> dict:
    objective = {
        "start": _estimate(start),
        "end": _estimate(end),
        "rise": end - start,
        "rise_stderr": 0.05,
        "rose": rose,
    }
    diagnostics = [{"step": 8, "objective": start, "kl": 0.0}, {"step": 16, "objective": end, "kl": 1.0}]
    return _sentiment_run(
        "ppo",
        seed,
        "kl_coef",
        value,
        reward=reward,
        kl=kl,
        length=16.0,
        val_reward=reward,
        objective=objective,
        diagnostics=diagnostics,
        trajectory=_along(120, reward / 2, kl / 2),
    )


# pi_ref's test reward by completion length, per seed: seed 2 has a third, longer bin
BINS = {
    0: [{"length": 10.0, "reward": 0.0, "n": 64}, {"length": 20.0, "reward": 0.2, "n": 64}],
    1: [{"length": 10.0, "reward": 0.1, "n": 64}, {"length": 20.0, "reward": 0.3, "n": 64}],
    2: [
        {"length": 10.0, "reward": 0.2, "n": 64},
        {"length": 20.0, "reward": 0.1, "n": 64},
        {"length": 30.0, "reward": 0.0, "n": 64},
    ],
}


def sentiment_seed(s: int) -> dict:
    """``sentiment_seed<s>.json`` without provenance, written by hand (the shape of docs/results/data/cpu's)."""
    runs = [
        _sentiment_run(
            "dpo",
            s,
            "beta",
            0.5,
            reward=[0.5, 0.6, 0.7][s],
            kl=2.0,
            length=[15.0, 25.0, 5.0][s],
            val_reward=[0.45, 0.55, 0.65][s],
            truncated=[0.1, 0.2, 0.3][s],
            trajectory=_along(48, [0.5, 0.6, 0.7][s] / 2, 1.0),
        ),
        _sentiment_run(
            "dpo",
            s,
            "beta",
            5.0,
            reward=[0.8, 0.9, 1.0][s],
            kl=6.0,
            length=[12.0, 20.0, 30.0][s],
            val_reward=[0.7, 0.5, 0.7][s],
            trajectory=_along(48, 0.4, 3.0),
        ),
        # PPO at kl_coef 0.05: its objective did not rise in seed 2, so it counts nowhere
        _sentiment_ppo(s, 0.05, reward=0.9, start=-0.2, end=0.6, rose=s != 2),
        _sentiment_ppo(s, 0.2, reward=[0.4, 0.5, 0.6][s], start=-0.2, end=[0.5, 0.6, 0.7][s], rose=True, kl=2.0),
    ]
    win = {"dpo": {"0": [0.9, 0.95, 1.0][s], "1": 0.5}, "ppo": {"0": [0.6, 0.7, 0.8][s], "1": [0.3, 0.35, 0.4][s]}}
    steps = [1, 5, 9] if s < 2 else [1, 5]  # seed 2 logged one step fewer
    return {
        "seed": s,
        "world": {"vocab_size": 253, "n_parameters": 120384},
        "reference": {
            "val": {"reward": _estimate(0.0), "kl": _estimate(0.0), "length": _estimate(15.0)},
            "test": {
                "reward": _estimate([0.0, 0.03, 0.06][s]),
                "kl": _estimate(0.0),
                "length": _estimate([15.0, 16.0, 17.0][s]),
                "truncated_fraction": 0.0,
                "example": "ref",
            },
            "length_bins": BINS[s],
        },
        "pairs": {
            "n_prompts": 256,
            "n_pairs": [1500, 1510, 1520][s],
            "mean_chosen_reward": [0.3, 0.4, 0.5][s],
            "mean_rejected_reward": -0.2,
            "length_gap": 0.3,
            "examples": [{"prompt": f"p{s}"}],
        },
        "reward_model": {"pair_accuracy": [0.75, 0.77, 0.79][s]},
        "runs": runs,
        "selected": {
            "dpo": {"params": {"beta": [5.0, 0.5, 5.0][s]}},
            "ppo": {"params": {"kl_coef": 0.2}},
        },
        "win_rates": {
            m: {t: {"win_rate": w, "stderr": 0.01, "n": 192} for t, w in per_t.items()} for m, per_t in win.items()
        },
        "curves": {"0.5": {"step": steps, "loss": [0.693, [0.60, 0.61, 0.62][s], 0.5][: len(steps)]}},
        "cost": {"dpo": {"wall_time_s": 8.0 + s}},
    }


SENTIMENT_CFG = SimpleNamespace(win_rate_temperatures=(0.0, 1.0))


@pytest.fixture(scope="module")
def sentiment() -> dict:
    return sentiment_summary.summarise(SENTIMENT_CFG, {s: sentiment_seed(s) for s in S})


def test_sentiment_reference_pairs_and_first_seed_fields(sentiment):
    assert sentiment["seeds"] == [0, 1, 2] and sentiment["world"]["vocab_size"] == 253
    ref = sentiment["reference"]
    assert close(ref["reward"], iv(0.03, 0.03 / SQRT3)) and close(ref["length"], iv_log([15.0, 16.0, 17.0]))
    # the bins the seeds share (two), averaged: rewards (0 + 0.1 + 0.2) / 3 and (0.2 + 0.3 + 0.1) / 3
    assert ref["length_bins"] == [
        {"length": pytest.approx(10.0), "reward": pytest.approx(0.1)},
        {"length": pytest.approx(20.0), "reward": pytest.approx(0.2)},
    ]
    assert close(sentiment["pairs"]["n_pairs"], iv(1510.0, 10.0 / SQRT3))
    assert close(sentiment["reward_model"]["pair_accuracy"], iv_logit([0.75, 0.77, 0.79]))
    assert sentiment["pair_examples"] == [{"prompt": "p0"}] and sentiment["cost"] == {"dpo": {"wall_time_s": 8.0}}
    assert sentiment["kto_reference_point"] is None


def test_sentiment_settings_with_the_length_adjusted_gain_by_hand(sentiment):
    assert set(sentiment["methods"]) == {"dpo", "ppo"}
    low, high = sentiment["methods"]["dpo"]["settings"]
    assert (low["params"], high["params"]) == ({"beta": 0.5}, {"beta": 5.0})
    assert close(low["reward"], iv(0.6, 0.1 / SQRT3)) and close(low["length"], iv_log([15.0, 25.0, 5.0]))
    assert close(low["val_reward"], iv(0.55, 0.1 / SQRT3))
    assert close(low["truncated_fraction"], iv_logit([0.1, 0.2, 0.3]))
    # pi_ref's reward at the setting's length, linear between the seed's bins and flat beyond them:
    # seed 0 at 15: 0.1; seed 1 at 25 (past its last bin): 0.3; seed 2 at 5 (before its first): 0.2;
    # gains 0.5 - 0.1, 0.6 - 0.3, 0.7 - 0.2 = 0.4, 0.3, 0.5
    assert close(low["length_adjusted_gain"], iv(0.4, 0.1 / SQRT3))
    # beta 5: seed 0 at 12: 0.04, gain 0.76; seed 1 at 20: 0.3, gain 0.6; seed 2 at 30: 0.0, gain 1.0
    mean, sd = mean_sd([0.76, 0.6, 1.0])
    assert close(high["length_adjusted_gain"], iv(mean, sd / SQRT3))
    assert low["example"] == "dpo 0.5 seed 0"
    # the setting each seed chose on validation prompts: beta 5, 0.5, 5, test rewards 0.8, 0.6, 1.0
    selected = sentiment["methods"]["dpo"]["selected"]
    assert selected["params"] == {0: {"beta": 5.0}, 1: {"beta": 0.5}, 2: {"beta": 5.0}}
    assert close(selected["reward"], iv(0.8, 0.2 / SQRT3))
    # trained points only: beta 0.5 along training (1, 0.3) and at its end (2, 0.6); beta 5 along training (3, 0.4),
    # below (2, 0.6), and at its end (6, 0.9)
    assert points(sentiment["methods"]["dpo"]["envelope"]) == pytest.approx(
        points([[1.0, 0.3], [2.0, 0.6], [6.0, 0.9]])
    )
    assert [p["step"] for p in low["trajectory"]] == [48] and close(
        low["trajectory"][0]["reward"], iv(0.3, 0.05 / SQRT3)
    )
    assert close(low["trajectory"][0]["kl"], iv_log([1.0, 1.0, 1.0]))


def test_sentiment_failed_ppo_settings_count_nowhere(sentiment):
    assert sentiment["failed"] == [{"method": "ppo", "params": {"kl_coef": 0.05}}]
    ppo = sentiment["methods"]["ppo"]
    assert [row["params"] for row in ppo["settings"]] == [{"kl_coef": 0.2}]
    assert points(ppo["envelope"]) == pytest.approx(points([[1.0, 0.25], [2.0, 0.5]]))
    assert ppo["selected"]["params"] == {0: {"kl_coef": 0.2}, 1: {"kl_coef": 0.2}, 2: {"kl_coef": 0.2}}
    table = {row["kl_coef"]: row for row in sentiment["ppo"]}
    assert list(table) == [0.05, 0.2]
    assert table[0.05]["rose_in_seeds"] == [0, 1] and table[0.05]["seeds"] == [0, 1, 2]
    # rises 0.7, 0.8, 0.9 from a start of -0.2
    assert close(table[0.2]["rise"], iv(0.8, 0.1 / SQRT3))
    assert close(table[0.2]["objective_start"], iv(-0.2, 0.0)) and close(
        table[0.2]["objective_end"], iv(0.6, 0.1 / SQRT3)
    )
    assert set(table[0.2]["final_diagnostics"]) == {"objective", "kl"}
    assert [plain(f) for f in macros.failed(sentiment)] == ["PPO at β = 0.05 (rose in 2 of 3 seeds)"]


def test_sentiment_matched_kl_compares_trained_points_along_training(sentiment):
    # per seed, DPO's trained points (1, r/2), (2, r), (3, 0.4), (6, R) and PPO's (1, p/2), (2, p) (its failed
    # setting left out), with r - p = 0.1 in every seed: over the shared range [1, 2] both are straight lines and
    # DPO is ahead by 0.05 k at KL k, 0.075 on average in every seed
    ppo = sentiment["matched_kl"]["ppo"]
    assert (ppo["low"], ppo["high"]) == (1.0, 2.0)
    assert [row["difference"]["mean"] for row in ppo["points"]] == pytest.approx(
        [0.05 * (1 + (i + 0.5) / 6) for i in range(6)]
    )
    assert ppo["mean_difference"]["mean"] == pytest.approx(0.075) and ppo["verdict"] == "ahead"


def test_sentiment_win_rates_by_hand(sentiment):
    dpo, ppo = sentiment["win_rates"]["dpo"], sentiment["win_rates"]["ppo"]
    assert list(dpo) == ["0", "1"] and "dpo_minus" not in dpo["0"]
    # DPO at temperature 0: 0.9, 0.95, 1.0, above a half by 0.4, 0.45, 0.5: ahead
    # a win rate of exactly 1 has no logit: the plain interval, 0.95 +- 0.124, cut at 1
    assert (
        close(dpo["0"]["win_rate"], {**iv(0.95, 0.05 / SQRT3), "high": 1.0}) and dpo["0"]["verdict_vs_half"] == "ahead"
    )
    # at temperature 1: exactly a half in every seed: an interval of 0 width at 0, level
    assert dpo["1"]["win_rate"] == {"mean": 0.5, "sem": 0.0, "low": 0.5, "high": 0.5, "n": 3}
    assert dpo["1"]["verdict_vs_half"] == "level"
    # PPO at 0: 0.6, 0.7, 0.8: above a half by 0.1, 0.2, 0.3 (t = 3.5): level; DPO minus PPO 0.3, 0.25, 0.2
    assert ppo["0"]["verdict_vs_half"] == "level"
    assert close(ppo["0"]["dpo_minus"]["difference"], iv(0.25, 0.05 / SQRT3))
    assert ppo["0"]["dpo_minus"]["verdict"] == "ahead"
    # PPO at 1: 0.3, 0.35, 0.4, below a half by 0.2, 0.15, 0.1 (t = 5.2): behind; DPO minus PPO 0.2, 0.15, 0.1
    assert close(ppo["1"]["win_rate"], iv_logit([0.3, 0.35, 0.4])) and ppo["1"]["verdict_vs_half"] == "behind"
    assert close(ppo["1"]["dpo_minus"]["difference"], iv(0.15, 0.05 / SQRT3))
    text = macros.verdict_counts(macros.by_temperature(ppo), "temperatures", key="verdict_vs_half")
    assert plain(text) == "ahead at none, level at 1 and behind at 1 of 2 temperatures"
    # on the logit scale: -0.619 +- 0.540, mapped back: 23.6% to 48.0%
    assert plain(macros.percent(ppo["1"]["win_rate"])) == "35% (95% interval 24% to 48%)"


def test_sentiment_curves_stop_at_the_shortest_seed(sentiment):
    curve = sentiment["curves"]["0.5"]
    assert curve["step"] == [1, 5] and len(curve["loss"]) == 2
    assert close(curve["loss"][1], iv(0.61, 0.01 / SQRT3))
    assert close(curve["loss"][0], iv(0.693, 0.0))


def test_sentiment_ppo_objective_rises_only_by_more_than_two_standard_errors():
    from dpo_ref.experiments.sentiment import _objective, select

    # start: scores 0, 1 with log-ratios 0: mean 0.5, standard error (sd 0.7071) / sqrt 2 = 0.5.
    # end: scores 1, 2, log-ratios 1, 1, kl_coef 0.5: 0.5, 1.5, mean 1.0, standard error 0.5.
    # rise 0.5 against 2 * hypot(0.5, 0.5) = 1.414: not a rise
    out = _objective(([0.0, 1.0], [0.0, 0.0]), ([1.0, 2.0], [1.0, 1.0]), 0.5)
    assert out["start"]["mean"] == pytest.approx(0.5) and out["start"]["stderr"] == pytest.approx(0.5)
    assert out["end"]["mean"] == pytest.approx(1.0) and out["end"]["stderr"] == pytest.approx(0.5)
    assert out["rise"] == pytest.approx(0.5) and out["rise_stderr"] == pytest.approx(math.sqrt(0.5))
    assert out["rose"] is False
    # end: scores 3, 4 (values 2.5, 3.5): rise 2.5 > 1.414: a rise
    assert _objective(([0.0, 1.0], [0.0, 0.0]), ([3.0, 4.0], [1.0, 1.0]), 0.5)["rose"] is True

    def run(method, value, val, rose=None):
        name = "kl_coef" if method == "ppo" else "beta"
        row = {"method": method, "params": {name: value}, "val": {"reward": {"mean": val}}}
        return row if rose is None else {**row, "objective": {"rose": rose}}

    # the best validation reward wins, unless it is a PPO run whose objective did not rise
    runs = [
        run("ppo", 0.05, 0.9, rose=False),
        run("ppo", 0.2, 0.4, rose=True),
        run("ppo", 1.0, 0.3, rose=True),
        run("dpo", 0.5, 0.2),
        run("dpo", 5.0, 0.25),
    ]
    assert select(runs) == {"ppo": {"params": {"kl_coef": 0.2}}, "dpo": {"params": {"beta": 5.0}}}


# =========================================================================== the macros' sentences


def test_number_macros_write_exact_text():
    span = '<span class="dpo-number">{}</span>'.format
    assert macros.num(-1.2345) == span("−1.23") and macros.num(0.6789, 1) == span("0.7")
    assert macros.num(-0.004) == span("0.00")  # no negative zero
    row = {"mean": -1.2345, "low": -2.0011, "high": -0.4679, "sem": 0.1, "n": 3}
    assert macros.interval(row) == span("−1.23 (95% interval −2.00 to −0.47)")
    # the unit after the mean and after the interval's end (as tests/test_macros.py reads it)
    assert macros.interval(row, 1, "nats") == span("−1.2 nats (95% interval −2.0 to −0.5 nats)")
    assert macros.percent({"mean": 0.6234, "low": 0.4987, "high": 0.7481}) == span("62% (95% interval 50% to 75%)")
    assert macros.percent({"mean": 0.6234, "low": 0.4987, "high": 0.7481}, 1) == span(
        "62.3% (95% interval 49.9% to 74.8%)"
    )
    assert macros.seeds({"seeds": [0, 1, 2]}) == span("3 seeds") and macros.seeds({"seeds": [4]}) == span("1 seed")


def test_verdict_macros_write_exact_text():
    assert macros.verdict({"verdict": "behind"}, "PPO & co") == (
        '<span class="dpo-verdict" data-verdict="behind">behind PPO &amp; co</span>'
    )
    assert macros.verdict({"verdict": "level"}) == '<span class="dpo-verdict" data-verdict="level">level</span>'
    with pytest.raises(TypeError):
        macros.verdict({"verdict": "better"})
    rows = [{"verdict": v} for v in ("behind", "ahead", "behind", "level", "behind")]
    assert macros.verdict_counts(rows, "KLs") == (
        '<span class="dpo-verdict" data-verdict="ahead">ahead</span> at <span class="dpo-number">1</span>, '
        '<span class="dpo-verdict" data-verdict="level">level</span> at <span class="dpo-number">1</span> and '
        '<span class="dpo-verdict" data-verdict="behind">behind</span> at <span class="dpo-number">3</span> of '
        '<span class="dpo-number">5</span> KLs'
    )
    assert [macros.count(rows, w) for w in ("ahead", "level", "behind")] == [1, 1, 3]
    with pytest.raises(ValueError):
        macros.count(rows, "better")
    # direction reads the interval like a verdict: from exactly 0 is flat
    zero_low = {"mean": 4.303, "sem": 1.0, "low": 0.0, "high": 8.606, "n": 3}
    assert macros.direction(zero_low) == "does not move measurably"
    assert macros.direction({**zero_low, "low": 1e-9}, up="grows") == "grows"
    assert macros.direction({"mean": -1.0, "low": -2.0, "high": -0.1, "n": 3}, down="shrinks") == "shrinks"
    assert macros.direction({"mean": 1.0, "low": 1.0, "high": 1.0, "n": 1}) == "does not move measurably"


def test_setting_best_and_failed_macros():
    assert plain(macros.setting({"params": {"beta": 0.1, "label_smoothing": 0.1}}, "cdpo")) == "β = 0.1, ε = 0.1"
    kto = {"params": {"beta": 0.05, "desirable_weight": 1.0, "undesirable_weight": 1.0}}
    assert plain(macros.setting(kto, "kto")) == "β = 0.05"
    assert plain(macros.setting({"params": {"beta": 2.0}}, "ipo")) == "τ = 2"
    assert plain(macros.setting({"params": {}}, "preferred-ft")) == "its defaults"
    assert plain(macros.setting({"params": {"lr_scale": 2.0}}, "preferred-ft")) == "learning-rate scale = 2"
    rows = [
        {"name": "a", "reward": {"mean": 0.3}, "kl": {"mean": 5.0}},
        {"name": "b", "reward": {"mean": 0.7}, "kl": {"mean": 1.0}},
        {"name": "c", "reward": {"mean": -0.1}, "kl": {"mean": 2.0}},
    ]
    assert macros.best(rows)["name"] == "b" and macros.best(rows, "kl")["name"] == "a"
    summary = {
        "ppo": [
            {"method": "ppo", "kl_coef": 0.2, "rose_in_seeds": [0, 1, 2], "seeds": [0, 1, 2]},
            {"method": "ppo", "kl_coef": 0.5, "rose_in_seeds": [2], "seeds": [0, 1, 2]},
            {"method": "ppo-gt", "kl_coef": 0.05, "rose_in_seeds": [], "seeds": [0, 1, 2]},
        ]
    }
    assert macros.failed(summary) == [
        '<span class="dpo-number">PPO at β = 0.5 (rose in 1 of 3 seeds)</span>',
        '<span class="dpo-number">PPO-GT at β = 0.05 (rose in 0 of 3 seeds)</span>',
    ]
    assert macros.failed({"ppo": summary["ppo"][:1]}) == []


def test_by_temperature_join_and_data_file():
    per_t = {
        "1": {"w": 4, "dpo_minus": "d1"},
        "0.25": {"w": 2, "dpo_minus": "d025"},
        "0": {"w": 1, "dpo_minus": "d0"},
        "0.5": {"w": 3, "dpo_minus": "d05"},
    }
    assert [row["w"] for row in macros.by_temperature(per_t)] == [1, 2, 3, 4]
    assert macros.by_temperature(per_t, "dpo_minus") == ["d0", "d025", "d05", "d1"]
    assert macros.join(["a"]) == "a" and macros.join(["a", "b"]) == "a and b"
    assert macros.join(["a", "b", "c", "d"]) == "a, b, c and d" and macros.join([], "no method") == "no method"
    assert macros.data_file("exact") == "results/data/cpu/exact_summary.json"
    assert macros.data_file("sentiment", "gpu") == "results/data/gpu/sentiment_summary.json"


def _provenance(world: str, settings: dict) -> dict:
    return {
        "command": "dpo-ref reproduce --config cpu",
        "device": "cpu: x86_64, 2 logical cores",
        "git_commit": "0123456789abcdef0123",
        "date": "2026-11-26T16:00:00+00:00",
        "wall_time_s": 1545.0,
        "config": {"name": "cpu", world: settings},
    }


def test_provenance_lists_what_was_run():
    world = {"n_prompts": 4, "response_length": 4, "vocab_size": 6, "n_layer": 2, "n_embd": 32}
    exact = {
        "seeds": [0, 1, 2],
        "world": {"n_responses_per_prompt": 1296},
        "provenance": _provenance("exact", {"world": world, "n_pairs": 2000, "steps": 240, "batch_size": 64}),
    }
    assert macros.provenance(exact, "exact") == "\n".join(
        [
            "- **Command:** `dpo-ref reproduce --config cpu`",
            "- **World:** 4 prompts, each with all 1296 answers of 4 tokens over 6 words; π<sub>ref</sub> a GPT-2 of 2 "
            "layers and width 32; 2000 preference pairs per seed; every method 240 updates of batch 64",
            "- **Seeds:** 0, 1, 2; every interval is a 95% Student-t interval over seeds, every difference paired by seed",
            "- **Device:** cpu: x86_64, 2 logical cores; **commit** `0123456789ab`; **date** 2026-11-26",
            "- **Wall time:** 26 min, all seeds together",  # 1545 s = 25.75 min, written to the nearest minute
            "- **Data:** [`exact_summary.json`](results/data/cpu/exact_summary.json) and one file per seed beside it",
        ]
    )
    settings = {
        "world": {
            "n_reviews": 20000,
            "n_train_prompts": 256,
            "samples_per_prompt": 4,
            "n_val_prompts": 64,
            "n_test_prompts": 96,
        },
        "steps": 100,
        "batch_size": 32,
    }
    sentiment = {
        "seeds": [3],
        "world": {"n_parameters": 120384},
        "provenance": {**_provenance("sentiment", settings), "git_commit": None, "wall_time_s": 59.0},
    }
    lines = macros.provenance(sentiment, "sentiment", "gpu").split("\n")
    assert lines[1] == (
        "- **World:** a GPT-2 of 120,384 parameters pretrained on 20,000 generated reviews; 256 training prompts × 4 "
        "samples judged by VADER; settings chosen on 64 validation prompts, reported on 96 test prompts; every "
        "offline method 100 updates of batch 32"
    )
    assert lines[2].startswith("- **Seeds:** 3; ")
    assert lines[3] == "- **Device:** cpu: x86_64, 2 logical cores; **commit** `not recorded`; **date** 2026-11-26"
    assert lines[4] == "- **Wall time:** 1 min, all seeds together"
    assert lines[5] == (
        "- **Data:** [`sentiment_summary.json`](results/data/gpu/sentiment_summary.json) and one file per seed beside it"
    )


def test_ppo_still_rising_compares_the_end_with_two_thirds_of_the_way():
    # objective = score - 0.5 KL at the five points: 0, 0.6, 1.0, 0.9, 0.95; two thirds in is point 3 (of 0..4)
    points = [(0.0, 0.0), (0.8, 0.4), (1.3, 0.6), (1.4, 1.0), (1.55, 1.2)]
    record = {"trajectory": [{"score": s, "kl": k} for s, k in points]}
    # the end (0.95) is above point 3 (0.9): still rising, though below the peak at point 2
    assert exact_summary._rising_at_end(record, 0.5) is True
    record["trajectory"][-1]["score"] = 1.45  # the end at 0.85: it rose from the start, but fell at the end
    assert exact_summary._rising_at_end(record, 0.5) is False
