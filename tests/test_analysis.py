"""The calculations behind every measured claim: intervals, verdicts, envelopes, matched KL."""

from __future__ import annotations

import math

import pytest

from dpo_ref.analysis import envelope_at, interval, matched_kl, upper_envelope, verdict


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
