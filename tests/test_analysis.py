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


def test_matched_kl_compares_envelopes_seed_by_seed():
    # In every seed the method is 0.1 above the other at every KL: "ahead" everywhere.
    method = {s: [(1.0, 0.5 + 0.01 * s), (2.0, 0.7 + 0.01 * s)] for s in range(3)}
    other = {s: [(1.0, 0.4 + 0.01 * s), (2.0, 0.6 + 0.01 * s), (2.5, 0.55)] for s in range(3)}
    origin = {s: (0.0, 0.0) for s in range(3)}
    rows = matched_kl(method, other, origin, n_points=4)
    assert len(rows) == 4
    assert all(0.0 < row["kl"] < 2.0 for row in rows)  # only where both envelopes reach, in every seed
    for row in rows:
        assert row["difference"]["mean"] == pytest.approx(row["method"]["mean"] - row["other"]["mean"])
        assert row["verdict"] == "ahead" and row["difference"]["n"] == 3
    # the dominated point (2.5, 0.55) is not part of the other method's envelope
    assert matched_kl(method, {s: [(5.0, 1.0)] for s in range(3)}, None) == []


def test_matched_kl_is_level_when_seeds_disagree():
    method = {0: [(1.0, 0.6)], 1: [(1.0, 0.4)], 2: [(1.0, 0.5)]}
    other = {0: [(1.0, 0.45)], 1: [(1.0, 0.55)], 2: [(1.0, 0.5)]}
    origin = {s: (0.0, 0.0) for s in range(3)}
    assert {row["verdict"] for row in matched_kl(method, other, origin)} == {"level"}


def test_kto_reference_point_reads_z0_and_the_estimate_before_the_clamp():
    from dpo_ref.analysis import kto_reference_point

    runs = [{"kl": 0.0, "kl/unclamped": -2.5}, {"kl": 0.3, "kl/unclamped": 0.3}, {"loss": 1.0}]
    assert kto_reference_point(runs) == {"n_runs": 2, "z0_max": 0.3, "estimate_min": -2.5, "estimate_max": 0.3}
    assert kto_reference_point([{"loss": 1.0}]) is None  # runs logged before the estimate was
