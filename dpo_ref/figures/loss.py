"""Figures of "The DPO loss" page: equation (7) and its gradient weight.

In reward units, with the implicit-reward margin
:math:`m = \\hat r(x, y_w) - \\hat r(x, y_l) = \\beta h`, the DPO loss is
:math:`-\\log\\sigma(m)` and its derivative is :math:`-\\sigma(-m)`: the weight that the
paper's gradient puts on each pair. Both are computed from
:func:`dpo_ref.losses.dpo_loss`, the derivative by autograd.
"""

from __future__ import annotations

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from dpo_ref.figures._util import as_list, fmt, grid, readout, value_and_slope
from dpo_ref.figures.theme import METHOD_COLOURS, PALETTES, slider, style
from dpo_ref.losses import dpo_loss
from dpo_ref.methods import DPO

COLOUR = METHOD_COLOURS[DPO]
BETA = 0.1  # any beta gives the same curves in reward units; 0.1 is the paper's default
MARGINS = grid(-8.5, 8.5, 341)
# Each implicit reward, the chosen and the rejected answer's, has its own slider, as in
# the original explainer; their difference, the margin, spans the whole horizontal axis.
REWARDS = [v / 2 for v in range(-8, 9)]  # -4 .. 4 in steps of 0.5
MARKER_TRACES = [2, 3, 4, 5]  # the current pair on each curve, and the two readouts
# The readouts sit in the top-right corner of their panels: both curves are near zero
# over the right half, so no slider position puts a label on a curve or outside its panel.
LOSS_LABEL_AT = (8.4, 8.4)
WEIGHT_LABEL_AT = (8.4, 1.04)


def loss_and_weight(margins: torch.Tensor, beta: float = BETA) -> tuple[torch.Tensor, torch.Tensor]:
    """DPO loss and gradient weight at implicit-reward margins ``m`` (shape ``(N,)``).

    The policy's chosen log-ratio is set to ``m / beta`` and the rejected one to 0, so
    ``beta * h = m``. The weight is ``-dL/dm``, which the paper writes as
    :math:`\\sigma(\\hat r_l - \\hat r_w)`.
    """
    zeros = torch.zeros_like(margins)
    return pair_loss_and_weight(margins, zeros, beta)


def pair_loss_and_weight(
    chosen: torch.Tensor, rejected: torch.Tensor, beta: float = BETA
) -> tuple[torch.Tensor, torch.Tensor]:
    """DPO loss and gradient weight of pairs with implicit rewards ``chosen`` and ``rejected`` (shape ``(N,)``).

    The policy's log-ratios are the rewards over ``beta`` (the reference's are 0); the
    weight is minus the loss's derivative with respect to the chosen reward.
    """
    zeros = torch.zeros_like(chosen)

    def loss_of_chosen(r_w: torch.Tensor) -> torch.Tensor:
        return dpo_loss(r_w / beta, rejected / beta, zeros, zeros, beta=beta)

    loss, slope = value_and_slope(loss_of_chosen, chosen)
    return loss, -slope


def _state(r_w: float, r_l: float) -> dict:
    """The restyle of :data:`MARKER_TRACES` for one pair of implicit rewards."""
    loss, weight = (
        float(v[0])
        for v in pair_loss_and_weight(
            torch.tensor([r_w], dtype=torch.float64), torch.tensor([r_l], dtype=torch.float64)
        )
    )
    m = r_w - r_l
    return {
        "x": [[m], [m], [LOSS_LABEL_AT[0]], [WEIGHT_LABEL_AT[0]]],
        "y": [[round(loss, 9)], [round(weight, 9)], [LOSS_LABEL_AT[1]], [WEIGHT_LABEL_AT[1]]],
        "text": [[], [], [f"loss = {fmt(loss, 3)}"], [f"weight = {fmt(weight, 3)}"]],
    }


def dpo_loss_margin() -> go.Figure:
    """A slider for each implicit reward, chosen and rejected: the loss (top) and the gradient weight
    (bottom) at their margin.

    As in :func:`dpo_ref.figures.reward_modelling.bradley_terry_chosen_reward`, every
    combination of the two sliders has its restyle (``layout.meta.dpo_states``) and the
    site's script applies the one the sliders point at.
    """
    loss, weight = loss_and_weight(MARGINS)
    active = REWARDS.index(0.0)  # the policy starts as the reference: both rewards 0

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    hover = "margin %{x:.2f}<br>%{y:.3f}<extra></extra>"
    fig.add_trace(
        go.Scatter(
            x=as_list(MARGINS),
            y=as_list(loss),
            mode="lines",
            line=dict(color=COLOUR, width=3),
            name="loss −log σ(m)",
            hovertemplate=hover,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=as_list(MARGINS),
            y=as_list(weight),
            mode="lines",
            line=dict(color=COLOUR, width=3, dash="dash"),
            name="gradient weight σ(−m)",
            hovertemplate=hover,
        ),
        row=2,
        col=1,
    )
    s = _state(0.0, 0.0)
    marker = dict(size=12, color=COLOUR, line=dict(width=2, color=PALETTES["default"]["bg"]))
    for row in (0, 1):
        current = go.Scatter(
            x=s["x"][row],
            y=s["y"][row],
            mode="markers",
            marker=marker,
            name="current pair",
            showlegend=False,
            hoverinfo="skip",
        )
        fig.add_trace(current, row=row + 1, col=1)
    for row in (0, 1):
        fig.add_trace(readout(s, row + 2, position="bottom left"), row=row + 1, col=1)
    states = {f"{i},{j}": _state(r_w, r_l) for i, r_w in enumerate(REWARDS) for j, r_l in enumerate(REWARDS)}
    skip = [dict(method="skip", label=fmt(v, 1), args=[None]) for v in REWARDS]
    fig.add_hline(
        y=float(torch.log(torch.tensor(2.0))),
        line=dict(color=PALETTES["default"]["fg_lighter"], dash="dot", width=1),
        annotation_text="ln 2: π<sub>θ</sub> = π<sub>ref</sub>",  # short: clear of the pair at m = 0 at 390 px
        # on the right, above the line: there the loss curve runs below ln 2 (m > 0), where
        # on the left it climbs through the label on a phone's narrow plot
        annotation_position="top right",
        annotation_font_size=11,
        row=1,
        col=1,
    )
    fig.update_yaxes(title_text="loss −log σ(m)", range=[-0.2, 8.6], row=1, col=1)
    fig.update_yaxes(title_text="weight σ(−m)", range=[-0.04, 1.08], row=2, col=1)
    fig.update_xaxes(range=[-8.6, 8.6], row=1, col=1)
    fig.update_xaxes(title_text="margin m = r̂(x, y<sub>w</sub>) − r̂(x, y<sub>l</sub>)", range=[-8.6, 8.6], row=2, col=1)
    fig.update_layout(
        showlegend=False,
        meta={"dpo_states": {"traces": MARKER_TRACES, "states": states}},
        margin=dict(t=16, b=150),
        sliders=[
            slider(label="chosen implicit reward r̂(x, y<sub>w</sub>)", steps=skip, active=active, y=-0.11),
            slider(label="rejected implicit reward r̂(x, y<sub>l</sub>)", steps=skip, active=active, y=-0.3),
        ],
    )
    return style(fig, height=680)
