"""DPO against the closed-form optimum pi*_beta in the exact world: how close it gets, and what beta does.

Both figures read ``exact_summary.json``: ``recovery`` (KL(pi_DPO || pi*_beta) against beta
and against the number of pairs) and DPO's settings in ``methods`` next to the exact
``optimal_frontier``. Every DPO point is a mean over seeds with its 95% interval.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dpo_ref.figures.measured.common import (
    EXACT_REWARD_TITLE,
    KL_TITLE,
    colour,
    error_bars,
    interval_text,
    log_axis,
    means,
    r,
    summary,
)
from dpo_ref.figures.theme import METHOD_COLOURS, style
from dpo_ref.methods import DPO

KL_TO_OPTIMUM = "KL(π ‖ π*<sub>β</sub>), nats"


def _dpo_points(
    x: list[float],
    intervals: list[dict],
    *,
    name: str,
    floor: float | None,
    showlegend: bool,
    hover: str,
    dash: str = "solid",
    symbol: str = "circle",
    group: str = DPO,
) -> go.Scatter:
    return go.Scatter(
        x=x,
        y=means(intervals),
        error_y=dict(error_bars(intervals, floor=floor), color=colour(DPO)),
        customdata=[interval_text(iv, 3) for iv in intervals],
        mode="lines+markers",
        line=dict(color=colour(DPO), width=2.5, dash=dash),
        marker=dict(size=9, color=colour(DPO), symbol=symbol),
        name=name,
        legendgroup=group,
        showlegend=showlegend,
        hovertemplate=f"{hover}<extra>mean and 95% interval</extra>",
    )


def _reference(x: list[float], y: list[float], *, showlegend: bool) -> go.Scatter:
    return go.Scatter(
        x=x,
        y=[r(v) for v in y],
        mode="lines",
        line=dict(color=METHOD_COLOURS["reference"], width=2, dash="dot"),
        name="π<sub>ref</sub>, where training starts",
        legendgroup="reference",
        showlegend=showlegend,
        hovertemplate="KL(π<sub>ref</sub> ‖ π*<sub>β</sub>) = %{y:.3f}<extra></extra>",
    )


def _log_limits(intervals: list[dict], extra: list[float]) -> tuple[float, float]:
    values = [iv["mean"] for iv in intervals] + [iv["high"] for iv in intervals] + extra
    positive = [v for v in values if v > 0] or [1e-3, 1.0]
    return min(positive), max(positive)


def dpo_recovery(config: str = "cpu") -> go.Figure:
    """KL(pi_DPO || pi*_beta) against beta (top) and against the number of pairs at one beta (bottom), the latter
    at the same number of updates and at the same number of epochs for every size."""
    rec = summary("exact", config)["recovery"]
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.2)
    per_beta, per_n = rec["per_beta"], rec["per_n_pairs"]
    betas = [r(row["beta"]) for row in per_beta]
    ivs = [row["kl_to_optimum"] for row in per_beta]
    reference = [row["reference_kl_to_optimum"] for row in per_beta]
    low, high = _log_limits(ivs, reference)
    floor = low / 1.25
    fig.add_trace(
        _dpo_points(
            betas,
            ivs,
            name="DPO-trained policy",
            floor=floor,
            showlegend=True,
            hover="β = %{x:g}<br>KL to π*<sub>β</sub>: %{customdata}",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(_reference(betas, reference, showlegend=True), row=1, col=1)
    fig.update_xaxes(**log_axis(min(betas), max(betas), "β (log scale)"), row=1, col=1)
    fig.update_yaxes(**log_axis(low, high, KL_TO_OPTIMUM), row=1, col=1)

    ns = sorted({row["n_pairs"] for row in per_n})
    low_n, high_n = _log_limits([row["kl_to_optimum"] for row in per_n], [rec["reference_kl_to_optimum"]])
    # each data size twice: the same updates (fewer pairs seen more often) and the same epochs (fewer updates)
    for budget, dash, symbol in (("updates", "solid", "circle"), ("epochs", "dot", "diamond")):
        rows = [row for row in per_n if row["budget"] == budget]
        name = (
            f"DPO, the same {rows[0]['steps']} updates for every size"
            if budget == "updates"
            else f"DPO, the same {rows[0]['epochs']:.3g} epochs for every size"
        )
        fig.add_trace(
            _dpo_points(
                [row["n_pairs"] for row in rows],
                [row["kl_to_optimum"] for row in rows],
                name=name,
                floor=low_n / 1.25,
                showlegend=True,
                dash=dash,
                symbol=symbol,
                group=budget,
                hover="%{x} pairs<br>KL to π*<sub>β</sub>: %{customdata}",
            ),
            row=2,
            col=1,
        )
    fig.add_trace(_reference([ns[0], ns[-1]], [rec["reference_kl_to_optimum"]] * 2, showlegend=False), row=2, col=1)
    fig.update_xaxes(**log_axis(min(ns), max(ns), f"preference pairs (log scale), β = {rec['beta']:g}"), row=2, col=1)
    fig.update_yaxes(**log_axis(low_n, high_n, KL_TO_OPTIMUM), row=2, col=1)
    fig.update_layout(margin=dict(t=16, b=24))
    return style(fig, height=620)


def beta_sweep(config: str = "cpu") -> go.Figure:
    """DPO at each beta of its grid against pi*_beta: its true reward (top) and its KL to pi_ref (bottom)."""
    data = summary("exact", config)
    settings = sorted(data["methods"][DPO]["settings"], key=lambda row: row["params"]["beta"])
    betas = [r(row["params"]["beta"]) for row in settings]
    front = sorted(
        (p for p in data["optimal_frontier"] if betas[0] / 2 <= p["beta"] <= betas[-1] * 2), key=lambda p: p["beta"]
    )
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for row_i, key, title in ((1, "reward", EXACT_REWARD_TITLE), (2, "kl", KL_TITLE)):
        fig.add_trace(
            go.Scatter(
                x=[r(p["beta"]) for p in front],
                y=[r(p[key]) for p in front],
                mode="lines",
                line=dict(color=METHOD_COLOURS["optimal"], width=2, dash="dash"),
                name="optimum π*<sub>β</sub> (exact)",
                legendgroup="optimal",
                showlegend=row_i == 1,
                hovertemplate="π*<sub>β</sub>, β = %{x:.3g}: %{y:.3f}<extra></extra>",
            ),
            row=row_i,
            col=1,
        )
        fig.add_trace(
            _dpo_points(
                betas,
                [row[key] for row in settings],
                name="DPO-trained policy",
                floor=0.0 if key == "kl" else None,
                showlegend=row_i == 1,
                hover="β = %{x:g}: %{customdata}",
            ),
            row=row_i,
            col=1,
        )
        fig.update_yaxes(title_text=title, row=row_i, col=1)
    fig.update_xaxes(**log_axis(betas[0], betas[-1], "β (log scale)"), row=2, col=1)
    fig.update_xaxes(
        type="log",
        range=fig.layout.xaxis2.range,
        tickvals=fig.layout.xaxis2.tickvals,
        ticktext=fig.layout.xaxis2.ticktext,
        row=1,
        col=1,
    )
    fig.update_layout(margin=dict(t=16, b=24))
    return style(fig, height=560)
