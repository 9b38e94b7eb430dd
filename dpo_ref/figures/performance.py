"""Figures of the performance page, drawn from what ``make bench`` wrote to ``benchmarks/results/``.

The benchmark results live beside the benchmarks (they are measurements of this
machine, not results of the experiments), so these figures need a checkout.
"""

from __future__ import annotations

import json

import plotly.graph_objects as go

from dpo_ref import paths
from dpo_ref.errors import MissingFileError
from dpo_ref.figures._util import fmt
from dpo_ref.figures.measured.common import html_table
from dpo_ref.figures.theme import QUANTITY_COLOURS, style

__all__ = ["bench_results", "scaling_ratio", "scaling_table", "step_phases", "summary_table"]

REGIME_LABELS = {"short": "short pairs (prompts ~35 tokens)", "chat": "chat-like pairs (prompts ~150, answers 100-250)"}
REGIME_COLOURS = {"short": QUANTITY_COLOURS["short_pairs"], "chat": QUANTITY_COLOURS["chat_pairs"]}


def bench_results(part: str) -> dict:
    """``benchmarks/results/<part>.json``; a one-line error naming it and ``make bench`` if it is missing."""
    path = paths.require_checkout("the performance page") / "benchmarks" / "results" / f"{part}.json"
    if not path.is_file():
        raise MissingFileError(f"benchmark results {path} are missing; run `make bench` to measure them")
    return json.loads(path.read_text())


def scaling_ratio() -> go.Figure:
    """dpo_ref's tokens/s over TRL's against model size, one line per length regime, with the spread over runs."""
    points = bench_results("scaling")["points"]
    fig = go.Figure()
    for regime in ("short", "chat"):
        rows = sorted((p for p in points if p["point"]["regime"] == regime), key=lambda p: p["point"]["n_params"])
        if not rows:
            continue
        x = [p["point"]["n_params"] / 1e6 for p in rows]
        y = [p["speedup"] for p in rows]
        low = [m - min(p["speedup_runs"]) for m, p in zip(y, rows)]
        high = [max(p["speedup_runs"]) - m for m, p in zip(y, rows)]
        fig.add_trace(
            go.Scatter(
                x=x,
                y=y,
                mode="lines+markers",
                name=REGIME_LABELS[regime],
                line=dict(color=REGIME_COLOURS[regime], width=3),
                marker=dict(size=10),
                error_y=dict(type="data", symmetric=False, array=high, arrayminus=low, thickness=1.5, width=4),
                customdata=[[p["point"]["name"], p["point"]["batch_size"], p["steps"]] for p in rows],
                hovertemplate="%{customdata[0]} parameters, batch %{customdata[1]}, %{customdata[2]} steps"
                "<br>dpo_ref / TRL %{y:.2f}x<extra></extra>",
            )
        )
    fig.add_hline(
        y=1.0, line=dict(width=1, dash="dot"), annotation_text="as fast as TRL", annotation_position="bottom right"
    )
    fig.update_layout(
        xaxis=dict(
            title="model size (million parameters)",
            type="log",
            tickvals=[1, 2, 5, 10, 25],
            ticktext=["1", "2", "5", "10", "25"],
        ),
        yaxis=dict(title="throughput, dpo_ref / TRL", rangemode="tozero"),
        height=420,
    )
    return style(fig)


def step_phases() -> go.Figure:
    """Where a training step's time goes, forward, backward and optimizer, for both trainers, at every size."""
    points = bench_results("scaling")["points"]
    fig = go.Figure()
    names = [f"{p['point']['name']}, {p['point']['regime']}" for p in points]
    phases = (
        ("forward", "forward (the loss)"),
        ("backward_and_rest", "backward and clipping"),
        ("optimizer", "optimizer step"),
    )
    for trainer, offset in (("dpo_ref", "dpo_ref"), ("trl", "TRL")):
        for key, title in phases:
            fig.add_trace(
                go.Bar(
                    x=[f"{n}<br>{offset}" for n in names],
                    y=[100 * p["trainers"][trainer]["phases"][key] for p in points],
                    name=title,
                    legendgroup=key,
                    showlegend=trainer == "dpo_ref",
                    hovertemplate=f"{offset}, %{{x}}<br>{title}: %{{y:.0f}}% of the step<extra></extra>",
                )
            )
    fig.update_layout(
        barmode="stack",
        xaxis=dict(title="model size and kind of pairs, then trainer"),
        yaxis=dict(title="share of the step (%)", range=[0, 100]),
        height=460,
    )
    return style(fig)


def summary_table() -> str:
    """The headline figures of the last ``make bench`` against their goals (``summary.json``)."""
    rows = bench_results("summary")["rows"]
    met = {True: "yes", False: "<strong>no</strong>"}
    # every column named: a data cell under an empty header has none (axe's td-has-header)
    return html_table(
        ["figure", "measured", "goal", "met"],
        [[row["figure"], row["measured"], row.get("goal", ""), met.get(row.get("met"), "")] for row in rows],
        name="headline performance figures against their goals",
    )


def scaling_table() -> str:
    """Every point of the scaling study: both trainers' rates, memory, utilisation, and the losses' agreement."""
    rows = []
    for p in bench_results("scaling")["points"]:
        point, d, trl = p["point"], p["trainers"]["dpo_ref"], p["trainers"]["trl"]
        runs = p["speedup_runs"]
        rows.append(
            [
                f"{point['n_params'] / 1e6:.1f} M",
                point["regime"],
                f"{point['batch_size']} × {point['steps']}",
                f"{d['tokens_per_s']:,.0f}",
                f"{trl['tokens_per_s']:,.0f}",
                f"{fmt(p['speedup'], 2)}× ({fmt(min(runs), 2)} to {fmt(max(runs), 2)})",
                f"{d['peak_rss_bytes'] / 2**20:,.0f} / {trl['peak_rss_bytes'] / 2**20:,.0f}",
                f"{100 * d['mfu']:.0f}% / {100 * trl['mfu']:.0f}%",
                f"{p['max_loss_diff']:.1e}",
            ]
        )
    header = [
        "parameters",
        "pairs",
        "batch × steps",
        "dpo_ref tokens/s",
        "TRL tokens/s",
        "dpo_ref / TRL (range over runs)",
        "peak RSS, MiB (dpo_ref / TRL)",
        "MFU (dpo_ref / TRL)",
        "largest loss difference",
    ]
    return html_table(header, rows, name="dpo_ref against TRL at every model size and length regime")
