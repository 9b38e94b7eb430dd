"""The playground: DPO, its variants and RLHF trained live in the page, and one figure of its Python twin.

The widgets are HTML: the controls are written here, with every choice they offer; the
page script (``docs/assets/javascripts/playground.js``) wires them, trains in a Web
Worker with ``playground-core.js`` and draws the charts. Everything the script needs
(the defaults, the presets, the methods' labels and colours) travels in the widget's
``data-playground`` attribute, so :mod:`dpo_ref.playground` stays the one place for them.
"""

from __future__ import annotations

import json
from html import escape

import plotly.graph_objects as go

from dpo_ref import playground as pg
from dpo_ref.figures.theme import METHOD_COLOURS, METHOD_LABELS, ORDERED_COLOURS, style
from dpo_ref.methods import PPO, PPO_GT

# A method's look in the playground: the registry's label and colour for the registry's methods;
# exact-gradient RLHF borrows PPO's (on the true reward: PPO-GT's).
LOOKS = {
    **{name: (METHOD_LABELS[name], METHOD_COLOURS[name]) for name in pg.REGISTRY_METHODS},
    pg.RLHF_GT: ("RLHF, true reward", METHOD_COLOURS[PPO_GT]),
    pg.RLHF: ("RLHF, reward model", METHOD_COLOURS[PPO]),
}
SECOND_RUN_COLOUR = "#882255"  # Tol wine: the second run when both runs train the same method

# What each control offers. A value outside these (from a shared address) is added to its menu.
CHOICES: dict[str, list] = {
    "method": list(pg.PLAYGROUND_METHODS),
    "compare": ["", *pg.PLAYGROUND_METHODS],
    "beta": [0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0],
    "compare_beta": [0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0],
    "lr": [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0],
    "compare_lr": [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0],
    "labels": list(pg.LABEL_RULES),
    "flip": [0.0, 0.1, 0.2, 0.3, 0.4],
    "data": ["exact", 8, 16, 64, 256, 1024],
    "answers": [8, 16, 32, 64],
    "steps": [100, 200, 300, 400, 500, 1000, 2000, 5000],
}
LABELS = {
    "method": "Method",
    "beta": "β (IPO: τ)",
    "lr": "Step size",
    "compare": "Compare with",
    "compare_beta": "Its β",
    "compare_lr": "Its step size",
    "labels": "Labels",
    "flip": "Label flips",
    "data": "Pairs",
    "data_seed": "Data seed",
    "answers": "Answers",
    "world_seed": "World seed",
    "steps": "Updates",
}
SEEDS = ("data_seed", "world_seed")
# updates per drawn frame
SPEEDS = [1, 2, 5, 10, 20, 50]
CHART_TITLES = {
    "probs": "Probability of each answer",
    "loss": "Loss",
    "rewards": "Implicit rewards, chosen and rejected",
    "plane": "Path in the reward-KL plane",
    "distance": "KL(π ‖ π*β)",
    "mass": "Where the probability sits",
}
FULL_CONTROLS = (
    "method",
    "beta",
    "lr",
    "compare",
    "compare_beta",
    "compare_lr",
    "labels",
    "flip",
    "data",
    "data_seed",
    "answers",
    "world_seed",
    "steps",
)
FULL_CHARTS = ("probs", "plane", "loss", "distance", "rewards", "mass")


def _option_text(field: str, value) -> str:
    if field in ("method", "compare"):
        return LOOKS[value][0] if value else "nothing"
    if field == "labels":
        return {"bradley-terry": "Bradley-Terry", "deterministic": "higher reward wins"}[value]
    if field == "data":
        return "every pair (exact)" if value == "exact" else f"{value} sampled"
    if field == "flip":
        return f"{value:.0%}"
    return f"{value:g}"


def _control(uid: str, field: str, value) -> str:
    ident = f"{uid}-{field}"
    label = f'<label for="{ident}">{escape(LABELS[field])}</label>'
    if field in SEEDS:
        box = (
            f'<input id="{ident}" data-field="{field}" type="number" min="0" max="9999" step="1" '
            f'value="{int(value)}" inputmode="numeric">'
        )
    else:
        options = "".join(
            f'<option value="{escape(json.dumps(v))}"{" selected" if v == value else ""}>'
            f"{escape(_option_text(field, v))}</option>"
            for v in CHOICES[field]
        )
        box = f'<select id="{ident}" data-field="{field}">{options}</select>'
    return f'<div class="dpo-playground__field">{label}{box}</div>'


def widget(uid: str, *, preset: str = "", controls=FULL_CONTROLS, charts=FULL_CHARTS, presets: bool = True) -> str:
    """One playground: its controls and buttons written out, its charts' boxes, its data for the script."""
    config = pg.preset_config(preset) if preset else pg.PlaygroundConfig()
    values = config.to_dict()
    data = {
        "id": uid,
        "defaults": pg.PlaygroundConfig().to_dict(),
        "start": values,
        "presets": {name: dict(p, config={**p["config"]}) for name, p in pg.PRESETS.items()} if presets else {},
        "looks": {name: {"label": label, "colour": colour} for name, (label, colour) in LOOKS.items()},
        "secondColour": SECOND_RUN_COLOUR,
        "choices": CHOICES,
        "charts": list(charts),
        "titles": CHART_TITLES,
        "address": presets,  # the full playground keeps its settings in the page's address
        "claim": pg.PRESETS[preset]["claim"]
        if preset
        else "Choose a preset, or set a run of your own and press Train.",
    }
    preset_buttons = ""
    if presets:
        buttons = "".join(
            f'<button type="button" class="dpo-playground__preset" data-preset="{escape(name)}" aria-pressed="false">'
            f"{escape(p['title'])}</button>"
            for name, p in pg.PRESETS.items()
        )
        preset_buttons = f'<div class="dpo-playground__presets" role="group" aria-label="Presets">{buttons}</div>'
    fields = "".join(_control(uid, field, values[field]) for field in controls)
    speeds = "".join(f'<option value="{s}"{" selected" if s == 5 else ""}>{s} per frame</option>' for s in SPEEDS)
    boxes = "".join(
        f'<div class="dpo-playground__chart" data-chart="{c}" role="img" aria-label="{escape(CHART_TITLES[c])}"></div>'
        for c in charts
    )
    return (
        f'<div class="dpo-playground" id="{escape(uid)}" data-playground="{escape(json.dumps(data))}">'
        f"{preset_buttons}"
        f'<p class="dpo-playground__claim" aria-live="polite"></p>'
        f'<div class="dpo-playground__fields">{fields}</div>'
        '<div class="dpo-playground__buttons">'
        '<button type="button" class="md-button md-button--primary" data-action="play">Train</button>'
        '<button type="button" class="md-button" data-action="step">Step</button>'
        '<button type="button" class="md-button" data-action="reset">Reset</button>'
        f'<label class="dpo-playground__speed" for="{uid}-speed">Speed '
        f'<select id="{uid}-speed" data-speed>{speeds}</select></label>'
        "</div>"
        '<p class="dpo-playground__status" role="status">Press Train to start: the charts appear then.</p>'
        f'<div class="dpo-playground__charts">{boxes}</div>'
        "</div>"
    )


def playground() -> str:
    """The playground page's widget: every control, every chart, the presets."""
    return widget("playground")


def playground_displacement() -> str:
    """On /dpo-loss/: a few sampled pairs; the margin grows while the only-chosen answers lose mass."""
    return widget(
        "pg-displacement",
        preset="displacement",
        controls=("data", "data_seed", "beta"),
        charts=("rewards", "mass"),
        presets=False,
    )


def playground_beta() -> str:
    """On /beta/: DPO at two betas on the same data."""
    return widget(
        "pg-beta", preset="beta-trade-off", controls=("beta", "compare_beta"), charts=("plane", "probs"), presets=False
    )


def playground_rlhf() -> str:
    """On /dpo-vs-rlhf/: DPO and RLHF on the same pairs reach the same policy."""
    return widget(
        "pg-rlhf",
        preset="meet-at-optimum",
        controls=("compare", "beta", "data"),
        charts=("plane", "distance"),
        presets=False,
    )


def playground_deterministic() -> str:
    """On /bigger-picture/: IPO against DPO when the better answer always wins."""
    return widget(
        "pg-deterministic",
        preset="deterministic-labels",
        controls=("labels", "compare_beta"),
        charts=("plane", "rewards"),
        presets=False,
    )


def twin_beta_paths(betas=(0.2, 0.5, 1.0, 2.0), steps: int = 400, every: int = 10) -> go.Figure:
    """DPO's path in the reward-KL plane at several betas, trained by the Python twin at build time.

    Exact data, Bradley-Terry labels: each path ends on the exact frontier, at its own
    beta's optimum (marked), further out the smaller beta is.
    """
    fig = go.Figure()
    base = pg.PlaygroundConfig()
    world = pg.build_world(base)
    grid = [0.05 * 1.1**k for k in range(80)]
    front = pg.frontier(world, grid)
    fig.add_trace(
        go.Scatter(
            x=[p[0] for p in front],
            y=[p[1] for p in front],
            mode="lines",
            name="exact frontier",
            line={"color": METHOD_COLOURS["sft"], "width": 2},
        )
    )
    for k, beta in enumerate(betas):
        config = pg.PlaygroundConfig(beta=beta, lr=min(40.0, 2.5 / beta**2), steps=steps)
        path = pg.train(config, every=every)[0].path
        fig.add_trace(
            go.Scatter(
                x=[p["kl_ref"] for p in path],
                y=[p["reward"] for p in path],
                mode="lines",
                name=f"DPO, β = {beta:g}",
                line={"color": _sequential(k, len(betas)), "width": 2.5},
            )
        )
        (optimum,) = pg.frontier(world, [beta])
        fig.add_trace(
            go.Scatter(
                x=[optimum[0]],
                y=[optimum[1]],
                mode="markers",
                showlegend=False,
                hovertemplate=f"π*β at β = {beta:g}<extra></extra>",
                marker={"symbol": "star", "size": 13, "color": _sequential(k, len(betas))},
            )
        )
    fig.update_layout(
        height=420,
        xaxis_title="KL(π ‖ π_ref), nats",
        yaxis_title="expected true reward",
    )
    return style(fig)


def _sequential(k: int, n: int) -> str:
    """The k-th of n colours from light to dark: an ordered parameter in an ordered palette."""
    return ORDERED_COLOURS[round(k * (len(ORDERED_COLOURS) - 1) / max(1, n - 1))]
