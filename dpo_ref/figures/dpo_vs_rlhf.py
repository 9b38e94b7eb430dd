"""Figures of "DPO vs RLHF" and of the home page: the two routes from preferences to a policy.

On the one-prompt example of :mod:`dpo_ref.figures.toy`, with its true reward ``r*``:
the preference data is every pair of answers, each drawn from the reference policy and
labelled by Bradley-Terry on ``r*`` (its expected labels, so no sampling noise). Then

* **RLHF** fits a reward model to the pairs with :func:`dpo_ref.losses.bradley_terry_loss`
  (stage 2), and only then moves the policy to maximise that reward minus
  ``beta * KL`` (stage 3, exact gradients of :func:`~dpo_ref.figures.toy.expected_reward`
  and :func:`~dpo_ref.figures.toy.kl_divergence` standing in for PPO's estimates);
* **DPO** moves the policy from the first step, with :func:`dpo_ref.losses.dpo_loss`.

Both get the same number of gradient steps (Adam) and both end at the closed-form optimum
(4) of the true reward, :func:`~dpo_ref.figures.toy.optimal_policy`: here the
assumptions of the equivalence hold (Bradley-Terry labels, every answer in the data, a
policy that can represent any distribution over the eight answers).
"""

from __future__ import annotations

import functools

import plotly.graph_objects as go
import torch

from dpo_ref.figures._util import as_list, fmt, readout
from dpo_ref.figures.beta import FRONTIER_BETAS, beta_sweep
from dpo_ref.figures.theme import METHOD_COLOURS, PALETTES, slider, style
from dpo_ref.figures.toy import SUMMARY_PROMPT, ToyPrompt, expected_reward, kl_divergence, optimal_policy
from dpo_ref.losses import bradley_terry_loss, dpo_loss
from dpo_ref.methods import DPO, PPO

BETA = 0.5
STAGE_STEPS = 80  # RLHF: this many for the reward model, then as many for the policy; DPO: both
LEARNING_RATE = 0.1
FRAME_EVERY = 10
RLHF_COLOUR = METHOD_COLOURS[PPO]  # the RLHF route stands for PPO, with exact gradients
DPO_COLOUR = METHOD_COLOURS[DPO]
# the two routes, as training_paths keys them
RLHF = "rlhf"
ROUTES = (RLHF, DPO)


def preference_pairs(example: ToyPrompt) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every ordered pair ``(w, l)`` of different answers and its weight in the data.

    The weight is the chance of drawing the two answers from the reference policy times
    the Bradley-Terry probability (1) that people prefer ``w``: ``(winners, losers, weights)``,
    weights summing to 1.
    """
    ref = example.tensor("reference_probs")
    reward = example.tensor("true_rewards")
    n = len(ref)
    winners, losers = zip(*[(i, j) for i in range(n) for j in range(n) if i != j])
    winners, losers = torch.tensor(winners), torch.tensor(losers)
    prefer = torch.exp(-bradley_terry_loss(reward[winners], reward[losers]))  # sigma(r*_w - r*_l)
    weights = ref[winners] * ref[losers] * prefer
    return winners, losers, weights / weights.sum()


def _adam(parameter: torch.Tensor, loss_fn, steps: int, record) -> None:
    optimiser = torch.optim.Adam([parameter], lr=LEARNING_RATE)
    for _ in range(steps):
        optimiser.zero_grad()
        loss_fn().backward()
        optimiser.step()
        record()


@functools.cache
def training_paths(beta: float = BETA, example: ToyPrompt = SUMMARY_PROMPT) -> dict[str, list]:
    """The policy of each route after every gradient step, keyed by route (:data:`ROUTES`: :data:`RLHF`
    and the registry's :data:`~dpo_ref.methods.DPO`), as probabilities over the answers, step 0 first; and
    RLHF's reward model at each step, under ``"reward_model"``."""
    ref = example.tensor("reference_probs")
    winners, losers, weights = preference_pairs(example)

    reward_model = torch.zeros_like(ref, requires_grad=True)
    rlhf_logits = ref.log().clone().requires_grad_(True)
    dpo_logits = ref.log().clone().requires_grad_(True)
    paths: dict[str, list] = {
        RLHF: [ref.clone()],
        DPO: [ref.clone()],
        "reward_model": [reward_model.detach().clone()],
    }

    def reward_model_loss():
        return (weights * bradley_terry_loss(reward_model[winners], reward_model[losers])).sum()

    def rl_objective():  # minus objective (3) for the fitted reward model, exactly
        policy = torch.softmax(rlhf_logits, -1)
        return -(expected_reward(policy, reward_model.detach()) - beta * kl_divergence(policy, ref))

    def dpo_objective():
        logps = torch.log_softmax(dpo_logits, -1)
        ref_logps = ref.log()
        losses = dpo_loss(logps[winners], logps[losers], ref_logps[winners], ref_logps[losers], beta=beta)
        return (weights * losses).sum()

    def record_rlhf():
        paths[RLHF].append(torch.softmax(rlhf_logits, -1).detach().clone())
        paths["reward_model"].append(reward_model.detach().clone())

    def record_dpo():
        paths[DPO].append(torch.softmax(dpo_logits, -1).detach().clone())

    _adam(reward_model, reward_model_loss, STAGE_STEPS, record_rlhf)  # stage 2: the policy waits
    _adam(rlhf_logits, rl_objective, STAGE_STEPS, record_rlhf)  # stage 3
    _adam(dpo_logits, dpo_objective, 2 * STAGE_STEPS, record_dpo)
    return paths


def _point(policy: torch.Tensor, example: ToyPrompt) -> tuple[float, float]:
    ref = example.tensor("reference_probs")
    return float(kl_divergence(policy, ref)), float(expected_reward(policy, example.tensor("true_rewards")))


def _optimum_traces(example: ToyPrompt) -> list[go.Scatter]:
    """Where both routes must end: pi* for every beta (dashed) and pi* at the figure's beta (a star)."""
    frontier = beta_sweep(example, FRONTIER_BETAS)
    target = optimal_policy(example.tensor("reference_probs"), example.tensor("true_rewards"), BETA)
    target_kl, target_reward = _point(target, example)
    return [
        go.Scatter(
            x=as_list(frontier["kl"]),
            y=as_list(frontier["reward"]),
            mode="lines",
            line=dict(color=METHOD_COLOURS["optimal"], width=2, dash="dash"),
            name="π* for every β",
            hoverinfo="skip",
        ),
        go.Scatter(
            x=[target_kl],
            y=[target_reward],
            mode="markers",
            marker=dict(size=16, symbol="star", color=METHOD_COLOURS["optimal"]),
            name=f"π* at β = {BETA:g}, where both must end",
            hovertemplate="KL %{x:.2f}, E[r*] %{y:.2f}<extra>π*</extra>",
        ),
    ]


def dpo_vs_rlhf_paths(example: ToyPrompt = SUMMARY_PROMPT) -> go.Figure:
    """Slider over gradient steps: where each route's policy is on the reward-KL plane."""
    paths = training_paths(BETA, example)
    steps = list(range(0, 2 * STAGE_STEPS + 1, FRAME_EVERY))
    points = {route: [_point(paths[route][k], example) for k in range(2 * STAGE_STEPS + 1)] for route in ROUTES}

    def stage(k: int) -> str:
        if k == 0:
            return "RLHF: not started<br>DPO: not started"
        rlhf = "stage 2, fitting the reward model" if k <= STAGE_STEPS else "stage 3, training the policy"
        return f"RLHF: {rlhf}<br>DPO: training the policy"

    def state(k: int) -> dict:
        rlhf, dpo = points[RLHF][: k + 1], points[DPO][: k + 1]
        return {
            "x": [[p[0] for p in rlhf], [p[0] for p in dpo], [rlhf[-1][0]], [dpo[-1][0]], [LABEL_AT[0]]],
            "y": [[p[1] for p in rlhf], [p[1] for p in dpo], [rlhf[-1][1]], [dpo[-1][1]], [LABEL_AT[1]]],
            "text": [[], [], [], [], [stage(k)]],
        }

    fig = go.Figure(_optimum_traces(example))
    active = len(steps) // 2
    s = state(steps[active])
    routes = (("RLHF: reward model, then policy", RLHF_COLOUR, "circle"), ("DPO", DPO_COLOUR, "square"))
    for i, (name, colour, _) in enumerate(routes):  # traces 2, 3: the path so far
        path = go.Scatter(
            x=s["x"][i],
            y=s["y"][i],
            mode="lines",
            line=dict(color=colour, width=3),
            name=name,
            legendgroup=name,
            showlegend=False,
            hoverinfo="skip",
        )
        fig.add_trace(path)
    for i, (name, colour, symbol) in enumerate(routes):  # traces 4, 5: where it is now
        fig.add_trace(
            go.Scatter(
                x=s["x"][i + 2],
                y=s["y"][i + 2],
                mode="lines+markers",
                name=name,
                legendgroup=name,
                line=dict(color=colour, width=3),
                marker=dict(size=12, color=colour, symbol=symbol, line=dict(width=2, color=PALETTES["default"]["bg"])),
                hovertemplate="KL %{x:.3f}, E[r*] %{y:.3f}<extra>" + name + "</extra>",
            )
        )
    fig.add_trace(readout(s, 4, position="top left", name="stage", size=13))
    slider_steps = [dict(method="restyle", label=str(k), args=[state(k), [2, 3, 4, 5, 6]]) for k in steps]
    fig.update_xaxes(title_text="KL(π ‖ π<sub>ref</sub>), nats", range=[-0.05, 1.6])
    fig.update_yaxes(title_text="expected true reward E[r*]", range=[0.2, 2.05])
    fig.update_layout(
        margin=dict(t=16, b=24),
        sliders=[slider(label="gradient steps, the same for both", steps=slider_steps, active=active, y=-0.23)],
    )
    return style(fig, height=560)


LABEL_AT = (1.58, 0.25)  # bottom-right corner of the reward-KL plane, where no path goes


def what_dpo_does(example: ToyPrompt = SUMMARY_PROMPT) -> go.Figure:
    """The home page's picture: one prompt's answers, before DPO (the reference) and after."""
    paths = training_paths(BETA, example)
    labels = [f"{answer} (r* {fmt(r, 1)})" for answer, r in zip(example.answers, example.true_rewards)]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            y=labels,
            x=as_list(paths[DPO][0]),
            orientation="h",
            name="before: reference π<sub>ref</sub>",
            marker_color=METHOD_COLOURS["reference"],
            hovertemplate="%{y}: %{x:.3f}<extra>before</extra>",
        )
    )
    fig.add_trace(
        go.Bar(
            y=labels,
            x=as_list(paths[DPO][-1]),
            orientation="h",
            name="after DPO on preference pairs",
            marker_color=DPO_COLOUR,
            hovertemplate="%{y}: %{x:.3f}<extra>after DPO</extra>",
        )
    )
    fig.update_xaxes(title_text="probability of the answer", range=[0, 0.7])
    fig.update_yaxes(autorange="reversed", title_text="answer (its true reward r*)", showgrid=False)
    fig.update_layout(barmode="group", bargap=0.22, margin=dict(t=8, b=24, l=8))
    return style(fig, height=470)
