"""The calculations behind every measured claim: intervals, verdicts, envelopes, matched KL."""

from __future__ import annotations

import json
import math

import pytest

from dpo_ref.analysis import BOUNDS, bounded_interval, envelope_at, interval, matched_kl, upper_envelope, verdict


def test_interval_is_the_student_t_interval_by_hand():
    got = interval([1.0, 2.0, 6.0])  # mean 3, sample std sqrt(7), sem sqrt(7/3)
    sem = math.sqrt(7 / 3)
    assert got["mean"] == pytest.approx(3.0) and got["sem"] == pytest.approx(sem) and got["n"] == 3
    assert got["low"] == pytest.approx(3 - 4.303 * sem) and got["high"] == pytest.approx(3 + 4.303 * sem)
    one = interval([0.4])
    assert one == {"mean": 0.4, "sem": 0.0, "low": 0.4, "high": 0.4, "n": 1}
    with pytest.raises(ValueError):
        interval([])


@pytest.mark.parametrize(
    "values, expected",
    [([0.10, 0.11, 0.12], "ahead"), ([-0.10, -0.11, -0.12], "behind"), ([0.3, -0.1, 0.05], "level"), ([5.0], "level")],
)
def test_verdict_claims_only_what_the_interval_supports(values, expected):
    assert verdict(interval(values)) == expected


def test_upper_envelope_keeps_only_undominated_points_in_kl_order():
    points = [(2.0, 0.4), (1.0, 0.5), (3.0, 0.9), (0.5, 0.6), (4.0, 0.8)]
    # (1.0, 0.5) is dominated by (0.5, 0.6); (2.0, 0.4) by both; (4.0, 0.8) by (3.0, 0.9)
    assert upper_envelope(points) == [(0.5, 0.6), (3.0, 0.9)]
    assert upper_envelope(points, origin=(0.0, 0.1)) == [(0.0, 0.1), (0.5, 0.6), (3.0, 0.9)]
    kls = [kl for kl, _ in upper_envelope(points, origin=(0.0, 0.1))]
    assert kls == sorted(kls)  # drawn left to right, never backwards


def test_envelope_at_interpolates_linearly_and_never_extrapolates():
    front = [(0.0, 0.1), (1.0, 0.5), (3.0, 0.9)]
    assert envelope_at(front, 0.5) == pytest.approx(0.3)
    assert envelope_at(front, 2.0) == pytest.approx(0.7)
    assert envelope_at(front, 3.0) == pytest.approx(0.9)
    assert envelope_at(front, 3.5) is None and envelope_at(front, -0.1) is None


def test_matched_kl_compares_trained_points_over_the_range_both_reach():
    # Seed s: the method is 0.1 above the other at every KL of [1, 2], the range both reach.
    method = {s: [(1.0, 0.5 + 0.01 * s), (2.0, 0.7 + 0.01 * s), (0.5, 0.2)] for s in range(3)}
    other = {s: [(1.0, 0.4 + 0.01 * s), (2.0, 0.6 + 0.01 * s), (2.5, 0.55)] for s in range(3)}
    result = matched_kl(method, other, n_points=4)
    # the method's lowest trained KL is 0.5 but the other's is 1.0; (2.5, 0.55) is dominated: [1, 2]
    assert (result["low"], result["high"]) == (1.0, 2.0)
    assert [row["kl"] for row in result["points"]] == pytest.approx([1.125, 1.375, 1.625, 1.875])
    for row in result["points"]:
        assert row["difference"]["mean"] == pytest.approx(0.1) and row["difference"]["n"] == 3
    assert result["mean_difference"]["mean"] == pytest.approx(0.1)
    assert result["mean_difference"]["high"] - result["mean_difference"]["low"] == pytest.approx(0.0, abs=1e-12)
    assert result["verdict"] == "ahead"


def test_matched_kl_never_compares_below_a_methods_lowest_trained_point():
    """No straight line from pi_ref: a method trained only at KL 5 shares no range with one that stops at 2."""
    method = {s: [(1.0, 0.5), (2.0, 0.7)] for s in range(3)}
    assert matched_kl(method, {s: [(5.0, 1.0)] for s in range(3)}) is None
    assert matched_kl(method, {s: [(2.0, 1.0)] for s in range(3)}) is None  # a single shared KL is no range
    assert matched_kl(method, {0: [(1.0, 0.5)], 1: []}) is None  # a seed without trained points


def test_matched_kl_summary_is_one_interval_over_seeds():
    # Per seed, the difference averaged over the range: 0.1, -0.1 and 0.0; the t-interval of those is level.
    method = {s: [(1.0, 0.5 + d), (3.0, 0.9 + d)] for s, d in enumerate((0.1, -0.1, 0.0))}
    other = {s: [(1.0, 0.5), (3.0, 0.9)] for s in range(3)}
    result = matched_kl(method, other)
    assert result["mean_difference"]["mean"] == pytest.approx(0.0, abs=1e-12)
    assert result["mean_difference"]["high"] == pytest.approx(4.303 * 0.1 / math.sqrt(3))
    assert result["verdict"] == "level"


def test_kto_reference_point_reads_z0_and_the_estimate_before_the_clamp():
    from dpo_ref.analysis import kto_reference_point

    runs = [{"kl": 0.0, "kl/unclamped": -2.5}, {"kl": 0.3, "kl/unclamped": 0.3}, {"loss": 1.0}]
    assert kto_reference_point(runs) == {"n_runs": 2, "z0_max": 0.3, "estimate_min": -2.5, "estimate_max": 0.3}
    assert kto_reference_point([{"loss": 1.0}]) is None  # runs logged before the estimate was


def test_a_kl_interval_is_taken_on_the_log_scale():
    # log of 1, e, e^2: 0, 1, 2 (mean 1, sd 1); 1 +- 4.303 / sqrt 3 = 1 +- 2.4843, mapped back with exp
    values = [1.0, math.e, math.e**2]
    iv = interval(values, (0.0, math.inf))
    assert iv["low"] == pytest.approx(math.exp(1 - 4.303 / math.sqrt(3)))
    assert iv["high"] == pytest.approx(math.exp(1 + 4.303 / math.sqrt(3)))
    assert iv["mean"] == pytest.approx((1 + math.e + math.e**2) / 3) and iv["low"] > 0
    assert interval(values)["low"] < 0  # the plain t-interval leaves the range


def test_a_share_interval_is_taken_on_the_logit_scale():
    # logits of 0.2, 0.5, 0.8: -ln 4, 0, ln 4 (sd ln 4); 0 +- 4.303 ln 4 / sqrt 3 = +- 3.4440
    iv = interval([0.2, 0.5, 0.8], (0.0, 1.0))
    half = 4.303 * math.log(4) / math.sqrt(3)
    assert iv["low"] == pytest.approx(1 / (1 + math.exp(half))) and iv["high"] == pytest.approx(
        1 / (1 + math.exp(-half))
    )
    assert 0 < iv["low"] < iv["mean"] < iv["high"] < 1 and iv["mean"] == pytest.approx(0.5)


def test_a_value_on_a_bound_cuts_the_plain_interval_there():
    # 0.9, 0.95, 1.0: 0.95 +- 4.303 * 0.05 / sqrt 3 = 0.95 +- 0.1242, cut at 1
    iv = interval([0.9, 0.95, 1.0], (0.0, 1.0))
    assert iv["low"] == pytest.approx(0.95 - 4.303 * 0.05 / math.sqrt(3)) and iv["high"] == 1.0
    # a sampled KL estimate can itself fall below 0: the interval is cut at 0 but keeps its mean
    iv = interval([-0.3, 0.0, 0.15], (0.0, math.inf))
    assert iv["low"] == pytest.approx(-0.05) and iv["high"] > 0
    assert interval([2.0, 2.0, 2.0], (0.0, math.inf)) == {"mean": 2.0, "sem": 0.0, "low": 2.0, "high": 2.0, "n": 3}


def test_bounded_interval_reads_the_range_by_name():
    assert bounded_interval("win_rate", [0.2, 0.5, 0.8]) == interval([0.2, 0.5, 0.8], (0.0, 1.0))
    assert bounded_interval("kl", [1.0, 2.0, 4.0])["low"] > 0
    assert bounded_interval("reward", [1.0, 2.0, 4.0]) == interval([1.0, 2.0, 4.0])  # no range: plain


def _intervals_out_of_range(node, key=None, path=""):
    """Every interval in a summary whose quantity has a range (BOUNDS, by its key) and that leaves it."""
    out = []
    if isinstance(node, dict):
        if {"mean", "low", "high", "n"} <= set(node) and key in BOUNDS:
            low, high = BOUNDS[key]
            if node["low"] < low or node["high"] > high:
                out.append(path)
        for k, v in node.items():
            out += _intervals_out_of_range(v, k, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _intervals_out_of_range(v, key, f"{path}[{i}]")
    return out


def test_the_range_check_finds_what_it_must():
    summary = {
        "methods": {"dpo": {"kl": {"mean": 1.0, "low": -0.5, "high": 2.5, "n": 3}}},
        "win_rates": [{"win_rate": {"mean": 0.9, "low": 0.7, "high": 1.1, "n": 3}}],
        "reward": {"mean": 0.0, "low": -5.0, "high": 5.0, "n": 3},
    }
    assert _intervals_out_of_range(summary) == ["/methods/dpo/kl", "/win_rates[0]/win_rate"]


@pytest.mark.parametrize("world", ["exact", "sentiment"])
def test_no_interval_in_the_committed_summaries_leaves_its_range(world):
    from dpo_ref.results import load_results

    assert _intervals_out_of_range(load_results(f"{world}_summary", config="cpu")) == []


@pytest.mark.parametrize("world", ["exact", "sentiment"])
def test_committed_summaries_are_what_the_code_computes_from_the_committed_seed_files(world):
    from dpo_ref.experiments import group
    from dpo_ref.experiments.configs import get_config
    from dpo_ref.results import load_results

    config, g = get_config("cpu"), group(world)
    per_seed = {s: {f"{world}_seed{s}": load_results(f"{world}_seed{s}", config="cpu")} for s in g.seeds(config)}
    recomputed = g.summarise(config, per_seed)[f"{world}_summary"]
    committed = load_results(f"{world}_summary", config="cpu")
    committed.pop("provenance")
    assert json.loads(json.dumps(recomputed)) == committed
