"""Figures of "The PPO problem" page: what the KL-regularised objective (3) buys.

No training here: on the one-prompt example of :mod:`dpo_ref.figures.toy`, the exact
maximiser of objective (3) for a learned reward model's score is equation (4). Sweeping
beta traces the best any RL optimiser, PPO included, could do with that reward model.
As beta falls the policy drifts from the reference (KL grows), the reward model's score
keeps rising, and the true reward first rises, then collapses: reward hacking.
Measured PPO runs come from the experiments and are added beside this figure.
"""

from __future__ import annotations

import plotly.graph_objects as go
import torch

from dpo_ref.figures._util import as_list
from dpo_ref.figures.theme import QUANTITY_COLOURS, style
from dpo_ref.figures.toy import SUMMARY_PROMPT, ToyPrompt, expected_reward, kl_divergence, optimal_policy

BETAS = torch.logspace(1.3, -1.7, 121, dtype=torch.float64)  # 20 .. 0.02, KL grows left to right


def proxy_optimum_sweep(example: ToyPrompt, betas: torch.Tensor = BETAS) -> dict[str, torch.Tensor]:
    """Optimum of objective (3) for the proxy reward at each beta: its KL, proxy and true reward."""
    if len(betas) == 0:
        raise ValueError("betas must hold at least one beta, got an empty sequence")
    ref = example.tensor("reference_probs")
    proxy = example.tensor("proxy_rewards")
    true = example.tensor("true_rewards")
    policies = torch.stack([optimal_policy(ref, proxy, float(b)) for b in betas])
    return {
        "kl": torch.stack([kl_divergence(p, ref) for p in policies]),
        "proxy": torch.stack([expected_reward(p, proxy) for p in policies]),
        "true": torch.stack([expected_reward(p, true) for p in policies]),
    }


def reward_hacking(example: ToyPrompt = SUMMARY_PROMPT) -> go.Figure:
    """Proxy and true reward of the exact optimum of objective (3), against its KL to the reference."""
    sweep = proxy_optimum_sweep(example)
    best = int(torch.argmax(sweep["true"]))
    betas = as_list(BETAS, 6)
    hover = "β = %{customdata:.3g}<br>KL = %{x:.3f}<br>%{y:.3f}<extra>%{fullData.name}</extra>"
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=as_list(sweep["kl"]),
            y=as_list(sweep["proxy"]),
            customdata=betas,
            mode="lines",
            line=dict(color=QUANTITY_COLOURS["proxy_reward"], width=3),
            name="reward model's score E[r<sub>φ</sub>]",
            hovertemplate=hover,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=as_list(sweep["kl"]),
            y=as_list(sweep["true"]),
            customdata=betas,
            mode="lines",
            line=dict(color=QUANTITY_COLOURS["true_reward"], width=3, dash="dash"),
            name="true reward E[r*]",
            hovertemplate=hover,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[float(sweep["kl"][best])],
            y=[float(sweep["true"][best])],
            mode="markers+text",
            text=[f"best true reward, β ≈ {float(BETAS[best]):.2g}"],
            textposition="top right",
            marker=dict(size=11, color=QUANTITY_COLOURS["true_reward"]),
            name="best true reward",
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.update_xaxes(title_text="KL(π ‖ π<sub>ref</sub>), nats (smaller β to the right)")
    fig.update_yaxes(title_text="expected reward")
    fig.update_layout(margin=dict(t=16, b=24))
    return style(fig, height=440)
