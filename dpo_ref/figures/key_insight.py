"""Figures of "The key DPO insight" page: equation (5) read backwards.

For the optimal policy of equation (4), the implicit reward
:math:`\\beta\\log\\frac{\\pi^*(y|x)}{\\pi_{\\text{ref}}(y|x)}` (from
:func:`dpo_ref.losses.implicit_rewards`) equals the true reward minus one constant,
:math:`\\beta\\log Z(x)`, the same for every answer. Differences between answers, the
only thing Bradley-Terry looks at, come out exact: that is why :math:`Z(x)` cancels in (6).
"""

from __future__ import annotations

import plotly.graph_objects as go
import torch

from dpo_ref.figures._util import as_list, fmt
from dpo_ref.figures.theme import METHOD_COLOURS, slider, style
from dpo_ref.figures.toy import BETA_GRID, SUMMARY_PROMPT, ToyPrompt, log_partition, optimal_policy
from dpo_ref.losses import implicit_rewards
from dpo_ref.methods import DPO


def recovered_rewards(example: ToyPrompt, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(beta * log pi*/pi_ref, beta * log Z)`` for the optimum of the true reward at ``beta``."""
    ref = example.tensor("reference_probs")
    rewards = example.tensor("true_rewards")
    policy = optimal_policy(ref, rewards, beta)
    implicit = implicit_rewards(policy.log(), ref.log(), beta=beta)
    return implicit, beta * log_partition(ref, rewards, beta)


def implicit_reward_offset(example: ToyPrompt = SUMMARY_PROMPT) -> go.Figure:
    """Slider over beta: the true reward and the reward read off the optimal policy, one constant apart."""
    labels = list(example.answers)
    rewards = example.tensor("true_rewards")
    active = BETA_GRID.index(1.0)

    def name(offset: torch.Tensor) -> str:
        return f"β log π*/π<sub>ref</sub> = r − β log Z(x), β log Z(x) = {fmt(offset)}"

    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            y=labels,
            x=as_list(rewards),
            orientation="h",
            name="true reward r(x, y)",
            marker_color=METHOD_COLOURS["reference"],
            hovertemplate="%{y}: %{x:.3f}<extra>r</extra>",
        )
    )
    implicit, offset = recovered_rewards(example, BETA_GRID[active])
    fig.add_trace(
        go.Bar(
            y=labels,
            x=as_list(implicit),
            orientation="h",
            name=name(offset),
            marker_color=METHOD_COLOURS[DPO],
            hovertemplate="%{y}: %{x:.3f}<extra>β log π*/π<sub>ref</sub></extra>",
        )
    )
    steps = []
    for beta in BETA_GRID:
        implicit, offset = recovered_rewards(example, beta)
        steps.append(
            dict(
                method="restyle",
                label=fmt(beta, 2).rstrip("0").rstrip("."),
                args=[{"x": [as_list(implicit)], "name": [name(offset)]}, [1]],
            )
        )
    fig.update_xaxes(title_text="reward", range=[-4.2, 2.6])
    fig.update_yaxes(autorange="reversed", title_text="answer")
    fig.update_layout(
        barmode="group",
        bargap=0.2,
        margin=dict(t=16, b=24, l=8),
        sliders=[slider(label="β, the weight of the KL penalty", steps=steps, active=active, y=-0.15)],
    )
    return style(fig, height=560)
