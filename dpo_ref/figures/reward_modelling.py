"""Figures of the reward-modelling page: the Bradley-Terry model, equations (1) and (2).

Every number comes from :func:`dpo_ref.losses.bradley_terry_loss`; the preference
probability is :math:`\\exp(-\\mathcal L_R) = \\sigma(r_w - r_l)`.
"""

from __future__ import annotations

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from dpo_ref.figures._util import as_list, fmt, grid
from dpo_ref.figures.theme import METHOD_COLOURS, PALETTES, slider, style
from dpo_ref.losses import bradley_terry_loss

COLOUR = METHOD_COLOURS["reward_model"]
MARGINS = grid(-5.0, 5.0, 201)  # x axis of the probability and loss curves


def preference_probability_and_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(P(y_w > y_l), loss)`` for reward tensors of shape ``(N,)``, both from the package's loss."""
    loss = bradley_terry_loss(chosen, rejected)
    return torch.exp(-loss), loss


def _bradley_terry_figure(pairs: list[tuple[float, float]], labels: list[str], slider_label: str, active: int) -> go.Figure:
    fig = make_subplots(rows=3, cols=1, row_heights=[0.16, 0.42, 0.42], vertical_spacing=0.1)
    curve_p, curve_loss = preference_probability_and_loss(MARGINS, torch.zeros_like(MARGINS))
    chosen = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    rejected = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    probs, losses = preference_probability_and_loss(chosen, rejected)

    def state(i: int) -> dict:
        r_w, r_l = pairs[i]
        m = r_w - r_l
        return {
            "x": [[r_w, r_l], [r_l, r_w], [m], [m]],
            "y": [[0, 0], [0, 0], [float(probs[i])], [float(losses[i])]],
            "text": [
                ["y<sub>w</sub>", "y<sub>l</sub>"],
                [],
                [f"P = {fmt(probs[i])}"],
                [f"loss = {fmt(losses[i])}"],
            ],
        }

    s = state(active)
    # trace 0: the two rewards on a number line; trace 1: the gap between them
    fig.add_trace(
        go.Scatter(
            x=s["x"][0], y=s["y"][0], text=s["text"][0], mode="markers+text", textposition="top center",
            marker=dict(size=13, color=COLOUR, symbol=["circle", "x"]), name="rewards",
            hovertemplate="%{text}: r = %{x:.2f}<extra></extra>",
        ), row=1, col=1,
    )
    fig.add_trace(
        go.Scatter(x=s["x"][1], y=s["y"][1], mode="lines", line=dict(color=COLOUR, width=2, dash="dot"),
                   name="margin", hoverinfo="skip"), row=1, col=1,
    )
    fig.add_trace(
        go.Scatter(x=as_list(MARGINS), y=as_list(curve_p), mode="lines", line=dict(color=COLOUR, width=3),
                   name="P(y<sub>w</sub> ≻ y<sub>l</sub>) = σ(margin)", hovertemplate="margin %{x:.2f}<br>P = %{y:.3f}<extra></extra>"),
        row=2, col=1,
    )
    fig.add_trace(
        go.Scatter(x=s["x"][2], y=s["y"][2], text=s["text"][2], mode="markers+text", textposition="middle right",
                   marker=dict(size=12, color=COLOUR, line=dict(width=2, color=PALETTES["default"]["bg"])),
                   name="current pair", hoverinfo="skip"), row=2, col=1,
    )
    fig.add_trace(
        go.Scatter(x=as_list(MARGINS), y=as_list(curve_loss), mode="lines", line=dict(color=COLOUR, width=3, dash="dash"),
                   name="loss −log σ(margin)", hovertemplate="margin %{x:.2f}<br>loss = %{y:.3f}<extra></extra>"),
        row=3, col=1,
    )
    fig.add_trace(
        go.Scatter(x=s["x"][3], y=s["y"][3], text=s["text"][3], mode="markers+text", textposition="middle right",
                   marker=dict(size=12, color=COLOUR, line=dict(width=2, color=PALETTES["default"]["bg"])),
                   name="current pair", hoverinfo="skip", showlegend=False), row=3, col=1,
    )
    marker_traces = [0, 1, 3, 5]
    steps = []
    for i, label in enumerate(labels):
        st = state(i)
        steps.append(dict(method="restyle", label=label, args=[st, marker_traces]))
    fig.update_xaxes(range=[-4.6, 4.6], title_text="reward r(x, y)", row=1, col=1)
    fig.update_yaxes(visible=False, range=[-0.6, 1.2], row=1, col=1)
    fig.update_xaxes(range=[-5, 5], matches="x3", showticklabels=True, row=2, col=1)
    fig.update_yaxes(range=[-0.02, 1.02], title_text="P(y<sub>w</sub> ≻ y<sub>l</sub>)", row=2, col=1)
    fig.update_xaxes(range=[-5, 5], title_text="margin r(x, y<sub>w</sub>) − r(x, y<sub>l</sub>)", row=3, col=1)
    fig.update_yaxes(range=[0, 5.2], title_text="loss", row=3, col=1)
    fig.update_layout(
        showlegend=False,
        margin=dict(t=16, b=24),
        sliders=[slider(label=slider_label, steps=steps, active=active, y=-0.1)],
    )
    return style(fig, height=600)


def bradley_terry_chosen_reward() -> go.Figure:
    """Slider over the chosen answer's reward (the rejected one fixed at 0): probability and loss move."""
    values = [v / 2 for v in range(-6, 7)]
    pairs = [(v, 0.0) for v in values]
    return _bradley_terry_figure(pairs, [fmt(v, 1) for v in values], "chosen reward r(x, y<sub>w</sub>) (rejected = 0)", active=8)


def bradley_terry_shift() -> go.Figure:
    """Slider adding one constant to both rewards: the pair moves, probability and loss do not."""
    shifts = [v / 2 for v in range(-6, 7)]
    pairs = [(1.0 + c, -0.5 + c) for c in shifts]
    return _bradley_terry_figure(pairs, [fmt(c, 1) for c in shifts], "constant c added to both rewards", active=6)
