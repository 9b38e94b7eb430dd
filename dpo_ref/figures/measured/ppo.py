"""PPO, measured: its runs over training (an animation, one run per seed), its diagnostics, its failures.

Reads the PPO runs of both summaries (under :data:`~dpo_ref.methods.PPO`): per method (PPO, learned
reward; PPO-GT, true reward) and KL coefficient, the RLHF objective at the start and the end, the seeds in
which it rose, each seed's trajectory (exact world) and logged diagnostics (TRL's names).
A setting whose objective did not rise in every seed failed: it is listed, never drawn as
a result.

The animation uses Plotly's own controls: one frame per exact evaluation of the runs (after
every rollout), a step slider, Play, Pause and Reset; **Next run** hides the run on screen
and shows the next seed's. Its label names the seed on screen, as the legend does. Play at
the last step starts again from the first (Plotly's Play "from the current frame" does
that when the current frame is the last).
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dpo_ref.analysis import bounded_interval
from dpo_ref.figures.measured.common import (
    GUIDE,
    band,
    colour,
    for_worlds,
    html_table,
    interval_text,
    label,
    means,
    menu,
    r,
    summary,
)
from dpo_ref.figures.theme import QUANTITY_COLOURS, slider, style
from dpo_ref.methods import PPO, PPO_GT

RUN_LINES = (  # (trajectory key, legend name, colour, dash, panel): changes from pi_ref, exact
    ("reward", "true reward r*", QUANTITY_COLOURS["true_reward"], "solid", 1),
    ("score", "reward model's score r<sub>φ</sub>", QUANTITY_COLOURS["proxy_reward"], "dash", 1),
    ("kl", "KL(π ‖ π<sub>ref</sub>)", QUANTITY_COLOURS["kl"], "solid", 2),
)
DIAGNOSTICS = (  # (logged name, axis title)
    ("policy/approxkl", "approx. KL per update"),
    ("policy/clipfrac", "clip fraction"),
    ("loss/value", "value loss"),
    ("policy/entropy", "entropy, nats"),
    ("objective", "RLHF objective"),
)
DASHES = ("solid", "dash", "dot", "dashdot", "longdash")
PLAY_SECONDS = 8  # a whole run takes this long to play, however many evaluations it has
STILL = dict(mode="immediate", frame=dict(duration=0, redraw=False), transition=dict(duration=0))


def failed(row: dict) -> bool:
    return row["rose_in_seeds"] != row["seeds"]


def animated_setting(data: dict) -> dict:
    """The PPO (learned reward) setting the animation shows: the smallest KL coefficient that did not
    fail (the one most tempted to hack its reward model), or the smallest of all if every one failed."""
    rows = sorted((row for row in data[PPO] if row["method"] == PPO), key=lambda row: row["kl_coef"])
    return next((row for row in rows if not failed(row)), rows[0])


def optimum_at(frontier: list[dict], beta: float) -> dict:
    """pi*_beta's reward and KL, interpolated in log beta between the exact frontier's grid points."""
    front = sorted(frontier, key=lambda p: p["beta"])
    for a, b in zip(front, front[1:]):
        if a["beta"] <= beta <= b["beta"]:
            w = (math.log(beta) - math.log(a["beta"])) / (math.log(b["beta"]) - math.log(a["beta"]))
            return {k: a[k] + w * (b[k] - a[k]) for k in ("reward", "kl")}
    nearest = min(front, key=lambda p: abs(math.log(p["beta"] / beta)))
    return {k: nearest[k] for k in ("reward", "kl")}


def _run_values(trajectory: list[dict], key: str) -> list[float]:
    start = trajectory[0][key] if key != "kl" else 0.0
    return [r(p[key] - start) for p in trajectory]


def ppo_runs(config: str = "cpu") -> go.Figure:
    """Real PPO runs in the exact world, one per seed, over training: Play, Pause, Reset, Next run."""
    data = summary("exact", config)
    setting = animated_setting(data)
    seeds = sorted(setting["trajectories"], key=int)
    trajectories = [setting["trajectories"][seed] for seed in seeds]
    steps = [p["step"] for p in min(trajectories, key=len)]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.6, 0.4])
    for i, (seed, trajectory) in enumerate(zip(seeds, trajectories)):
        for key, name, line_colour, dash, row in RUN_LINES:
            fig.add_trace(
                go.Scatter(
                    x=steps,
                    y=_run_values(trajectory, key)[: len(steps)],
                    mode="lines+markers",
                    visible=i == 0,
                    name=f"{name}, seed {seed}",
                    line=dict(color=line_colour, width=3, dash=dash),
                    marker=dict(size=6, color=line_colour),
                    legendgroup=key,
                    hovertemplate=f"seed {seed}, step %{{x}}<br>{name}: %{{y:.3f}}<extra></extra>",
                ),
                row=row,
                col=1,
            )
    guides = _add_optimum(
        fig, optimum_at(data["optimal_frontier"], setting["kl_coef"]), data["world"]["reference_reward"]
    )
    # frame k: every run up to its k-th evaluation (the hidden runs too, so Next run keeps the step)
    fig.frames = [
        go.Frame(
            name=f"k{k}",
            traces=list(range(len(fig.data))),
            data=[
                go.Scatter(x=steps[: k + 1], y=_run_values(t[: k + 1], key))
                for t in trajectories
                for key, *_ in RUN_LINES
            ],
        )
        for k in range(len(steps))
    ]
    text = f"{label(setting['method'])}, β = {setting['kl_coef']:g}{' (failed)' if failed(setting) else ''}, step"
    play = play_options(len(steps))
    step_buttons = [dict(method="animate", label=str(s), args=[[f"k{k}"], STILL]) for k, s in enumerate(steps)]
    controls = dict(
        type="buttons",
        direction="left",
        showactive=False,
        x=0,
        xanchor="left",
        y=1.02,
        yanchor="bottom",
        pad=dict(t=2, b=2, r=2),
        font=dict(size=12),
        buttons=[
            dict(method="animate", label="▶ Play", args=[None, play]),
            dict(method="animate", label="❚❚ Pause", args=[[None], STILL]),
            dict(method="animate", label="⟲ Reset", args=[["k0"], STILL]),
        ],
    )
    menus = [controls] + [_next_run(i, seeds) for i in range(len(seeds))]
    fig.update_layout(
        updatemenus=menus,
        sliders=[slider(label=text, steps=step_buttons, active=len(steps) - 1, y=-0.12)],
        margin=dict(t=56, b=24),
    )
    runs = list(range(len(fig.data)))
    fig.update_yaxes(title_text="gain over π<sub>ref</sub>", row=1, col=1, range=_range(fig, runs, 1, guides[0]))
    fig.update_yaxes(title_text="KL, nats", row=2, col=1, range=_range(fig, runs, 2, guides[1]))
    fig.update_xaxes(title_text="PPO step", row=2, col=1)
    return style(fig, height=720)


def _add_optimum(fig: go.Figure, optimum: dict, reference_reward: float) -> list[float]:
    """pi*_beta of the true reward at the run's KL coefficient (where PPO-GT is headed); its gain and KL."""
    guides = [r(optimum["reward"] - reference_reward), r(optimum["kl"])]
    for row, value in ((1, guides[0]), (2, guides[1])):
        fig.add_hline(y=value, line=dict(color=GUIDE, dash="dot", width=1.5), row=row, col=1)
    return guides


def _range(fig: go.Figure, traces: list[int], row: int, guide: float) -> list[float]:
    """Fixed across frames (an autoranged axis would jump as the run grows), the guide line included."""
    axis = "y" if row == 1 else "y2"
    values = [v for i in traces if fig.data[i].yaxis == axis for v in fig.data[i].y] + [guide]
    low, high = min(values + [0.0]), max(values + [0.0])
    pad = 0.08 * (high - low or 1.0)
    return [r(low - pad), r(high + pad)]


def play_options(frames: int) -> dict:
    """Plotly's animation options for Play: the whole run in about :data:`PLAY_SECONDS`."""
    duration = round(1000 * PLAY_SECONDS / max(1, frames - 1))
    return dict(
        mode="immediate", fromcurrent=True, frame=dict(duration=duration, redraw=False), transition=dict(duration=0)
    )


def _next_run(i: int, seeds: list[str]) -> dict:
    """Run ``i``'s Next run button: it names run ``i`` (the one on screen, by its seed, as the
    legend does) and shows run ``i + 1`` (the last wraps to the first), and that run's button.

    One single-button menu per run, only the shown run's visible: a Plotly button cannot
    change its own arguments, so each run has the button that leads to the next.
    """
    n = len(seeds)
    j = (i + 1) % n
    per_run = len(RUN_LINES)
    visible = [j * per_run <= t < (j + 1) * per_run for t in range(n * per_run)]
    layout = {f"updatemenus[{1 + i}].visible": False, f"updatemenus[{1 + j}].visible": True}
    return dict(
        type="buttons",
        showactive=False,
        visible=i == 0,
        x=0,
        xanchor="left",
        y=-0.36,
        yanchor="top",
        pad=dict(t=2, b=2),
        font=dict(size=12),
        buttons=[
            dict(
                method="update",
                label=f"Seed {seeds[i]} (run {i + 1} of {n}): next run ▸",
                args=[{"visible": visible}, layout],
            )
        ],
    )


# --------------------------------------------------------------------------- diagnostics


def _diagnostic_traces(fig: go.Figure, row: dict, dash: str, visible: bool) -> list[int]:
    """Mean over seeds (with a 95% band) of each logged diagnostic of one PPO setting."""
    per_seed = list(row["diagnostics"].values())
    length = min(len(d) for d in per_seed)
    steps = [per_seed[0][k]["step"] for k in range(length)]
    name = f"{label(row['method'])}, β = {row['kl_coef']:g}" + (" (failed)" if failed(row) else "")
    group = f"{row['method']}{row['kl_coef']}"
    indices = []
    for panel, (key, _) in enumerate(DIAGNOSTICS, start=1):
        ivs = [bounded_interval(key, [d[k][key] for d in per_seed]) for k in range(length)]
        start = len(fig.data)
        for trace in band(steps, ivs, colour(row["method"]), name=name, legendgroup=group):
            fig.add_trace(trace.update(visible=visible), row=panel, col=1)
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=means(ivs),
                mode="lines",
                line=dict(color=colour(row["method"]), width=2, dash=dash),
                name=name,
                legendgroup=group,
                showlegend=panel == 1,
                visible=visible,
                hovertemplate=f"{name}<br>step %{{x}}<br>{key}: %{{y:.4g}}<extra>mean over seeds</extra>",
            ),
            row=panel,
            col=1,
        )
        indices += list(range(start, len(fig.data)))
    return indices


def ppo_diagnostics(world: str, config: str = "cpu") -> go.Figure:
    """PPO's logged diagnostics over training, per KL coefficient; a menu picks PPO or PPO-GT."""
    data = summary(world, config)
    fig = make_subplots(rows=len(DIAGNOSTICS), cols=1, shared_xaxes=True, vertical_spacing=0.035)
    options = []
    for i, method in enumerate((PPO, PPO_GT)):
        rows = sorted((row for row in data[PPO] if row["method"] == method), key=lambda row: row["kl_coef"])
        indices = [t for row, dash in zip(rows, DASHES * 4) for t in _diagnostic_traces(fig, row, dash, i == 0)]
        options.append((f"method: {label(method)}", indices))
    for panel, (_, title) in enumerate(DIAGNOSTICS, start=1):
        fig.update_yaxes(title_text=title, row=panel, col=1, title_font=dict(size=11))
    fig.update_xaxes(title_text="PPO update", row=len(DIAGNOSTICS), col=1)
    fig.update_layout(updatemenus=[menu(options, len(fig.data))], margin=dict(t=48, b=24))
    return style(fig, height=860)


exact_ppo_diagnostics, sentiment_ppo_diagnostics = for_worlds(ppo_diagnostics)


def ppo_table(world: str, config: str = "cpu") -> str:
    """Every PPO setting of a world: its objective at the start and the end, the seeds where it rose."""
    rows = []
    for row in summary(world, config)[PPO]:
        rose = f"{len(row['rose_in_seeds'])} of {len(row['seeds'])}" + (" (failed)" if failed(row) else "")
        rows.append(
            [
                label(row["method"]),
                f"{row['kl_coef']:g}",
                interval_text(row["objective_start"], 3),
                interval_text(row["objective_end"], 3),
                rose,
            ]
        )
    header = ["method", "KL coef. β", "objective at the start", "at the end", "rose in seeds"]
    return html_table(header, rows, name=f"every PPO setting of the {world} world: its objective and whether it rose")


exact_ppo_table, sentiment_ppo_table = for_worlds(ppo_table)
