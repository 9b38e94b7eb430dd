"""The exact world's studies of what the field learned after the DPO paper, one figure each.

All read ``exact_summary.json`` (see :mod:`dpo_ref.experiments.exact_summary` for the
keys): ``overoptimisation``, ``displacement``, ``online``, ``shift`` and
``deterministic``. Every point is a mean over seeds with its 95% interval, drawn as an
error bar or a shaded band.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dpo_ref.figures.measured.common import (
    EXACT_REWARD_TITLE,
    GUIDE,
    KL_TITLE,
    band,
    colour,
    error_bars,
    interval_text,
    kl_axis_limits,
    label,
    log_axis,
    means,
    menu,
    optimal_trace,
    params_text,
    r,
    reference_line,
    summary,
    transparent,
)
from dpo_ref.figures.theme import METHOD_COLOURS, QUANTITY_COLOURS, ordered_shades, style
from dpo_ref.methods import DPO, DPOP, IPO, PREFERRED_FT

DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
SYMBOL_CYCLE = ("circle", "square", "diamond", "triangle-up", "x", "star")  # one per setting, with the dashes
# where the probability mass sits, each class of answers in its colour (theme.QUANTITY_COLOURS)
MASS = (  # (key, legend name, colour)
    ("mass/chosen", "chosen answers", QUANTITY_COLOURS["chosen"]),
    ("mass/rejected", "rejected answers", QUANTITY_COLOURS["rejected"]),
    ("mass/both", "answers chosen once, rejected once", QUANTITY_COLOURS["both"]),
    ("mass/unseen", "answers in no pair", QUANTITY_COLOURS["unseen"]),
    (
        "mass/unseen_low_reward",
        "…in no pair and worse than π<sub>ref</sub>'s mean",
        QUANTITY_COLOURS["unseen_low_reward"],
    ),
)
# the mean change of log pi(y|x) from pi_ref over the training pairs' answers: the same two
# classes as the top panel's first two, in their colours, under their legend entries
LOGP = (
    ("logp_change/chosen", "chosen answers", QUANTITY_COLOURS["chosen"]),
    ("logp_change/rejected", "rejected answers", QUANTITY_COLOURS["rejected"]),
)
LEGEND_GROUP = {"logp_change/chosen": "mass/chosen", "logp_change/rejected": "mass/rejected"}


def _path(
    points: list[dict],
    *,
    name: str,
    method_colour: str,
    dash: str,
    symbol: str,
    legendgroup: str,
    visible: bool,
    floor: float,
) -> list[go.Scatter]:
    """A run's (KL, reward) over training, in the order of its steps, and its last point with its 95%
    intervals (on every point they would hide the paths); KL 0 has no place on a log axis."""
    kept = [p for p in points if p["kl"]["mean"] > 0]
    line = go.Scatter(
        x=means(p["kl"] for p in kept),
        y=means(p["reward"] for p in kept),
        customdata=[[p["step"], interval_text(p["reward"], 3)] for p in kept],
        mode="lines+markers",
        line=dict(color=method_colour, width=2, dash=dash),
        marker=dict(size=7, color=method_colour, symbol=symbol),
        name=name,
        legendgroup=legendgroup,
        visible=visible,
        hovertemplate=f"{name}<br>step %{{customdata[0]}}<br>KL %{{x:.3g}}<br>reward %{{customdata[1]}}<extra></extra>",
    )
    end = kept[-1:]
    bars = transparent(method_colour, 0.6)
    last = go.Scatter(
        x=means(p["kl"] for p in end),
        y=means(p["reward"] for p in end),
        mode="markers",
        error_x=dict(error_bars([p["kl"] for p in end], floor=floor), color=bars),
        error_y=dict(error_bars([p["reward"] for p in end]), color=bars),
        marker=dict(size=10, color=method_colour, symbol=symbol),
        name=f"{name}, end of training",
        legendgroup=legendgroup,
        showlegend=False,
        visible=visible,
        hoverinfo="skip",
    )
    return [line, last]


def overoptimisation(config: str = "cpu") -> go.Figure:
    """True reward against KL over training, for DPO, IPO and SimPO at every value of their grids (a menu picks)."""
    data = summary("exact", config)
    study = data["overoptimisation"]
    kls = [p["kl"]["mean"] for rows in study.values() for row in rows for p in row["path"]]
    low, high = kl_axis_limits(kls)
    floor, ceiling = low / 1.25, high * 1.25
    fig = go.Figure()
    fig.add_trace(optimal_trace(data["optimal_frontier"], min_kl=floor, max_kl=ceiling))
    fig.add_trace(reference_line(data["world"]["reference_reward"], (floor, ceiling)))
    always, options = [0, 1], []
    for i, (method, rows) in enumerate(study.items()):
        indices = []
        # the settings in the method's hue, light to dark as its first parameter (beta) grows
        order = sorted(range(len(rows)), key=lambda k: list(rows[k]["params"].values()))
        shades = dict(zip(order, ordered_shades(colour(method), len(rows))))
        for k, (row, dash, symbol) in enumerate(zip(rows, DASHES * 3, SYMBOL_CYCLE * 3)):
            falls = " (falls after its peak)" if row["over_optimised"] else ""
            indices += [len(fig.data), len(fig.data) + 1]
            name = f"{label(method)}, {params_text(row['params'], method)}{falls}"
            fig.add_traces(
                _path(
                    row["path"],
                    name=name,
                    method_colour=shades[k],
                    dash=dash,
                    symbol=symbol,
                    legendgroup=f"{method}{name}",
                    visible=i == 0,
                    floor=floor,
                )
            )
        options.append((f"method: {label(method)}", indices))
    fig.update_xaxes(**log_axis(low, high, f"{KL_TITLE} (exact, log scale)"))
    fig.update_yaxes(title_text=f"{EXACT_REWARD_TITLE} (exact)")
    fig.update_layout(updatemenus=[menu(options, len(fig.data), always=always)], margin=dict(t=48, b=24))
    return style(fig, height=560)


def displacement(config: str = "cpu") -> go.Figure:
    """Where DPO's probability mass goes over training (top) and how the chosen and rejected answers'
    log-probabilities change (bottom), at each beta of its grid (a menu picks beta)."""
    study = summary("exact", config)["displacement"]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4])
    options = []
    betas = sorted(study["per_beta"], key=float)
    start = betas.index(f"{study['beta']:g}") if f"{study['beta']:g}" in betas else 0
    for i, beta in enumerate(betas):
        trajectory = study["per_beta"][beta]["trajectory"]
        steps = [p["step"] for p in trajectory]
        indices = []
        for row, quantities in ((1, MASS), (2, LOGP)):
            for key, name, line_colour in quantities:
                indices.append(len(fig.data))
                fig.add_trace(
                    go.Scatter(
                        x=steps,
                        y=means(p[key] for p in trajectory),
                        mode="lines+markers",
                        error_y=dict(error_bars([p[key] for p in trajectory]), color=line_colour, thickness=0.8),
                        line=dict(color=line_colour, width=2.5, dash="dot" if key.endswith("low_reward") else "solid"),
                        marker=dict(size=6, color=line_colour),
                        name=name,
                        legendgroup=LEGEND_GROUP.get(key, key),
                        showlegend=key not in LEGEND_GROUP,
                        visible=i == start,
                        customdata=[interval_text(p[key], 3) for p in trajectory],
                        hovertemplate=(
                            f"step %{{x}}<br>{'Δ log π' if row == 2 else 'mass'} of {name}: %{{customdata}}"
                            f"<extra>β = {beta}</extra>"
                        ),
                    ),
                    row=row,
                    col=1,
                )
        options.append((f"DPO, β = {beta}", indices))
    options.insert(0, options.pop(start))  # the menu opens on the beta the other studies use
    fig.add_hline(y=0, line=dict(color=GUIDE, width=1), row=2, col=1)
    fig.update_yaxes(title_text="probability mass", range=[-0.02, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="Δ log π, nats", row=2, col=1)
    fig.update_xaxes(title_text="training step", row=2, col=1)
    fig.update_layout(updatemenus=[menu(options, len(fig.data))], margin=dict(t=48, b=24))
    return style(fig, height=640)


def dpop_displacement(config: str = "cpu") -> go.Figure:
    """The chosen and rejected answers' log-probability change over training under DPO and under DPOP (its fix
    for displacement), the same pairs and seeds, at each beta of DPOP's grid (a menu picks beta)."""
    study = summary("exact", config)["displacement"]
    if DPOP not in study:
        raise ValueError("exact_summary.json has no DPOP runs: add dpop to the exact world's grids and rerun")
    fig = go.Figure()
    options = []
    betas = sorted(study[DPOP], key=float)
    start = betas.index(f"{study['beta']:g}") if f"{study['beta']:g}" in betas else 0
    for i, beta in enumerate(betas):
        indices = []
        for method, trajectory in (
            (DPO, study["per_beta"][beta]["trajectory"]),
            (DPOP, study[DPOP][beta]["trajectory"]),
        ):
            for key, answers, dash in (
                ("logp_change/chosen", "chosen", "solid"),
                ("logp_change/rejected", "rejected", "dash"),
            ):
                name = f"{label(method)}: {answers} answers"
                indices.append(len(fig.data))
                fig.add_trace(
                    go.Scatter(
                        x=[p["step"] for p in trajectory],
                        y=means(p[key] for p in trajectory),
                        mode="lines+markers",
                        error_y=dict(error_bars([p[key] for p in trajectory]), color=colour(method), thickness=0.8),
                        line=dict(color=colour(method), width=2.5, dash=dash),
                        marker=dict(size=6, color=colour(method)),
                        name=name,
                        visible=i == start,
                        customdata=[interval_text(p[key], 3) for p in trajectory],
                        hovertemplate=f"step %{{x}}<br>Δ log π: %{{customdata}}<extra>{name}, β = {beta}</extra>",
                    )
                )
        options.append((f"β = {beta}", indices))
    options.insert(0, options.pop(start))  # the menu opens on the beta the other studies use
    fig.add_hline(y=0, line=dict(color=GUIDE, width=1))
    fig.update_yaxes(title_text="Δ log π from π<sub>ref</sub>, nats")
    fig.update_xaxes(title_text="training step")
    fig.update_layout(updatemenus=[menu(options, len(fig.data))], margin=dict(t=48, b=24))
    return style(fig, height=480)


def _point(iv_kl: dict, iv_reward: dict, *, name: str, method: str, symbol: str, size: int = 12) -> go.Scatter:
    return go.Scatter(
        x=[r(iv_kl["mean"])],
        y=[r(iv_reward["mean"])],
        error_x=dict(error_bars([iv_kl], floor=0.0), color=colour(method)),
        error_y=dict(error_bars([iv_reward]), color=colour(method)),
        customdata=[[interval_text(iv_kl, 3), interval_text(iv_reward, 3)]],
        mode="markers",
        marker=dict(size=size, color=colour(method), symbol=symbol, line=dict(width=1.5, color=colour(method))),
        name=name,
        hovertemplate=f"{name}<br>KL %{{customdata[0]}}<br>reward %{{customdata[1]}}<extra>mean and 95% interval</extra>",
    )


def _linear_plane(fig: go.Figure, data: dict, kls: list[float]) -> None:
    """The exact frontier over the KLs drawn, pi_ref at KL 0, linear axes (these points sit close together)."""
    ceiling = max(kls) * 1.3
    fig.add_trace(optimal_trace(data["optimal_frontier"], max_kl=ceiling))
    fig.add_trace(
        go.Scatter(
            x=[0.0],
            y=[r(data["world"]["reference_reward"])],
            mode="markers",
            name="π<sub>ref</sub>",
            marker=dict(size=11, color=METHOD_COLOURS["reference"]),
            hovertemplate="π<sub>ref</sub>: reward %{y:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text=f"{KL_TITLE} (exact)", range=[-0.03 * ceiling, ceiling])
    fig.update_yaxes(title_text=f"{EXACT_REWARD_TITLE} (exact)")


def online_offline(config: str = "cpu") -> go.Figure:
    """Online DPO round by round against offline DPO at the same beta, number of pairs and updates."""
    data = summary("exact", config)
    study = data["online"]
    path = study["online_path"]
    fig = go.Figure()
    _linear_plane(fig, data, [p["kl"]["high"] for p in path] + [study["offline"]["kl"]["high"]])
    fig.add_trace(
        go.Scatter(
            x=means(p["kl"] for p in path),
            y=means(p["reward"] for p in path),
            mode="lines+markers",
            error_x=dict(error_bars([p["kl"] for p in path], floor=0.0), color=colour(DPO), thickness=0.8),
            error_y=dict(error_bars([p["reward"] for p in path]), color=colour(DPO), thickness=0.8),
            line=dict(color=colour(DPO), width=2, dash="dash"),
            marker=dict(size=9, color=colour(DPO), symbol="diamond"),
            name=f"online DPO, after each of {study['rounds']} rounds",
            customdata=[p["round"] + 1 for p in path],
            hovertemplate="online DPO, round %{customdata}<br>KL %{x:.3f}<br>reward %{y:.3f}<extra></extra>",
        )
    )
    fig.add_trace(
        _point(
            study["offline"]["kl"],
            study["offline"]["reward"],
            name=f"offline DPO, β = {study['beta']:g}",
            method=DPO,
            symbol="circle-open",
        )
    )
    fig.update_layout(margin=dict(t=16, b=24))
    return style(fig, height=480)


def distribution_shift(config: str = "cpu") -> go.Figure:
    """DPO on pairs drawn from a policy other than pi_ref: from pi_ref as it is, and after Preferred-FT."""
    data = summary("exact", config)
    study = data["shift"]
    kls = [study[k]["kl"]["high"] for k in (DPO, "preferred_ft", "dpo_after_preferred_ft")]
    fig = go.Figure()
    _linear_plane(fig, data, kls)
    fig.add_trace(
        _point(
            study[DPO]["kl"],
            study[DPO]["reward"],
            name="DPO from π<sub>ref</sub>",
            method=DPO,
            symbol="circle-open",
        )
    )
    fig.add_trace(
        _point(
            study["preferred_ft"]["kl"],
            study["preferred_ft"]["reward"],
            name="Preferred-FT on the chosen answers",
            method=PREFERRED_FT,
            symbol="x",
            size=11,
        )
    )
    fig.add_trace(
        _point(
            study["dpo_after_preferred_ft"]["kl"],
            study["dpo_after_preferred_ft"]["reward"],
            name="DPO after Preferred-FT",
            method=DPO,
            symbol="circle",
        )
    )
    fig.update_layout(margin=dict(t=16, b=24))
    return style(fig, height=480)


def deterministic(config: str = "cpu") -> go.Figure:
    """DPO and IPO on deterministically labelled pairs: KL to pi_ref over training, with 95% bands."""
    study = summary("exact", config)["deterministic"]
    fig = go.Figure()
    for method in (DPO, IPO):
        trajectory = study[method]["trajectory"]
        steps = [p["step"] for p in trajectory]
        ivs = [p["kl"] for p in trajectory]
        fig.add_traces(band(steps, ivs, colour(method), name=label(method), legendgroup=method, floor=0.0))
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=means(ivs),
                mode="lines+markers",
                line=dict(color=colour(method), width=2.5),
                marker=dict(size=6, color=colour(method)),
                name=label(method),
                legendgroup=method,
                customdata=[interval_text(iv, 3) for iv in ivs],
                hovertemplate=f"{label(method)}<br>step %{{x}}<br>KL %{{customdata}}<extra>mean and 95% interval</extra>",
            )
        )
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text=KL_TITLE + " (exact)", rangemode="tozero")
    fig.update_layout(margin=dict(t=16, b=24))
    return style(fig, height=420)
