"""The sentiment world's own figures: win rates over temperatures, DPO's training curves, the KL along training,
length, cost.

All read ``sentiment_summary.json`` (see :mod:`dpo_ref.experiments.sentiment_summary`).
Every number comes from the test prompts; each method's setting was selected on the
validation prompts. Rewards are VADER compound scores in [-1, 1]; intervals are 95%
Student-t intervals over seeds.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dpo_ref.figures.measured.common import (
    GUIDE,
    PAPER_METHODS,
    SENTIMENT_REWARD_TITLE,
    SYMBOLS,
    band,
    colour,
    error_bars,
    fmt,
    html_table,
    interval_text,
    label,
    means,
    menu,
    param_name,
    params_text,
    r,
    settings_trace,
    summary,
)
from dpo_ref.figures.theme import METHOD_COLOURS, ORDERED_COLOURS, QUANTITY_COLOURS, style
from dpo_ref.methods import DPO, IPO, METHODS, PPO

# TRL's logged names, each in its quantity's colour (theme.QUANTITY_COLOURS)
CURVES = (  # (name, panel, colour, dash)
    ("rewards/chosen", 1, QUANTITY_COLOURS["chosen"], "solid"),
    ("rewards/rejected", 1, QUANTITY_COLOURS["rejected"], "dash"),
    ("rewards/margins", 1, QUANTITY_COLOURS["margin"], "solid"),
    ("rewards/accuracies", 2, QUANTITY_COLOURS["accuracy"], "dot"),
    ("loss", 3, METHOD_COLOURS["sft"], "solid"),
)
COST = (  # (key of ratios_rlhf_over_dpo, label)
    ("models_in_memory", "models in memory"),
    ("state_bytes", "training state"),
    ("training_runs", "training runs"),
    ("samples_generated", "samples generated"),
    # CPU time, not wall time: one torch thread per run, so on an idle machine the two agree, and other work on a
    # shared machine (the runs of the other part, say) slows the wall clock but not the run's own CPU time
    ("cpu_time", "CPU time"),
)


def _selected(entry: dict, method: str) -> str:
    """The settings the seeds chose on validation prompts: ``β = 0.5``, or ``β = 0.5 / 5 / 0.5`` seed by seed."""
    if not entry.get("selected"):
        return "—"
    chosen = entry["selected"]["params"]
    settings = [chosen[seed] for seed in sorted(chosen, key=int)]
    if all(setting == settings[0] for setting in settings):
        return params_text(settings[0], method)
    swept = METHODS[method].swept
    return f"{param_name(swept, method)} = " + " / ".join(f"{setting[swept]:g}" for setting in settings)


def win_rates(config: str = "cpu") -> go.Figure:
    """Each method's selected setting against pi_ref over sampling temperatures, on test prompts."""
    data = summary("sentiment", config)
    fig = go.Figure()
    for method, per_t in data["win_rates"].items():
        temperatures = sorted(per_t, key=float)
        ivs = [per_t[t]["win_rate"] for t in temperatures]
        main = method in PAPER_METHODS
        fig.add_trace(
            go.Scatter(
                x=[float(t) for t in temperatures],
                y=[r(100 * iv["mean"]) for iv in ivs],
                error_y=dict(error_bars(ivs, scale=100), color=colour(method)),
                mode="lines+markers",
                line=dict(color=colour(method), width=2.5 if main else 1.5, dash="solid" if main else "dot"),
                marker=dict(size=8, color=colour(method), symbol=SYMBOLS[method]),
                name=f"{label(method)} ({_selected(data['methods'][method], method)})",
                visible=True if main else "legendonly",
                customdata=[
                    [interval_text(iv, 0, scale=100), per_t[t]["verdict_vs_half"]] for t, iv in zip(temperatures, ivs)
                ],
                hovertemplate=(
                    f"{label(method)}<br>temperature %{{x}}<br>win rate %{{customdata[0]}}%<br>"
                    "against one half: %{customdata[1]}<extra>95% interval</extra>"
                ),
            )
        )
    fig.add_hline(y=50, line=dict(color=GUIDE, dash="dot", width=1.5))
    fig.update_xaxes(title_text="sampling temperature")
    fig.update_yaxes(title_text="win rate against π<sub>ref</sub>, %", range=[0, 100])
    fig.update_layout(margin=dict(t=16, b=24))
    return style(fig, height=500)


def win_rates_table(config: str = "cpu") -> str:
    """Win rates with their intervals, and whether each is above one half, per method and temperature."""
    data = summary("sentiment", config)
    temperatures = sorted(next(iter(data["win_rates"].values())), key=float)
    rows = []
    for method, per_t in data["win_rates"].items():
        cells = [
            f"{interval_text(per_t[t]['win_rate'], 0, scale=100)}, {per_t[t]['verdict_vs_half']}" for t in temperatures
        ]
        rows.append([label(method), _selected(data["methods"][method], method), *cells])
    return html_table(
        ["method", "setting (per seed)", *(f"T = {t}" for t in temperatures)],
        rows,
        name="win rates against the reference, % with 95% interval, and the verdict against one half",
    )


def dpo_curves(config: str = "cpu") -> go.Figure:
    """DPO's logged metrics (TRL's names) over training, means over seeds with 95% bands; a menu picks beta."""
    curves = summary("sentiment", config)["curves"]
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.5, 0.25, 0.25])
    options = []
    for i, beta in enumerate(sorted(curves, key=float)):
        steps = curves[beta]["step"]
        indices = []
        for name, panel, line_colour, dash in CURVES:
            ivs = curves[beta][name]
            start = len(fig.data)
            for trace in band(steps, ivs, line_colour, name=name, legendgroup=name):
                fig.add_trace(trace.update(visible=i == 0), row=panel, col=1)
            fig.add_trace(
                go.Scatter(
                    x=steps,
                    y=means(ivs),
                    mode="lines",
                    line=dict(color=line_colour, width=2.5, dash=dash),
                    name=name,
                    legendgroup=name,
                    visible=i == 0,
                    customdata=[interval_text(iv, 3) for iv in ivs],
                    hovertemplate=f"step %{{x}}<br>{name} %{{customdata}}<extra>β = {beta}</extra>",
                ),
                row=panel,
                col=1,
            )
            indices += list(range(start, len(fig.data)))
        options.append((f"DPO, β = {float(beta):g}", indices))
    fig.add_hline(y=0, line=dict(color=GUIDE, width=1), row=1, col=1)
    fig.update_yaxes(title_text="implicit reward", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", range=[-0.03, 1.03], row=2, col=1)
    fig.update_yaxes(title_text="loss", row=3, col=1)
    fig.update_xaxes(title_text="optimiser step", row=3, col=1)
    fig.update_layout(updatemenus=[menu(options, len(fig.data))], margin=dict(t=48, b=24))
    return style(fig, height=640)


def kl_along_training(config: str = "cpu") -> go.Figure:
    """Where along training each setting of DPO and IPO sits: the test KL at each evaluation along training and
    at the end, from pi_ref (KL 0 at update 0), one line per beta in an ordered colour; means over seeds with 95%
    intervals."""
    data = summary("sentiment", config)
    steps = data["provenance"]["config"]["sentiment"]["steps"]
    methods = [m for m in (DPO, IPO) if m in data["methods"]]
    fig = make_subplots(rows=len(methods), cols=1, shared_xaxes=True, vertical_spacing=0.1)
    for row_i, method in enumerate(methods, start=1):
        swept = METHODS[method].swept
        settings = sorted(data["methods"][method]["settings"], key=lambda row: row["params"][swept])
        for i, row in enumerate(settings):
            line_colour = ORDERED_COLOURS[i * (len(ORDERED_COLOURS) - 1) // max(len(settings) - 1, 1)]
            zero = {"mean": 0.0, "low": 0.0, "high": 0.0}  # pi_ref itself, at update 0
            ivs = [zero, *(p["kl"] for p in row["trajectory"]), row["kl"]]
            x = [0, *(p["step"] for p in row["trajectory"]), steps]
            name = f"{label(method)}, {params_text(row['params'], method)}"
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=means(ivs),
                    error_y=dict(error_bars(ivs, floor=0.0), color=line_colour),
                    mode="lines+markers",
                    line=dict(color=line_colour, width=2.5),
                    marker=dict(size=8, color=line_colour, symbol=SYMBOLS[method]),
                    name=name,
                    legendgroup=method,
                    customdata=[interval_text(iv, 2) for iv in ivs],
                    hovertemplate=f"update %{{x}}<br>KL %{{customdata}} nats<extra>{name}</extra>",
                ),
                row=row_i,
                col=1,
            )
        # the method in its axis title, not a subplot title: the legend holds the top of the figure
        fig.update_yaxes(
            title_text=f"{label(method)}: KL to π<sub>ref</sub>, nats", rangemode="tozero", row=row_i, col=1
        )
    fig.update_xaxes(title_text="optimiser update", row=len(methods), col=1)
    fig.update_layout(legend=dict(y=-0.14), margin=dict(t=32, b=24))
    return style(fig, height=300 * len(methods) + 80)


def length(config: str = "cpu") -> go.Figure:
    """Reward against completion length: every setting of every method, and pi_ref's reward by length."""
    data = summary("sentiment", config)
    bins = data["reference"]["length_bins"]
    fig = go.Figure(
        go.Scatter(
            x=[r(b["length"]) for b in bins],
            y=[r(b["reward"]) for b in bins],
            mode="lines+markers",
            line=dict(color=METHOD_COLOURS["reference"], width=2, dash="dot"),
            marker=dict(size=6, color=METHOD_COLOURS["reference"]),
            name="π<sub>ref</sub>'s samples, by length",
            hovertemplate="π<sub>ref</sub>: length %{x:.1f}, reward %{y:.3f}<extra></extra>",
        )
    )
    for method in sorted(data["methods"], key=lambda m: (m not in PAPER_METHODS, m)):
        rows = data["methods"][method]["settings"]
        trace = settings_trace(
            [{**row, "kl": row["length"]} for row in rows],
            method,
            visible=True if method in PAPER_METHODS else "legendonly",
        )
        trace.update(
            hovertemplate=f"{label(method)}, %{{customdata[0]}}<br>length %{{customdata[1]}} tokens<br>"
            "reward %{customdata[2]}<extra>mean and 95% interval</extra>"
        )
        fig.add_trace(trace)
    fig.update_xaxes(title_text="completion length, tokens (test prompts)")
    fig.update_yaxes(title_text=SENTIMENT_REWARD_TITLE)
    fig.update_layout(margin=dict(t=16, b=24))
    return style(fig, height=500)


def length_table(config: str = "cpu") -> str:
    """Each method's selected setting: its length, its reward, and its reward beyond what length alone buys."""
    data = summary("sentiment", config)
    ref = data["reference"]
    rows = [["π<sub>ref</sub>", "—", interval_text(ref["length"], 1), interval_text(ref["reward"], 3), "0"]]
    for method, entry in data["methods"].items():
        chosen = entry["selected"]
        if chosen:
            rows.append(
                [
                    label(method),
                    _selected(entry, method),
                    interval_text(chosen["length"], 1),
                    interval_text(chosen["reward"], 3),
                    interval_text(chosen["length_adjusted_gain"], 3),
                ]
            )
    header = [
        "method",
        "setting (per seed)",
        "length, tokens",
        "reward",
        "reward beyond π<sub>ref</sub> at that length",
    ]
    return html_table(header, rows, name="length and the length-adjusted reward of each method's selected setting")


def cost(config: str = "cpu") -> go.Figure:
    """What RLHF (reward model, then PPO) costs, as a multiple of one DPO run on the same pairs."""
    measured = summary("sentiment", config)["cost"]
    ratios = measured["ratios_rlhf_over_dpo"]
    names = [text for key, text in COST if key in ratios]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            y=names,
            x=[1.0] * len(names),
            orientation="h",
            name="DPO (= 1)",
            marker=dict(color=METHOD_COLOURS[DPO]),
            hovertemplate="%{y}: DPO<extra></extra>",
        )
    )
    fig.add_trace(
        go.Bar(
            y=names,
            x=[r(ratios[key]) for key, _ in COST if key in ratios],
            orientation="h",
            name="RLHF: reward model + PPO",
            marker=dict(color=METHOD_COLOURS[PPO]),
            hovertemplate="%{y}: %{x:.2f}× DPO<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="cost relative to one DPO run (×)", rangemode="tozero")
    fig.update_yaxes(title_text="measured", autorange="reversed")
    fig.update_layout(barmode="group", margin=dict(t=16, b=24))
    return style(fig, height=420)


def cost_table(config: str = "cpu") -> str:
    """The measured costs of one DPO run and one RLHF pipeline, in their units."""
    measured = summary("sentiment", config)["cost"]
    dpo, rlhf = measured[DPO], measured["rlhf"]
    units = (  # (key, label, how to show it)
        ("models_in_memory", "models in memory", lambda v: f"{v:g}"),
        ("state_bytes", "training state, MB (float32)", lambda v: fmt(v / 1e6, 2)),
        ("training_runs", "training runs", lambda v: f"{v:g}"),
        ("samples_generated", "samples generated", lambda v: f"{v:g}"),
        ("cpu_time_s", "CPU time, s", lambda v: fmt(v, 1)),
    )
    rows = [[text, show(dpo[key]), show(rlhf[key]), fmt(rlhf[key] / dpo[key], 2) + "×"] for key, text, show in units]
    return html_table(
        ["", "DPO", "RLHF (reward model + PPO)", "RLHF / DPO"],
        rows,
        name="what one DPO run and one RLHF pipeline cost, measured",
    )
