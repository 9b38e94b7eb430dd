"""The reward-KL plane in both worlds: every method's envelope and settings, DPO against the rest at matched KL.

Each method is drawn as its settings (the mean reward and KL over seeds of one
hyperparameter value, with 95% intervals both ways) and its upper envelope over its grid,
joined in KL order. PPO settings whose own objective did not rise are not in the
summaries' ``methods`` and so are never drawn here; the pages list them.
"""

from __future__ import annotations

import plotly.graph_objects as go

from dpo_ref.figures.measured.common import (
    EXACT_REWARD_TITLE,
    GUIDE,
    KL_TITLE,
    PAPER_METHODS,
    SENTIMENT_REWARD_TITLE,
    SYMBOLS,
    colour,
    envelope_trace,
    error_bars,
    fmt,
    for_worlds,
    html_table,
    interval_text,
    kl_axis_limits,
    label,
    log_axis,
    means,
    menu,
    no_data,
    optimal_trace,
    params_text,
    r,
    reference_line,
    settings_trace,
    summary,
    variant_names,
)
from dpo_ref.figures.theme import style
from dpo_ref.methods import DPO, IPO, PPO, PPO_GT

REWARD_TITLES = {"exact": f"{EXACT_REWARD_TITLE} (exact)", "sentiment": f"{SENTIMENT_REWARD_TITLE}, test prompts"}
KL_TITLES = {"exact": f"{KL_TITLE} (exact, log scale)", "sentiment": f"{KL_TITLE} (sampled, log scale)"}


def reference_reward(data: dict) -> float:
    """pi_ref's reward: exact in the exact world, the mean over seeds in the sentiment world."""
    return (
        data["world"]["reference_reward"]
        if "reference_reward" in data["world"]
        else data["reference"]["reward"]["mean"]
    )


def _plane(world: str, data: dict, methods: list[str]) -> tuple[go.Figure, float, float]:
    """A figure with the frontier (exact world) and pi_ref's reward; the log KL axis covers ``methods``' settings
    and every trained point of their envelopes (evaluations along training reach nearer pi_ref than any end)."""
    settings = [row["kl"]["mean"] for m in methods for row in data["methods"][m]["settings"]]
    low, high = kl_axis_limits([*settings, *(p[0] for m in methods for p in data["methods"][m]["envelope"])])
    floor, ceiling = low / 1.25, high * 1.25
    fig = go.Figure()
    if world == "exact":
        fig.add_trace(optimal_trace(data["optimal_frontier"], min_kl=floor, max_kl=ceiling))
    fig.add_trace(reference_line(reference_reward(data), (floor, ceiling)))
    fig.update_xaxes(**log_axis(low, high, KL_TITLES[world]))
    fig.update_yaxes(title_text=REWARD_TITLES[world])
    return fig, floor, ceiling


def _add_method(fig: go.Figure, data: dict, method: str, floor: float, visible: bool | str = True) -> list[int]:
    """A method's envelope and settings; returns their trace indices."""
    entry = data["methods"][method]
    start = len(fig.data)
    fig.add_trace(envelope_trace(entry["envelope"], method, min_kl=floor, visible=visible))
    fig.add_trace(settings_trace(entry["settings"], method, floor=floor, visible=visible))
    return list(range(start, len(fig.data)))


def frontier(world: str, config: str = "cpu", *, methods=None, shown=PAPER_METHODS) -> go.Figure:
    """Every method's settings and envelope on the reward-KL plane; the methods not in ``shown`` start hidden."""
    data = summary(world, config)
    drawn = [m for m in (methods or data["methods"]) if m in data["methods"]]
    fig, floor, _ = _plane(world, data, drawn)
    for method in sorted(drawn, key=lambda m: (m not in shown, m)):
        _add_method(fig, data, method, floor, visible=True if method in shown else "legendonly")
    fig.update_layout(margin=dict(t=16, b=24))
    return style(fig, height=540)


exact_frontier, sentiment_frontier = for_worlds(frontier)


# --------------------------------------------------------------------------- variants, like for like


def variants(world: str, config: str = "cpu") -> go.Figure:
    """Each variant's envelope and settings against DPO's, one variant at a time (a menu picks it)."""
    data = summary(world, config)
    drawn = variant_names(data)
    fig, floor, _ = _plane(world, data, [DPO, *drawn])
    always = list(range(len(fig.data))) + _add_method(fig, data, DPO, floor)
    options = []
    for i, method in enumerate(drawn):
        options.append((f"variant: {label(method)}", _add_method(fig, data, method, floor, visible=i == 0)))
    fig.update_layout(updatemenus=[menu(options, len(fig.data), always=always)], margin=dict(t=48, b=24))
    return style(fig, height=520)


exact_variants, sentiment_variants = for_worlds(variants)


def _ipo_note(method: str, row: dict, response_length: int) -> str:
    """IPO's tau is on per-token mean log-ratios (TRL); on answers of L tokens that is a summed tau of tau / L."""
    if method != IPO:
        return ""
    tau = row["params"]["beta"]
    return f" (summed τ = {tau / response_length:.3g})"


def exact_variants_table(config: str = "cpu") -> str:
    """Every setting of DPO and its variants in the exact world: reward, KL, distance below the frontier."""
    data = summary("exact", config)
    length = data["provenance"]["config"]["exact"]["world"]["response_length"]
    rows = []
    for method in (DPO, *variant_names(data)):
        for row in data["methods"].get(method, {}).get("settings", []):
            rows.append(
                [
                    label(method),
                    params_text(row["params"], method) + _ipo_note(method, row, length),
                    interval_text(row["reward"], 3),
                    interval_text(row["kl"], 3),
                    interval_text(row["frontier_gap"], 3),
                ]
            )
    header = ["method", "setting", "true reward", "KL, nats", "below the frontier"]
    return html_table(header, rows, name="DPO and its variants in the exact world, every setting")


def settings_table(world: str, config: str = "cpu") -> str:
    """Every setting of every method: the means over seeds with their 95% intervals."""
    data = summary(world, config)
    rows = []
    for method, entry in data["methods"].items():
        for row in entry["settings"]:
            cells = [
                label(method),
                params_text(row["params"], method),
                interval_text(row["reward"], 3),
                interval_text(row["kl"], 2),
            ]
            if world == "exact":  # KL to pi*_beta only where pi*_beta is the method's target
                target = row.get("kl_to_optimum")
                cells += [interval_text(row["frontier_gap"], 3), interval_text(target, 3) if target else "—"]
            else:
                cells += [interval_text(row["length"], 1)]
            rows.append(cells)
    extra = ["below the frontier", "KL to π*<sub>β</sub>"] if world == "exact" else ["length, tokens"]
    header = ["method", "setting", "reward", "KL, nats", *extra]
    return html_table(header, rows, name=f"every setting of every method, {world} world")


exact_settings_table, sentiment_settings_table = for_worlds(settings_table)


# --------------------------------------------------------------------------- matched KL


def matched_kl(world: str, config: str = "cpu", others=(PPO, PPO_GT)) -> go.Figure:
    """DPO's envelope minus each other method's at the KLs trained policies of both reach, with the 95%
    interval of the paired difference; the dashed line is the mean difference over that range."""
    data = summary(world, config)
    fig = go.Figure()
    missing = []
    for other in others:
        compared = data["matched_kl"].get(other)
        if not compared:
            missing.append(label(other))
            continue
        rows = compared["points"]
        fig.add_trace(
            go.Scatter(
                x=[r(row["kl"]) for row in rows],
                y=means(row["difference"] for row in rows),
                error_y=dict(error_bars([row["difference"] for row in rows]), color=colour(other)),
                customdata=[[interval_text(row["difference"], 3)] for row in rows],
                mode="lines+markers",
                line=dict(color=colour(other), width=2),
                marker=dict(
                    size=10, color=colour(other), symbol=SYMBOLS[other], line=dict(width=2, color=colour(other))
                ),
                name=f"DPO − {label(other)}",
                hovertemplate=f"KL %{{x:.3g}}<br>DPO − {label(other)}: %{{customdata[0]}}<extra>95% interval</extra>",
            )
        )
        mean_difference = compared["mean_difference"]
        fig.add_trace(
            go.Scatter(
                x=[r(compared["low"]), r(compared["high"])],
                y=[mean_difference["mean"]] * 2,
                mode="lines",
                line=dict(color=colour(other), width=1.5, dash="dash"),
                name=f"mean over the range, {compared['verdict']}",
                hovertemplate=f"mean DPO − {label(other)}: {interval_text(mean_difference, 3)}<extra></extra>",
            )
        )
    fig.add_hline(y=0, line=dict(color=GUIDE, width=1.5))
    if not fig.data:
        no_data(fig, "no KL reached by trained policies<br>of DPO and of " + " or ".join(missing))
    fig.update_xaxes(title_text=KL_TITLES[world].replace(", log scale", ""))
    fig.update_yaxes(title_text="DPO − other, reward at the same KL")
    fig.update_layout(margin=dict(t=16, b=24))
    return style(fig, height=420)


def exact_matched_kl(config: str = "cpu") -> go.Figure:
    """The exact world's matched-KL figure (the sentiment world's runs give no KL range in common)."""
    return matched_kl("exact", config)


def matched_kl_table(world: str, config: str = "cpu") -> str:
    """DPO against every other method at matched KL: the KL range trained policies of both reach, and
    DPO's reward minus the other's averaged over it."""
    data = summary(world, config)
    rows = []
    for other, compared in data["matched_kl"].items():
        if compared is None:
            rows.append([label(other), "none", "not compared: no trained policies of both at any common KL"])
            continue
        span = f"{fmt(compared['low'], 3)} to {fmt(compared['high'], 3)}"
        rows.append([label(other), span, f"{interval_text(compared['mean_difference'], 3)}, {compared['verdict']}"])
    return html_table(
        ["DPO against", "KLs both reach, nats", "DPO − other, mean over those KLs"],
        rows,
        name=f"DPO against every method at matched KL, {world} world",
    )


exact_matched_kl_table, sentiment_matched_kl_table = for_worlds(matched_kl_table)
