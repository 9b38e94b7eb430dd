"""What every measured figure shares: the summaries, intervals drawn as error bars, envelopes, readable axes.

A measured figure reads one summary (``exact_summary.json`` or ``sentiment_summary.json``,
see :mod:`dpo_ref.experiments.exact_summary` and :mod:`~dpo_ref.experiments.sentiment_summary`)
through :func:`summary`, which fails with one clear message naming the file and the
command that writes it. Every interval in a summary is ``{"mean", "sem", "low", "high",
"n"}``: a 95% Student-t interval over seeds; :func:`error_bars` draws it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape

import plotly.graph_objects as go

from dpo_ref.figures._util import fmt
from dpo_ref.figures.theme import METHOD_COLOURS, METHOD_LABELS, PALETTES
from dpo_ref.methods import DPO, LR_SCALE, METHODS, PPO, PPO_GT, PREFERRED_FT, UNLIKELIHOOD
from dpo_ref.results import load_results

DIGITS = 6  # plotted numbers are rounded, so the figure JSON is stable from build to build
FILES = {"exact": "exact_summary", "sentiment": "sentiment_summary"}
# the keys each figure module reads (under PPO's name: the runs of PPO and PPO-GT); a summary without one is
# from another version
REQUIRED = {
    "exact": (
        "seeds",
        "world",
        "optimal_frontier",
        "methods",
        "failed",
        "matched_kl",
        PPO,
        "recovery",
        "deterministic",
        "online",
        "shift",
        "displacement",
        "overoptimisation",
    ),
    "sentiment": ("seeds", "reference", "methods", "failed", "matched_kl", "win_rates", PPO, "curves", "cost"),
}

# the DPO paper's Figure 2 (left): the methods it sets against each other
PAPER_METHODS = (DPO, PPO, PPO_GT, PREFERRED_FT, UNLIKELIHOOD)


def variant_names(data: dict) -> list[str]:
    """The variants of DPO a summary holds: its methods other than the paper's, in the order of the world's grid."""
    return [name for name in data["methods"] if name not in PAPER_METHODS]


SYMBOLS = {name: method.marker for name, method in METHODS.items()}
# what a grid sweeps when it is not a hyperparameter, as the pages write it
LR_SCALE_NAME = "learning-rate scale"
HIDDEN_PARAMS = ("desirable_weight", "undesirable_weight", "reduction")  # fixed at their paper's values
GUIDE = PALETTES["default"]["fg_lighter"]  # thin reference lines; the dark palette restyles them
KL_TITLE = "KL(π ‖ π<sub>ref</sub>), nats"
EXACT_REWARD_TITLE = "true reward E[r*]"
SENTIMENT_REWARD_TITLE = "VADER reward (−1 to 1)"


# --------------------------------------------------------------------------- reading


def summary(world: str, config: str = "cpu") -> dict:
    """The summary of ``world`` (``"exact"`` or ``"sentiment"``) for ``config``, checked by the loader."""
    return load_results(FILES[world], config=config, require=REQUIRED[world])


def r(value: float) -> float:
    return round(float(value), DIGITS)


def means(intervals: Iterable[dict]) -> list[float]:
    return [r(iv["mean"]) for iv in intervals]


def label(method: str) -> str:
    return METHOD_LABELS[method]


def colour(method: str) -> str:
    return METHOD_COLOURS[method]


def param_name(name: str, method: str) -> str:
    """A hyperparameter of ``method`` as the pages write it, from the registry: ``"beta"`` as ``β`` (IPO's beta
    as its τ); the learning rate's multiple a grid sweeps (:data:`dpo_ref.methods.LR_SCALE`) in words."""
    if name == LR_SCALE:
        return LR_SCALE_NAME
    symbols = {h.name: h.symbol for h in METHODS[method].hyperparameters}
    if name not in symbols:
        raise ValueError(f"{method} has no hyperparameter {name!r} (it takes: {', '.join(symbols) or 'none'})")
    return symbols[name]


def params_text(params: dict, method: str) -> str:
    """``{"beta": 0.5}`` as ``β = 0.5`` (IPO's beta is its τ)."""
    shown = [f"{param_name(k, method)} = {v:g}" for k, v in params.items() if k not in HIDDEN_PARAMS]
    return ", ".join(shown) or "its defaults"


def interval_text(iv: dict, digits: int = 2, scale: float = 1.0) -> str:
    """``0.62 (0.58 to 0.66)``: a mean and its 95% interval, for tables and hover labels."""
    return f"{fmt(scale * iv['mean'], digits)} ({fmt(scale * iv['low'], digits)} to {fmt(scale * iv['high'], digits)})"


# --------------------------------------------------------------------------- intervals and traces


def error_bars(intervals: Sequence[dict], *, floor: float | None = None, scale: float = 1.0) -> dict:
    """Plotly error bars from 95% intervals; ``floor`` clips the low end (a log axis cannot go below 0)."""
    plus = [r(scale * (iv["high"] - iv["mean"])) for iv in intervals]
    minus = [r(scale * (iv["mean"] - (iv["low"] if floor is None else max(iv["low"], floor)))) for iv in intervals]
    return dict(
        type="data", symmetric=False, array=plus, arrayminus=[max(m, 0.0) for m in minus], thickness=1.2, width=3
    )


def band(
    x: Sequence[float],
    intervals: Sequence[dict],
    method_colour: str,
    *,
    name: str,
    legendgroup: str,
    floor: float | None = None,
) -> list[go.Scatter]:
    """A 95% interval as a shaded band: two traces, the low edge and the high edge filled to it;
    ``floor`` clips the low edge (a KL or a probability is never below 0)."""
    fill = transparent(method_colour, 0.18)
    common = dict(
        mode="lines",
        line=dict(width=0, color=method_colour),
        hoverinfo="skip",
        showlegend=False,
        legendgroup=legendgroup,
        name=f"{name}, 95% interval",
    )
    lows = [iv["low"] if floor is None else max(iv["low"], floor) for iv in intervals]
    low = go.Scatter(x=list(x), y=[r(v) for v in lows], **common)
    high = go.Scatter(x=list(x), y=[r(iv["high"]) for iv in intervals], fill="tonexty", fillcolor=fill, **common)
    return [low, high]


def bar_colour(method: str) -> str:
    """A method's colour, half transparent: where many intervals cross, the markers stay readable."""
    return transparent(colour(method), 0.5)


def transparent(hex_colour: str, alpha: float) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def settings_trace(
    rows: Sequence[dict],
    method: str,
    *,
    floor: float | None = None,
    name: str | None = None,
    showlegend: bool = True,
    visible: bool | str = True,
) -> go.Scatter:
    """Every setting of a method at its mean (KL, reward), with its 95% intervals in both directions."""
    return go.Scatter(
        x=means(row["kl"] for row in rows),
        y=means(row["reward"] for row in rows),
        error_x=dict(error_bars([row["kl"] for row in rows], floor=floor), color=bar_colour(method)),
        error_y=dict(error_bars([row["reward"] for row in rows]), color=bar_colour(method)),
        customdata=[
            [params_text(row["params"], method), interval_text(row["kl"]), interval_text(row["reward"], 3)]
            for row in rows
        ],
        mode="markers",
        marker=dict(
            size=10,
            color=colour(method),
            symbol=SYMBOLS[method],
            line=dict(width=1, color=PALETTES["default"]["bg"]),
        ),
        name=name or label(method),
        legendgroup=method,
        showlegend=showlegend,
        visible=visible,
        hovertemplate=(
            f"{label(method)}, %{{customdata[0]}}<br>KL %{{customdata[1]}}<br>"
            "reward %{customdata[2]}<extra>mean and 95% interval</extra>"
        ),
    )


def envelope_trace(
    envelope: Sequence[Sequence[float]],
    method: str,
    *,
    min_kl: float = 0.0,
    visible: bool | str = True,
    dash: str = "solid",
) -> go.Scatter:
    """A method's upper envelope (its best reward at each KL), joined in KL order; points at KL <= min_kl left out."""
    points = [(kl, reward) for kl, reward in envelope if kl > min_kl or (min_kl == 0.0 and kl == 0.0)]
    if any(b[0] < a[0] for a, b in zip(points, points[1:])):
        raise ValueError(f"the envelope of {method} is not in KL order: {points}")
    return go.Scatter(
        x=[r(p[0]) for p in points],
        y=[r(p[1]) for p in points],
        mode="lines",
        line=dict(color=colour(method), width=2.5, dash=dash),
        name=f"{label(method)} envelope",
        legendgroup=method,
        showlegend=False,
        visible=visible,
        hoverinfo="skip",
    )


def optimal_trace(frontier: Sequence[dict], *, min_kl: float = 0.0, max_kl: float = math.inf, **axes) -> go.Scatter:
    """The exact optimal frontier: pi*_beta's reward against its KL, for every beta of the grid, in KL order."""
    front = sorted((p for p in frontier if min_kl < p["kl"] <= max_kl), key=lambda p: p["kl"])
    return go.Scatter(
        x=[r(p["kl"]) for p in front],
        y=[r(p["reward"]) for p in front],
        customdata=[r(p["beta"]) for p in front],
        mode="lines",
        line=dict(color=METHOD_COLOURS["optimal"], width=2, dash="dash"),
        name="optimal frontier π*<sub>β</sub>",
        legendgroup="optimal",
        hovertemplate="π*<sub>β</sub>, β = %{customdata:.3g}<br>KL %{x:.3f}<br>reward %{y:.3f}<extra></extra>",
        **axes,
    )


def reference_line(reward: float, x_range: Sequence[float], *, showlegend: bool = True, **axes) -> go.Scatter:
    """pi_ref's reward as a dotted horizontal line (on a log KL axis its KL of 0 has no place)."""
    return go.Scatter(
        x=[r(x_range[0]), r(x_range[1])],
        y=[r(reward)] * 2,
        mode="lines",
        line=dict(color=METHOD_COLOURS["reference"], width=1.5, dash="dot"),
        name=f"{METHOD_LABELS['reference']} (KL 0)",
        legendgroup="reference",
        showlegend=showlegend,
        hovertemplate="π<sub>ref</sub>: reward %{y:.3f}<extra></extra>",
        **axes,
    )


# --------------------------------------------------------------------------- axes


def log_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """Tick values and their labels for a log axis from ``low`` to ``high``: 1-2-5 per decade (1-3, or
    decades only, when that would be too many; more mantissas when the range is under a decade), every
    label a whole number, never a lone digit."""
    if not (0 < low < high):
        raise ValueError(f"a log axis needs 0 < low < high, got {low}, {high}")
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    candidates = [
        [m * 10.0**e for e in decades for m in mantissas if low <= m * 10.0**e <= high]
        for mantissas in ((1, 2, 5), (1, 3), (1,), (1, 1.5, 2, 3, 4, 5, 6, 8), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8))
    ]
    values = next((c for c in candidates if 3 <= len(c) <= 6), None) or min(
        candidates, key=lambda c: (len(c) < 2, abs(len(c) - 4))
    )
    return [r(v) for v in values], [f"{r(v):g}" for v in values]


def log_axis(low: float, high: float, title: str, *, pad: float = 1.25) -> dict:
    """Layout of a log axis covering ``low`` to ``high`` (with some room), with readable ticks."""
    low, high = low / pad, high * pad
    values, text = log_ticks(low, high)
    return dict(
        type="log",
        range=[r(math.log10(low)), r(math.log10(high))],
        tickvals=values,
        ticktext=text,
        title_text=title,
        minor=dict(showgrid=False, ticks=""),
    )


def kl_axis_limits(values: Iterable[float]) -> tuple[float, float]:
    """The KL range a log axis must show: the smallest and largest positive KL (0 has no place on it)."""
    positive = [v for v in values if v > 0]
    if not positive:
        return 1e-3, 1.0
    return min(positive), max(positive)


def for_worlds(draw):
    """``draw(world, config)`` as one figure function per world (``FIGURES`` names functions, not arguments)."""

    def exact(config: str = "cpu"):
        return draw("exact", config)

    def sentiment(config: str = "cpu"):
        return draw("sentiment", config)

    for function, world in ((exact, "exact"), (sentiment, "sentiment")):
        function.__doc__ = f"{draw.__doc__.splitlines()[0]} ({world} world)"
    return exact, sentiment


# --------------------------------------------------------------------------- menus and tables


def menu(
    options: Sequence[tuple[str, Sequence[int]]], n_traces: int, *, always: Sequence[int] = (), y: float = 1.02
) -> dict:
    """A dropdown that shows one group of traces at a time (``always`` stay shown); the first is active."""
    buttons = [
        dict(method="restyle", label=text, args=[{"visible": [i in shown or i in always for i in range(n_traces)]}])
        for text, shown in options
    ]
    return dict(
        type="dropdown",
        buttons=buttons,
        active=0,
        x=0,
        xanchor="left",
        y=y,
        yanchor="bottom",
        showactive=True,
        pad=dict(t=2, b=2),
    )


def html_table(header: Sequence[str], rows: Iterable[Sequence[str]], *, name: str) -> str:
    """A table in Material's scrolling wrapper (it never widens a phone screen), named for screen readers."""
    head = "".join(f'<th scope="col">{h}</th>' for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<div class="md-typeset__scrollwrap"><div class="md-typeset__table"><table aria-label="{escape(name)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div></div>"
    )


def no_data(fig: go.Figure, text: str) -> go.Figure:
    """Say on the plot why it is empty (every setting failed, say), instead of drawing nothing."""
    fig.add_annotation(
        text=text,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font=dict(size=13, color=PALETTES["default"]["fg_light"]),
    )
    return fig
