"""How measured runs become claims: intervals over seeds, upper envelopes, matched-KL verdicts.

Every comparison on the results pages goes through these functions, and their output is
what the results files store and the pages quote:

* :func:`interval`: the mean of per-seed values with a 95% Student-t confidence interval
  (with 3 seeds, the half-width is 4.3 standard errors: wide, on purpose), taken on a log
  or logit scale for a bounded quantity (:func:`bounded_interval`) so it stays in range;
* :func:`verdict`: ``"ahead"``, ``"behind"`` or ``"level"``, from an interval of a
  difference: ahead or behind only when the whole interval is on one side of zero;
* :func:`upper_envelope` and :func:`envelope_at`: a method's Pareto front over its
  hyperparameter grid on the reward-KL plane (the best reward it reached at each KL),
  with the reference policy as the KL-0 point every method can reach;
* :func:`matched_kl`: two methods' envelopes of trained policies compared over the KLs
  both reach, seed by seed (the seeds share their preference data, so the difference is
  paired), summarised as one mean difference with its interval and verdict;
* :func:`kto_reference_point`: where KTO's reference point ended in a world's runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import mean, stdev

__all__ = ["interval", "bounded_interval", "BOUNDS", "verdict", "upper_envelope", "envelope_at", "matched_kl", "T_975"]

# The 97.5% quantile of Student's t with k degrees of freedom (two-sided 95% interval).
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def _t_quantile(dof: int) -> float:
    if dof in T_975:
        return T_975[dof]
    # Cornish-Fisher expansion around the normal quantile: within 0.003 of the exact value for dof > 10
    z = 1.959964
    return z + (z**3 + z) / (4 * dof) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * dof**2)


# The range of each bounded quantity the summaries hold, by its name in the results files:
# an interval of one of these is computed where the quantity is unbounded and mapped back.
BOUNDS: dict[str, tuple[float, float]] = {
    "kl": (0.0, math.inf),
    "kl_to_optimum": (0.0, math.inf),
    "entropy": (0.0, math.inf),
    "length": (0.0, math.inf),
    "win_rate": (0.0, 1.0),
    "truncated_fraction": (0.0, 1.0),
    "pair_accuracy": (0.0, 1.0),
    "pair_accuracy_under_reference": (0.0, 1.0),
    "correlation_with_true_reward": (-1.0, 1.0),
    "mass/chosen": (0.0, 1.0),
    "mass/rejected": (0.0, 1.0),
    "mass/both": (0.0, 1.0),
    "mass/unseen": (0.0, 1.0),
    "mass/unseen_low_reward": (0.0, 1.0),
    "rewards/accuracies": (0.0, 1.0),
    "grad_norm": (0.0, math.inf),
}


def _scale(low: float, high: float):
    """To a scale on which a quantity in (low, high) is unbounded, and back: log for (low, inf), logit between two bounds."""
    if math.isinf(high):
        return (lambda v: math.log(v - low)), (lambda z: low + math.exp(z))
    width = high - low
    return (lambda v: math.log((v - low) / (high - v))), (lambda z: low + width / (1 + math.exp(-z)))


def interval(values: Sequence[float], bounds: tuple[float, float] | None = None) -> dict[str, float]:
    """Mean, standard error over seeds and the 95% t-interval: ``{"mean", "sem", "low", "high", "n"}``.

    One value has no interval: ``low`` and ``high`` are the value itself and ``sem`` is 0,
    which :func:`verdict` reads as "level" (nothing is claimed from one seed).

    ``bounds``: the range of the quantity (see :data:`BOUNDS`). The t-interval is then
    taken on the log scale (a quantity above a bound) or the logit scale (between two) and
    mapped back, so it never leaves the range; it is asymmetric, and widened if need be to
    hold the mean. A value on a bound has no such scale: the plain interval is cut at the
    bounds. ``mean`` and ``sem`` stay those of the values themselves.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("interval() needs at least one value")
    m = mean(values)
    if len(values) == 1:
        return {"mean": m, "sem": 0.0, "low": m, "high": m, "n": 1}
    t = _t_quantile(len(values) - 1)
    sem = stdev(values) / math.sqrt(len(values))
    low, high = m - t * sem, m + t * sem
    if bounds is not None and sem > 0:
        lo, hi = bounds
        if all(lo < v < hi for v in values):
            to, back = _scale(lo, hi)
            z = [to(v) for v in values]
            z_half = t * stdev(z) / math.sqrt(len(z))
            low, high = min(back(mean(z) - z_half), m), max(back(mean(z) + z_half), m)
        else:  # cut at the bounds, never past the mean (a sampled estimate can itself fall outside)
            low, high = max(low, min(lo, m)), min(high, max(hi, m))
    return {"mean": m, "sem": sem, "low": low, "high": high, "n": len(values)}


def bounded_interval(quantity: str, values: Sequence[float]) -> dict[str, float]:
    """:func:`interval` of a quantity of the results files, within its range if :data:`BOUNDS` names one."""
    return interval(values, BOUNDS.get(quantity))


def verdict(difference: dict[str, float]) -> str:
    """``"ahead"`` if the interval of a difference lies above 0, ``"behind"`` if below, else ``"level"``."""
    if difference["n"] < 2:
        return "level"
    if difference["low"] > 0:
        return "ahead"
    if difference["high"] < 0:
        return "behind"
    return "level"


def upper_envelope(
    points: Sequence[tuple[float, float]], origin: tuple[float, float] | None = None
) -> list[tuple[float, float]]:
    """The points no other point dominates (at most its KL, at least its reward), sorted by KL.

    ``points`` are ``(kl, reward)``. ``origin`` (the reference policy: KL 0 and its reward)
    counts as a point every method reaches in the limit of strong regularisation. The
    envelope rises with KL: a point with more KL and less reward than another is dropped.
    """
    candidates = sorted([*points, *([origin] if origin is not None else [])], key=lambda p: (p[0], -p[1]))
    front: list[tuple[float, float]] = []
    for kl, reward in candidates:
        if not front or reward > front[-1][1]:
            front.append((float(kl), float(reward)))
    return front


def envelope_at(front: Sequence[tuple[float, float]], kl: float) -> float | None:
    """The envelope's reward at ``kl``: linear between its points, None outside its KL range."""
    if not front or kl < front[0][0] or kl > front[-1][0]:
        return None
    for (k0, r0), (k1, r1) in zip(front, front[1:]):
        if k0 <= kl <= k1:
            return r0 if k1 == k0 else r0 + (r1 - r0) * (kl - k0) / (k1 - k0)
    return front[-1][1]  # a one-point envelope, or kl at its last point


def matched_kl(
    method: dict[int, list[tuple[float, float]]],
    other: dict[int, list[tuple[float, float]]],
    *,
    n_points: int = 6,
) -> dict | None:
    """``method`` against ``other`` at matched KL, trained points against trained points.

    Each method is represented, seed by seed, by the upper envelope of its trained
    policies (every setting of its grid, and every evaluation along training where the
    world records one). The two envelopes are compared only over the KLs that trained
    policies of *both* methods span in every seed: nothing below a method's lowest-KL
    trained policy (where its envelope would be a straight line from pi_ref, a mixture
    nobody trained) and nothing beyond its best one.

    Args:
        method, other: per seed, the ``(kl, reward)`` of every trained policy.
        n_points: the KLs the envelopes are read at, evenly spaced inside the shared range.

    Returns:
        None when trained policies of the two methods share no KL range in some seed.
        Otherwise ``{"low", "high"}`` (the shared KL range), ``"points"``: one row per KL,
        ``{"kl", "method", "other", "difference"}`` (intervals over seeds; the difference
        paired by seed), and the one summary the pages state: ``"mean_difference"``, the
        interval over seeds of each seed's difference averaged over the range (the KLs of
        one seed are strongly correlated, so they are one piece of evidence, not
        ``n_points``), with its ``"verdict"``.
    """
    seeds = sorted(set(method) & set(other))
    if not seeds or any(not method[s] or not other[s] for s in seeds):
        return None
    fronts = {s: (upper_envelope(method[s]), upper_envelope(other[s])) for s in seeds}
    low = max(max(a[0][0], b[0][0]) for a, b in fronts.values())
    high = min(min(a[-1][0], b[-1][0]) for a, b in fronts.values())
    if high <= low:
        return None
    kls = [low + (high - low) * (i + 0.5) / n_points for i in range(n_points)]  # never at the range's edges
    ours = {s: [envelope_at(fronts[s][0], kl) for kl in kls] for s in seeds}
    theirs = {s: [envelope_at(fronts[s][1], kl) for kl in kls] for s in seeds}
    points = []
    for i, kl in enumerate(kls):
        difference = interval([ours[s][i] - theirs[s][i] for s in seeds])
        points.append(
            {
                "kl": kl,
                "method": interval([ours[s][i] for s in seeds]),
                "other": interval([theirs[s][i] for s in seeds]),
                "difference": difference,
            }
        )
    mean_difference = interval([mean(a - b for a, b in zip(ours[s], theirs[s])) for s in seeds])
    return {
        "low": low,
        "high": high,
        "points": points,
        "mean_difference": mean_difference,
        "verdict": verdict(mean_difference),
    }


def kto_reference_point(final_metrics: list[dict]) -> dict | None:
    """KTO's reference point at the end of each KTO run, from the runs' last logged metrics
    (``kl``: :math:`z_0`; ``kl/unclamped``: the batch estimate before :math:`\\max(0, \\cdot)`).

    Returns ``{"n_runs", "z0_max", "estimate_min", "estimate_max"}``, or None without KTO runs.
    """
    rows = [m for m in final_metrics if "kl/unclamped" in m]
    if not rows:
        return None
    return {
        "n_runs": len(rows),
        "z0_max": max(m["kl"] for m in rows),
        "estimate_min": min(m["kl/unclamped"] for m in rows),
        "estimate_max": max(m["kl/unclamped"] for m in rows),
    }
