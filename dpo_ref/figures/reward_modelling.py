"""Figures of the reward-modelling page: the Bradley-Terry model, equations (1) and (2).

Every number comes from :func:`dpo_ref.losses.bradley_terry_loss`; the preference
probability is :math:`\\exp(-\\mathcal L_R) = \\sigma(r_w - r_l)`.
"""

from __future__ import annotations

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from dpo_ref.figures._util import as_list, fmt, grid, readout
from dpo_ref.figures.theme import METHOD_COLOURS, PALETTES, slider, style
from dpo_ref.losses import bradley_terry_loss

COLOUR = METHOD_COLOURS["reward_model"]
MARGINS = grid(-6.5, 6.5, 261)  # x axis of the probability and loss curves: every slider margin fits
REWARDS = [v / 2 for v in range(-6, 7)]  # each reward slider: -3 .. 3 in steps of 0.5


def preference_probability_and_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(P(y_w > y_l), loss)`` for reward tensors of shape ``(N,)``, both from the package's loss."""
    loss = bradley_terry_loss(chosen, rejected)
    return torch.exp(-loss), loss


# The readouts sit in a corner of their panel that the curve never enters: sigma(m) is
# low over the left half, so "P = ..." goes top left; the loss is low over the right
# half, so "loss = ..." goes top right. Whatever the sliders say, no label leaves its
# panel or covers its curve (tests/test_figures.py checks the corners stay empty).
P_LABEL_AT = (-6.4, 1.1)
LOSS_LABEL_AT = (6.4, 7.5)
MARKER_TRACES = [0, 1, 3, 4, 6, 7]  # rewards, their gap, P marker and readout, loss marker and readout


def _state(r_w: float, r_l: float) -> dict:
    """The restyle of :data:`MARKER_TRACES` for one pair of rewards."""
    probs, losses = preference_probability_and_loss(
        torch.tensor([r_w], dtype=torch.float64), torch.tensor([r_l], dtype=torch.float64)
    )
    p, loss = float(probs[0]), float(losses[0])
    m = r_w - r_l
    # the rewards' names: one above and one below their markers when the two are close
    names = ["top center", "bottom center" if abs(r_w - r_l) < 1.1 else "top center"]
    return {
        "x": [[r_w, r_l], [r_l, r_w], [m], [P_LABEL_AT[0]], [m], [LOSS_LABEL_AT[0]]],
        "y": [[0, 0], [0, 0], [round(p, 9)], [P_LABEL_AT[1]], [round(loss, 9)], [LOSS_LABEL_AT[1]]],
        "text": [["y<sub>w</sub>", "y<sub>l</sub>"], [], [], [f"P = {fmt(p)}"], [], [f"loss = {fmt(loss)}"]],
        "textposition": [names, "none", "none", "bottom right", "none", "bottom left"],
    }


def _bradley_terry_figure(pair: tuple[float, float]) -> go.Figure:
    """The three panels (rewards, probability, loss) at one pair; sliders are added by the callers."""
    fig = make_subplots(rows=3, cols=1, row_heights=[0.18, 0.41, 0.41], vertical_spacing=0.1)
    curve_p, curve_loss = preference_probability_and_loss(MARGINS, torch.zeros_like(MARGINS))
    s = _state(*pair)
    marker = dict(size=12, color=COLOUR, line=dict(width=2, color=PALETTES["default"]["bg"]))
    # trace 0: the two rewards on a number line; trace 1: the gap between them
    fig.add_trace(
        go.Scatter(
            x=s["x"][0],
            y=s["y"][0],
            text=s["text"][0],
            mode="markers+text",
            textposition=s["textposition"][0],
            marker=dict(size=13, color=COLOUR, symbol=["circle", "x"]),
            name="rewards",
            hovertemplate="%{text}: r = %{x:.2f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=s["x"][1],
            y=s["y"][1],
            mode="lines",
            line=dict(color=COLOUR, width=2, dash="dot"),
            name="margin",
            hoverinfo="skip",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=as_list(MARGINS),
            y=as_list(curve_p),
            mode="lines",
            line=dict(color=COLOUR, width=3),
            name="P(y<sub>w</sub> ≻ y<sub>l</sub>) = σ(margin)",
            hovertemplate="margin %{x:.2f}<br>P = %{y:.3f}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    fig.add_trace(
        go.Scatter(x=s["x"][2], y=s["y"][2], mode="markers", marker=marker, name="current pair", hoverinfo="skip"),
        row=2,
        col=1,
    )
    fig.add_trace(readout(s, 3, position="bottom right", name="P readout"), row=2, col=1)
    fig.add_trace(
        go.Scatter(
            x=as_list(MARGINS),
            y=as_list(curve_loss),
            mode="lines",
            line=dict(color=COLOUR, width=3, dash="dash"),
            name="loss −log σ(margin)",
            hovertemplate="margin %{x:.2f}<br>loss = %{y:.3f}<extra></extra>",
        ),
        row=3,
        col=1,
    )
    fig.add_trace(
        go.Scatter(x=s["x"][4], y=s["y"][4], mode="markers", marker=marker, name="current pair", hoverinfo="skip"),
        row=3,
        col=1,
    )
    fig.add_trace(readout(s, 5, position="bottom left", name="loss readout"), row=3, col=1)
    fig.update_xaxes(range=[-3.6, 3.6], title_text="reward r(x, y)", row=1, col=1)
    fig.update_yaxes(visible=False, range=[-1.3, 1.3], row=1, col=1)
    fig.update_xaxes(range=[-6.6, 6.6], matches="x3", showticklabels=True, row=2, col=1)
    fig.update_yaxes(range=[-0.12, 1.12], title_text="P(y<sub>w</sub> ≻ y<sub>l</sub>)", row=2, col=1)
    fig.update_xaxes(range=[-6.6, 6.6], title_text="margin r(x, y<sub>w</sub>) − r(x, y<sub>l</sub>)", row=3, col=1)
    fig.update_yaxes(range=[-0.4, 7.6], title_text="loss", row=3, col=1)
    fig.update_layout(showlegend=False, margin=dict(t=16, b=24))
    return fig


def bradley_terry_chosen_reward() -> go.Figure:
    """A slider for each reward, the chosen and the rejected answer's: probability and loss move.

    Plotly cannot make one slider's step depend on another slider's position, so every
    combination's restyle is computed here (``layout.meta.dpo_states``, keyed by the two
    positions) and the site's script applies the one the sliders point at.
    """
    active_w, active_l = REWARDS.index(1.0), REWARDS.index(0.0)
    fig = _bradley_terry_figure((REWARDS[active_w], REWARDS[active_l]))
    states = {f"{i},{j}": _state(r_w, r_l) for i, r_w in enumerate(REWARDS) for j, r_l in enumerate(REWARDS)}
    labels = [fmt(v, 1) for v in REWARDS]
    skip = [dict(method="skip", label=label, args=[None]) for label in labels]
    fig.update_layout(
        meta={"dpo_states": {"traces": MARKER_TRACES, "states": states}},
        sliders=[
            slider(label="chosen reward r(x, y<sub>w</sub>)", steps=skip, active=active_w, y=-0.09),
            slider(label="rejected reward r(x, y<sub>l</sub>)", steps=skip, active=active_l, y=-0.25),
        ],
        margin=dict(t=16, b=150),
    )
    return style(fig, height=760)


def bradley_terry_shift() -> go.Figure:
    """Slider adding one constant to both rewards: the pair moves, probability and loss do not."""
    shifts = [v / 2 for v in range(-4, 5)]
    fig = _bradley_terry_figure((1.0, -0.5))
    steps = [dict(method="restyle", label=fmt(c, 1), args=[_state(1.0 + c, -0.5 + c), MARKER_TRACES]) for c in shifts]
    fig.update_layout(
        sliders=[slider(label="constant c added to both rewards", steps=steps, active=shifts.index(0.0), y=-0.1)]
    )
    return style(fig, height=640)
