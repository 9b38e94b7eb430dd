"""Figures of "The beta parameter" page: the closed-form optimum (4) as beta moves.

On the one-prompt example of :mod:`dpo_ref.figures.toy`, with its true reward:
:math:`\\pi^*_\\beta \\propto \\pi_{\\text{ref}} e^{r/\\beta}`, its KL to the reference and
its expected reward, all exact sums from :mod:`dpo_ref.figures.toy`.
"""

from __future__ import annotations

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from dpo_ref.figures._util import as_list, fmt, readout
from dpo_ref.figures.theme import METHOD_COLOURS, PALETTES, slider, style
from dpo_ref.figures.toy import BETA_GRID, SUMMARY_PROMPT, ToyPrompt, expected_reward, kl_divergence, optimal_policy
from dpo_ref.methods import DPO

FRONTIER_BETAS = torch.logspace(-1.7, 1.7, 121, dtype=torch.float64)  # 0.02 .. 50
LABEL_AT = (2.45, 0.25)  # bottom-right corner of the reward-KL panel


def beta_sweep(example: ToyPrompt, betas) -> dict[str, torch.Tensor]:
    """For each beta: the optimal policy ``(len(betas), n)``, its KL and its expected true reward."""
    betas = list(betas)
    if not betas:
        raise ValueError("betas must hold at least one beta, got an empty sequence")
    ref = example.tensor("reference_probs")
    rewards = example.tensor("true_rewards")
    policies = torch.stack([optimal_policy(ref, rewards, float(b)) for b in betas])
    return {
        "policies": policies,
        "kl": torch.stack([kl_divergence(p, ref) for p in policies]),
        "reward": torch.stack([expected_reward(p, rewards) for p in policies]),
    }


def beta_slider(example: ToyPrompt = SUMMARY_PROMPT) -> go.Figure:
    """Slider over beta: pi* against pi_ref (top) and where pi* sits on the reward-KL curve (bottom)."""
    ref = example.tensor("reference_probs")
    steps_data = beta_sweep(example, BETA_GRID)
    frontier = beta_sweep(example, FRONTIER_BETAS)
    active = BETA_GRID.index(0.5)
    labels = list(example.answers)

    fig = make_subplots(rows=2, cols=1, row_heights=[0.56, 0.44], vertical_spacing=0.16)
    bars = (
        (ref, "reference π<sub>ref</sub>", METHOD_COLOURS["reference"], "π<sub>ref</sub>"),
        (steps_data["policies"][active], "optimum π* ∝ π<sub>ref</sub>·exp(r/β)", METHOD_COLOURS[DPO], "π*"),
    )
    for probs, name, colour, short in bars:
        bar = go.Bar(
            y=labels,
            x=as_list(probs),
            orientation="h",
            name=name,
            marker_color=colour,
            hovertemplate="%{y}: %{x:.3f}<extra>" + short + "</extra>",
        )
        fig.add_trace(bar, row=1, col=1)
    fig.add_trace(
        go.Scatter(
            x=as_list(frontier["kl"]),
            y=as_list(frontier["reward"]),
            mode="lines",
            line=dict(color=METHOD_COLOURS["optimal"], width=2, dash="dash"),
            customdata=as_list(FRONTIER_BETAS, 6),
            name="π* for every β",
            hovertemplate="β = %{customdata:.3g}<br>KL = %{x:.3f}<br>E[r] = %{y:.3f}<extra></extra>",
        ),
        row=2,
        col=1,
    )

    def state(i: int) -> dict:
        kl, reward = float(steps_data["kl"][i]), float(steps_data["reward"][i])
        return {
            "x": [as_list(steps_data["policies"][i]), [kl], [LABEL_AT[0]]],
            "y": [labels, [reward], [LABEL_AT[1]]],
            "text": [[], [], [f"KL = {fmt(kl)} nats<br>E[r] = {fmt(reward)}"]],
        }

    s = state(active)
    fig.add_trace(
        go.Scatter(
            x=s["x"][1],
            y=s["y"][1],
            mode="markers",
            name="π* at this β",
            marker=dict(size=12, color=METHOD_COLOURS[DPO], line=dict(width=2, color=PALETTES["default"]["bg"])),
            hoverinfo="skip",
        ),
        row=2,
        col=1,
    )
    # The readout sits in the panel's bottom-right corner, where the concave curve never
    # goes: at every beta it stays inside the panel and off the curve.
    fig.add_trace(readout(s, 2, position="top left"), row=2, col=1)
    steps = [
        dict(method="restyle", label=fmt(b, 2).rstrip("0").rstrip("."), args=[state(i), [1, 3, 4]])
        for i, b in enumerate(BETA_GRID)
    ]
    fig.update_xaxes(title_text="probability of the answer", range=[0, 1], row=1, col=1)
    fig.update_yaxes(autorange="reversed", title_text="answer", showgrid=False, row=1, col=1)
    fig.update_xaxes(title_text="KL(π* ‖ π<sub>ref</sub>), nats", range=[-0.1, 2.5], row=2, col=1)
    fig.update_yaxes(title_text="expected reward", range=[0.2, 2.1], row=2, col=1)
    fig.update_layout(
        barmode="group",
        bargap=0.25,
        margin=dict(t=16, b=24, l=8),
        sliders=[slider(label="β (larger keeps π* closer to π<sub>ref</sub>)", steps=steps, active=active, y=-0.13)],
    )
    return style(fig, height=720)
