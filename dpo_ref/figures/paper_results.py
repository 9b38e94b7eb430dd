"""Figures of "Experimental results": what the DPO paper reports, charted from a data file.

The numbers live in ``docs/data/paper_results.yml``, each block with the figure or table
of the paper it comes from; these functions only draw them. Nothing is measured here
(the measured reproductions are the other figures of the page).
"""

from __future__ import annotations

import plotly.graph_objects as go
import yaml

from dpo_ref import paths
from dpo_ref.figures._util import fmt
from dpo_ref.figures.theme import METHOD_COLOURS, METHOD_LABELS, style


def reported(name: str) -> dict:
    """One block of ``docs/data/paper_results.yml``, checked."""
    path = paths.docs_dir() / "data" / "paper_results.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    block = data.get(name) if isinstance(data, dict) else None
    if not isinstance(block, dict) or not {"title", "source", "measure", "axis", "groups"} <= set(block):
        raise ValueError(f"{path}: {name!r} needs title, source, measure, axis and groups")
    for group in block["groups"]:
        if not group.get("values") or not all(m in METHOD_COLOURS for m in group["values"]):
            raise ValueError(f"{path}: {name!r}: every group needs values keyed by method names")
    if "read_from" in block:
        uncertainty = block.get("uncertainty")
        if not isinstance(uncertainty, (int, float)) or not 0 < uncertainty < 1 or not block.get("reading"):
            raise ValueError(
                f"{path}: {name!r} is read from a figure: it needs `reading` and an `uncertainty` between 0 and 1, "
                f"got {uncertainty!r}"
            )
    return block


def _source_note(block: dict) -> str:
    """The chart's own note: where its numbers come from and, for a figure's reading, how precise it is.
    In lines short enough for a phone's width."""
    source = "Source: DPO paper (arXiv 2305.18290),"
    if "read_from" not in block:
        return f"{source}<br>{block['source'].removeprefix('DPO paper, ')}, exact values"
    points = fmt(100 * block["uncertainty"], 1)
    return f"{source}<br>read from {block['read_from']},<br>{block['reading']}: ± {points} points (bars)"


def _win_rate_chart(name: str) -> go.Figure:
    block = reported(name)
    methods = list(dict.fromkeys(m for g in block["groups"] for m in g["values"]))
    read = "read_from" in block
    about = "≈ " if read else ""
    fig = go.Figure()
    for method in methods:
        values = [g["values"].get(method) for g in block["groups"]]
        fig.add_trace(
            go.Bar(
                x=[g["label"] for g in block["groups"]],
                y=values,
                name=METHOD_LABELS[method],
                marker_color=METHOD_COLOURS[method],
                error_y=dict(type="constant", value=block["uncertainty"], width=8) if read else None,
                text=[f"{about}{fmt(100 * v, 0)}%" for v in values],
                textposition="inside",  # at the top of the bar, where no error bar can cross it
                insidetextanchor="end",
                hovertemplate="%{x}: " + about + "%{y:.0%}<extra>" + METHOD_LABELS[method] + "</extra>",
            )
        )
    top = max(v for g in block["groups"] for v in g["values"].values())
    fig.add_annotation(
        text=_source_note(block),
        xref="paper",
        yref="paper",
        x=0,
        y=-0.3,  # below the axis title: the legend holds the top of the figure
        xanchor="left",
        yanchor="top",
        align="left",
        showarrow=False,
        font=dict(size=12),
    )
    fig.update_yaxes(title_text=f"{block['measure']} (paper)", tickformat=".0%", range=[0, min(1.0, top * 1.25)])
    fig.update_xaxes(title_text=block["axis"], type="category")
    # room below for the axis title and the note: at 0.3 of the plot's height under it, the note's last line
    # stays inside the figure (tests/test_figure_layout.py) with up to three lines
    fig.update_layout(barmode="group", bargap=0.35, margin=dict(t=48, b=140))
    return style(fig, height=440)


def summarization() -> go.Figure:
    """TL;DR: DPO's and PPO's GPT-4 win rates at their best temperature (about 61% and 57%)."""
    return _win_rate_chart("summarization")


def summarization_out_of_distribution() -> go.Figure:
    """CNN/DailyMail: the TL;DR-trained models' win rates on news articles, two temperatures."""
    return _win_rate_chart("summarization_out_of_distribution")
