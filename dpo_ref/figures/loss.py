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

COLOUR = METHOD_COLOURS["dpo"]
BETA = 0.1  # any beta gives the same curves in reward units; 0.1 is the paper's default
MARGINS = grid(-8.5, 8.5, 341)
SLIDER_MARGINS = [float(v) for v in range(-8, 9)]  # the whole horizontal axis
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

    def loss_of_margin(m: torch.Tensor) -> torch.Tensor:
        return dpo_loss(m / beta, zeros, zeros, zeros, beta=beta)

    loss, slope = value_and_slope(loss_of_margin, margins)
    return loss, -slope


def dpo_loss_margin() -> go.Figure:
    """Slider over the implicit-reward margin: the loss (top) and the gradient weight (bottom)."""
    loss, weight = loss_and_weight(MARGINS)
    marks = torch.tensor(SLIDER_MARGINS, dtype=torch.float64)
    mark_loss, mark_weight = loss_and_weight(marks)
    active = SLIDER_MARGINS.index(0.0)

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

    def state(i: int) -> dict:
        m = SLIDER_MARGINS[i]
        return {
            "x": [[m], [m], [LOSS_LABEL_AT[0]], [WEIGHT_LABEL_AT[0]]],
            "y": [[float(mark_loss[i])], [float(mark_weight[i])], [LOSS_LABEL_AT[1]], [WEIGHT_LABEL_AT[1]]],
            "text": [[], [], [f"loss = {fmt(mark_loss[i], 3)}"], [f"weight = {fmt(mark_weight[i], 3)}"]],
        }

    s = state(active)
    marker = dict(size=12, color=COLOUR, line=dict(width=2, color=PALETTES["default"]["bg"]))
    for row in (0, 1):
        current = go.Scatter(x=s["x"][row], y=s["y"][row], mode="markers", marker=marker, name="current margin",
                             showlegend=row == 0, hoverinfo="skip")  # fmt: skip
        fig.add_trace(current, row=row + 1, col=1)
    for row in (0, 1):
        fig.add_trace(readout(s, row + 2, position="bottom left"), row=row + 1, col=1)
    steps = [
        dict(method="restyle", label=fmt(m, 0), args=[state(i), [2, 3, 4, 5]]) for i, m in enumerate(SLIDER_MARGINS)
    ]
    fig.add_hline(
        y=float(torch.log(torch.tensor(2.0))),
        line=dict(color=PALETTES["default"]["fg_lighter"], dash="dot", width=1),
        annotation_text="ln 2: policy = reference",
        # on the right, above the line: there the loss curve runs below ln 2 (m > 0), where
        # on the left it climbs through the label on a phone's narrow plot
        annotation_position="top right",
        annotation_font_size=11,
        row=1,
        col=1,
    )
    fig.update_yaxes(title_text="loss", range=[-0.2, 8.6], row=1, col=1)
    fig.update_yaxes(title_text="gradient weight", range=[-0.04, 1.08], row=2, col=1)
    fig.update_xaxes(range=[-8.6, 8.6], row=1, col=1)
    fig.update_xaxes(title_text="margin m = r̂(x, y<sub>w</sub>) − r̂(x, y<sub>l</sub>)", range=[-8.6, 8.6], row=2, col=1)
    fig.update_layout(
        margin=dict(t=16, b=24),
        sliders=[slider(label="implicit-reward margin m", steps=steps, active=active, y=-0.17)],
    )
    return style(fig, height=600)
