"""Measured figures of the sentiment world (the DPO paper's IMDb experiment at laptop scale).

Pure functions over ``docs/results/data/<config>/sentiment_*.json`` (schema in
:mod:`dpo_ref.experiments.sentiment`), read with :func:`dpo_ref.results.load_results`
so that a missing or corrupt file fails the build with one clear message. Figures
return Plotly figures; the ``*-numbers`` ids return HTML whose every number is computed
from the same file. Rewards are VADER compound scores in [-1, 1]; KLs are sequence-level,
in nats, estimated from samples; error bars are one standard error. A ``gpu`` file beside
the ``cpu`` one is drawn too (a dropdown picks the configuration).
"""

from __future__ import annotations

import math
from html import escape
from typing import Iterable, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dpo_ref.figures._util import fmt
from dpo_ref.figures.measured_exact import (
    GUIDE, SYMBOLS, colour, config_menu, data_link, html_table, label, load_all, p, r, rs, suffix,
)
from dpo_ref.figures.theme import METHOD_COLOURS, PALETTES, style

PAPER_METHODS = ("dpo", "ppo", "ppo-gt", "preferred-ft", "unlikelihood")  # the paper's Figure 2
VARIANT_METHODS = ("dpo", "ipo", "kto", "orpo", "simpo")
HYPER_NAMES = {"beta": "β", "tau": "τ", "lam": "λ", "alpha": "α", "lr_scale": "learning-rate scale",
               "kl_coef": "KL coefficient"}
REWARD_TITLE = "VADER reward (compound, −1 to 1)"
KL_TITLE = "KL(π ‖ π<sub>ref</sub>), nats (sampled)"
# TRL's logged names, each with one colour of the site's palette
CURVE_COLOURS = {
    "rewards/chosen": METHOD_COLOURS["ipo"],
    "rewards/rejected": METHOD_COLOURS["unlikelihood"],
    "rewards/margins": METHOD_COLOURS["dpo"],
    "rewards/accuracies": METHOD_COLOURS["dpo"],
    "loss": METHOD_COLOURS["sft"],
}


def hyper(name: str, value) -> str:
    return f"{HYPER_NAMES.get(name, name)} = {value:g}" if isinstance(value, (int, float)) else f"{name} = {value}"


def selected_text(selected: dict) -> str:
    return ", ".join(hyper(k, v) for k, v in selected.items())


def provenance_line(name: str, config: str, data: dict) -> str:
    """What was run, from the file's provenance (and the world's sizes where the file has them)."""
    prov = data["provenance"]
    cfg = prov["config"]["sentiment"]
    seeds = ", ".join(f"{k} {v}" for k, v in prov.get("seeds", {}).items())
    commit = (prov.get("git_commit") or "unknown")[:12]
    return (
        f"Run: <code>{escape(prov.get('command', 'dpo-ref reproduce'))}</code> (configuration <code>{escape(config)}</code>); "
        f"sentiment world: a GPT-2 of {cfg['n_layer']} layers, width {cfg['n_embd']}, pretrained on {cfg['n_reviews']} generated "
        f"reviews; {cfg['n_train_prompts']} training prompts × {cfg['samples_per_prompt']} samples labelled by VADER; every method "
        f"{cfg['steps']} updates of batch {cfg['batch_size']} at learning rate {cfg['learning_rate']:g}; evaluation on "
        f"{cfg['n_eval_prompts']} held-out prompts × {cfg['eval_samples_per_prompt']} samples; seeds: {escape(seeds)}; "
        f"device: {escape(str(prov.get('device')))}; commit {escape(commit)}; {escape(str(prov.get('date', ''))[:10])}; "
        f"wall time of the whole sentiment run {prov.get('wall_time_s', 0) / 60:.0f} min. "
        f'Data: <a href="{data_link(name, config)}"><code>{config}/{name}.json</code></a>.'
    )


def notes_html(name: str, loaded, paragraphs: Iterable[str]) -> str:
    parts = list(paragraphs)
    parts += [f'<p class="dpo-caption">{provenance_line(name, config, data)}</p>' for config, data in loaded]
    return "\n".join(parts)


def _prefix(config: str, loaded) -> str:
    return f"<strong>{escape(config)} configuration.</strong> " if len(loaded) > 1 else ""


def _runs(data: dict, method: str) -> list[dict]:
    return sorted((run for run in data["runs"] if run["method"] == method), key=lambda run: run["kl"]["mean"])


# --------------------------------------------------------------------------- frontier


def _method_trace(data: dict, method: str, sfx: str) -> go.Scatter:
    runs = _runs(data, method)
    if not runs:
        raise ValueError(f"no {method} runs in the sentiment results")
    return go.Scatter(
        x=rs(run["kl"]["mean"] for run in runs), y=rs(run["reward"]["mean"] for run in runs),
        error_x=dict(type="data", array=rs(run["kl"]["stderr"] for run in runs), thickness=1, width=0),
        error_y=dict(type="data", array=rs(run["reward"]["stderr"] for run in runs), thickness=1, width=0),
        customdata=[hyper(run["hyperparameter"], run["value"]) for run in runs],
        mode="lines+markers", line=dict(color=colour(method), width=2),
        marker=dict(size=10, color=colour(method), symbol=SYMBOLS.get(method, "circle"),
                    line=dict(width=1, color=PALETTES["default"]["bg"])),
        name=f"{label(method)}{sfx}",
        hovertemplate=f"{label(method)}, %{{customdata}}<br>KL %{{x:.2f}}<br>reward %{{y:.3f}}<extra></extra>",
    )


def _reference_trace(data: dict, sfx: str) -> go.Scatter:
    ref = data["world"]["reference"]
    return go.Scatter(x=[0.0], y=[r(ref["reward"]["mean"])], mode="markers",
                      error_y=dict(type="data", array=[r(ref["reward"]["stderr"])], thickness=1, width=0),
                      marker=dict(size=10, color=METHOD_COLOURS["reference"]), name=f"reference π<sub>ref</sub> (SFT){sfx}",
                      hovertemplate="reference (SFT)<br>reward %{y:.3f}<extra></extra>")


def _frontier(methods: Sequence[str]) -> go.Figure:
    loaded = load_all("sentiment_frontier", require=("world", "runs"))
    fig = go.Figure()
    groups = []
    for config, data in loaded:
        sfx = suffix(config, loaded)
        start = len(fig.data)
        fig.add_trace(_reference_trace(data, sfx))
        for method in methods:
            fig.add_trace(_method_trace(data, method, sfx))
        groups.append((config, list(range(start, len(fig.data)))))
    kl_max = max(run["kl"]["mean"] for _, data in loaded for run in data["runs"] if run["method"] in methods)
    linear = [-0.02 * kl_max, r(kl_max * 1.08)]
    log = [-1.0, r(math.log10(kl_max * 1.5))]
    fig.update_layout(updatemenus=[dict(
        type="buttons", direction="left", showactive=True, active=0, x=1, xanchor="right", y=1.0, yanchor="bottom",
        pad=dict(t=2, b=2), font=dict(size=11),
        buttons=[dict(method="relayout", label="KL axis: linear", args=[{"xaxis.type": "linear", "xaxis.range": linear}]),
                 dict(method="relayout", label="log", args=[{"xaxis.type": "log", "xaxis.range": log}])],
    )])
    config_menu(fig, groups)
    fig.update_xaxes(title_text=KL_TITLE, range=linear)
    fig.update_yaxes(title_text=REWARD_TITLE)
    fig.update_layout(margin=dict(t=48, b=24), legend=dict(y=-0.16))
    return style(fig, height=520)


def sentiment_frontier() -> go.Figure:
    """Reward against KL for DPO, PPO, PPO-GT, Preferred-FT and Unlikelihood (paper Figure 2, left)."""
    return _frontier(PAPER_METHODS)


def _best(data: dict, method: str) -> dict:
    return max(_runs(data, method), key=lambda run: run["reward"]["mean"])


def _matched_summary(data: dict, other: str) -> tuple[int, int, float] | None:
    rows = [row for row in data.get("matched_kl", {}).get(other, []) if row.get("difference") is not None]
    if not rows:
        return None
    ahead = sum(row["difference"] > 0 for row in rows)
    return ahead, len(rows), sum(row["difference"] for row in rows) / len(rows)


def sentiment_frontier_numbers() -> str:
    loaded = load_all("sentiment_frontier", require=("world", "runs", "pairs", "matched_kl"))
    paras = []
    for config, data in loaded:
        ref = data["world"]["reference"]["reward"]["mean"]
        best = sorted((_best(data, m) for m in PAPER_METHODS), key=lambda run: -run["reward"]["mean"])
        pairs = data["pairs"]
        text = (_prefix(config, loaded) + f"The reference (SFT) policy's mean VADER reward is {fmt(ref, 3)}. Best reward of each "
                "method over its four settings: " + "; ".join(
                    f"{label(run['method'])} {fmt(run['reward']['mean'], 3)} ± {fmt(run['reward']['stderr'], 3)} at KL "
                    f"{fmt(run['kl']['mean'], 1)} ({hyper(run['hyperparameter'], run['value'])})" for run in best) + ".")
        paras.append(p(text))
        parts = []
        for other in ("ppo", "ppo-gt"):
            s = _matched_summary(data, other)
            if s:
                ahead, n, mean = s
                parts.append(f"DPO is ahead of {label(other)} at {ahead} of {n} comparable KLs (mean difference DPO − {label(other)} "
                             f"{'+' if mean >= 0 else ''}{fmt(mean, 3)})")
        if parts:
            paras.append(p(
                "At matched KL (each method's reward linearly interpolated between its measured points, π<sub>ref</sub> "
                "counting as the KL-0 point of both): " + "; ".join(parts) + ". The paper reports DPO above both; "
                '<a href="../dpo-vs-rlhf/#reward-at-the-same-kl-sentiment-world">section 8</a> compares them point by point.'
            ))
        paras.append(p(
            f"The preference data: {pairs['n_pairs']} pairs from {pairs['n_prompts']} prompts × {pairs['samples_per_prompt']} "
            f"samples ({pairs['n_dropped'].get('ties', 0)} ties dropped); chosen completions average "
            f"{fmt(pairs['mean_chosen_reward'], 3)} reward, rejected {fmt(pairs['mean_rejected_reward'], 3)}. The reward model "
            f"that PPO uses orders {fmt(100 * data['world']['reward_model_pair_accuracy'], 0)}% of its training pairs correctly. "
            "KL here is estimated from samples and grows large: far from π<sub>ref</sub>, the tiny model's reviews stop "
            "being fluent while VADER still rewards their positive words (hover a point; each run's sample is in the data file)."
        ))
    return notes_html("sentiment_frontier", loaded, paras)


# --------------------------------------------------------------------------- win rates


def sentiment_win_rates(methods: Sequence[str] = PAPER_METHODS + ("ipo", "kto", "orpo", "simpo")) -> go.Figure:
    """Win rate against the reference over sampling temperatures, each method at its best setting."""
    loaded = load_all("sentiment_win_rates", require=("temperatures", "methods"))
    fig = go.Figure()
    groups = []
    for config, data in loaded:
        sfx = suffix(config, loaded)
        start = len(fig.data)
        for method in methods:
            if method not in data["methods"]:
                continue
            entry = data["methods"][method]
            by_t = entry["by_temperature"]
            temps = sorted(by_t, key=float)
            main = method in PAPER_METHODS
            fig.add_trace(go.Scatter(
                x=[float(t) for t in temps], y=rs(100 * by_t[t]["win_rate"] for t in temps),
                error_y=dict(type="data", array=rs(100 * by_t[t]["stderr"] for t in temps), thickness=1, width=3),
                mode="lines+markers", line=dict(color=colour(method), width=3 if main else 2, dash="solid" if main else "dot"),
                marker=dict(size=8 if main else 6, symbol=SYMBOLS.get(method, "circle"), color=colour(method)),
                name=f"{label(method)} ({selected_text(entry['selected'])}){sfx}",
                visible=True if main else "legendonly",
                hovertemplate=f"{label(method)}<br>temperature %{{x}}<br>win rate %{{y:.1f}}%<extra></extra>",
            ))
        groups.append((config, list(range(start, len(fig.data)))))
    config_menu(fig, groups)
    fig.add_hline(y=50, line=dict(color=GUIDE, dash="dot", width=1.5))
    fig.update_xaxes(title_text="sampling temperature", dtick=0.25)
    fig.update_yaxes(title_text="win rate against π<sub>ref</sub>, % (VADER judge)", range=[0, 104])
    fig.update_layout(margin=dict(t=fig.layout.margin.t or 16, b=24), legend=dict(y=-0.18))
    return style(fig, height=500)


def sentiment_win_rates_numbers() -> str:
    loaded = load_all("sentiment_win_rates", require=("temperatures", "methods", "n_prompts"))
    parts = []
    for config, data in loaded:
        rows = []
        for method, entry in data["methods"].items():
            by_t = entry["by_temperature"]
            temps = sorted(by_t, key=float)
            rows.append([label(method), escape(selected_text(entry["selected"]))]
                        + [fmt(100 * by_t[t]["win_rate"], 0) for t in temps])
        temps = sorted(next(iter(data["methods"].values()))["by_temperature"], key=float)
        dpo = data["methods"].get("dpo")
        text = _prefix(config, loaded) + (
            f"Each method at its highest-reward setting against the reference policy sampled at the same temperature, "
            f"one completion each on {data['n_prompts']} held-out prompts, VADER deciding (a tie counts one half). ")
        if dpo:
            w = [dpo["by_temperature"][t]["win_rate"] for t in temps]
            text += (f"DPO wins {fmt(100 * min(w), 0)}–{fmt(100 * max(w), 0)}% at every temperature; the paper's DPO "
                     "(TL;DR, GPT-4 judge) was also the most robust to temperature. ")
        text += ("These are best settings whatever their KL: they rank how positive each method can make the reviews, "
                 "not the reward it buys per nat of KL, which is the frontier's job. The dotted methods are hidden until "
                 "you click them in the legend.")
        parts.append(p(text))
        parts.append(html_table(["method", "setting"] + [f"T = {t}" for t in temps], rows))
    return notes_html("sentiment_win_rates", loaded, parts)


# --------------------------------------------------------------------------- DPO training curves


CURVE_KEYS = ("rewards/chosen", "rewards/rejected", "rewards/margins")


def sentiment_dpo_curves() -> go.Figure:
    """DPO's logged metrics (TRL's names) over training: rewards, accuracy and loss; a menu picks β."""
    loaded = load_all("sentiment_curves", require=("dpo",))
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.5, 0.25, 0.25])
    entries = []
    first = True
    for config, data in loaded:
        for beta in sorted(data["dpo"], key=float):
            curves = data["dpo"][beta]
            steps = curves["step"]
            indices = []
            for key in CURVE_KEYS:
                indices.append(len(fig.data))
                fig.add_trace(go.Scatter(x=steps, y=rs(curves[key]), mode="lines", name=key, visible=first,
                                         line=dict(color=CURVE_COLOURS[key], width=3, dash="dash" if key == "rewards/rejected" else "solid"),
                                         hovertemplate=f"step %{{x}}<br>{key} %{{y:.3f}}<extra></extra>"), row=1, col=1)
            indices.append(len(fig.data))
            fig.add_trace(go.Scatter(x=steps, y=rs(curves["rewards/accuracies"]), mode="lines", name="rewards/accuracies",
                                     visible=first, line=dict(color=CURVE_COLOURS["rewards/accuracies"], width=2, dash="dot"),
                                     hovertemplate="step %{x}<br>rewards/accuracies %{y:.3f}<extra></extra>"), row=2, col=1)
            indices.append(len(fig.data))
            fig.add_trace(go.Scatter(x=steps, y=rs(curves["loss"]), mode="lines", name="loss", visible=first,
                                     line=dict(color=CURVE_COLOURS["loss"], width=2),
                                     hovertemplate="step %{x}<br>loss %{y:.3f}<extra></extra>"), row=3, col=1)
            entries.append((f"β = {float(beta):g}{suffix(config, loaded)}", indices))
            first = False
    n = len(fig.data)
    buttons = [dict(method="restyle", label=f"DPO run: {text}", args=[{"visible": [j in idx for j in range(n)]}])
               for text, idx in entries]
    fig.add_hline(y=0, line=dict(color=GUIDE, width=1), row=1, col=1)
    fig.add_hline(y=r(math.log(2)), line=dict(color=GUIDE, dash="dot", width=1), row=3, col=1,
                  annotation_text="ln 2", annotation_position="top right",
                  annotation_font=dict(color=PALETTES["default"]["fg_light"], size=11))
    fig.update_yaxes(title_text="implicit reward β log π/π<sub>ref</sub>", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", range=[-0.03, 1.03], row=2, col=1)
    fig.update_yaxes(title_text="loss", row=3, col=1)
    fig.update_xaxes(title_text="optimiser step", row=3, col=1)
    fig.update_layout(
        margin=dict(t=56, b=24), legend=dict(y=-0.12),
        updatemenus=[dict(type="dropdown", buttons=buttons, active=0, x=0, xanchor="left",
                          y=1.0, yanchor="bottom", pad=dict(t=2, b=2))],
    )
    return style(fig, height=640)


def sentiment_dpo_curves_numbers() -> str:
    loaded = load_all("sentiment_curves", require=("dpo",))
    front = dict(load_all("sentiment_frontier", require=("world", "runs")))
    paras = []
    for config, data in loaded:
        rows = []
        for beta in sorted(data["dpo"], key=float):
            c = data["dpo"][beta]
            run = next((x for x in front.get(config, {}).get("runs", []) if x["method"] == "dpo"
                        and float(x["value"]) == float(beta)), None)
            rows.append([f"{float(beta):g}", fmt(c["rewards/chosen"][-1], 2), fmt(c["rewards/rejected"][-1], 2),
                         fmt(c["rewards/margins"][-1], 2), fmt(100 * c["rewards/accuracies"][-1], 0) + "%",
                         fmt(c["logps/chosen"][-1] - c["logps/chosen"][0], 1),
                         "—" if run is None else fmt(run["reward"]["mean"], 3)])
        falling = [beta for beta in data["dpo"] if data["dpo"][beta]["rewards/chosen"][-1] < 0]
        faster = [beta for beta in falling if data["dpo"][beta]["rewards/rejected"][-1] < data["dpo"][beta]["rewards/chosen"][-1]]
        c0 = data["dpo"][sorted(data["dpo"], key=float)[0]]
        ref = front.get(config, {}).get("world", {}).get("reference", {}).get("reward", {}).get("mean")
        text = (_prefix(config, loaded) + f"At the first logged step the loss is {fmt(c0['loss'][0], 6)} (ln 2 = 0.693147) "
                f"and every reward is {fmt(c0['rewards/chosen'][0], 3)}: policy and reference are the same model. ")
        if falling:
            text += (f"<strong>The chosen reward goes down</strong> in {len(falling)} of {len(data['dpo'])} runs; in "
                     f"{len(faster)} of them the rejected reward goes down faster, so the margin, which is all the loss "
                     "sees, grows. The policy lowers the probability of both sampled completions and moves that mass to "
                     "other completions")
            text += (f"; the trained policies' VADER reward is far above the reference's {fmt(ref, 3)} (last column). "
                     "A falling chosen reward alone is not a bug." if ref is not None else ". A falling chosen reward alone is not a bug.")
        paras.append(p(text))
        paras.append(html_table(["β", "rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies",
                                 "Δ logps/chosen", "VADER reward after"], rows))
        paras.append(p("Values at the last logged step, on the last training batch (TRL's definitions: "
                       "rewards/chosen is the batch mean of β (log π − log π<sub>ref</sub>) on chosen completions; "
                       "Δ logps/chosen is the change of the summed log-probability of chosen completions since step 1)."))
    return notes_html("sentiment_curves", loaded, paras)


# --------------------------------------------------------------------------- bigger picture


def sentiment_variants() -> go.Figure:
    """DPO, IPO, KTO, ORPO and SimPO on the same pairs and budget, reward against KL."""
    return _frontier(VARIANT_METHODS)


def sentiment_variants_numbers() -> str:
    loaded = load_all("sentiment_frontier", require=("world", "runs"))
    parts = []
    for config, data in loaded:
        cfg = data["provenance"]["config"]["sentiment"]
        rows = []
        for method in VARIANT_METHODS:
            for run in _runs(data, method):
                rows.append([label(method), escape(hyper(run["hyperparameter"], run["value"])),
                             f"{fmt(run['reward']['mean'], 3)} ± {fmt(run['reward']['stderr'], 3)}",
                             f"{fmt(run['kl']['mean'], 1)} ± {fmt(run['kl']['stderr'], 1)}",
                             fmt(run["length"]["mean"], 1), fmt(100 * run["truncated_fraction"], 0) + "%"])
        best = sorted((_best(data, m) for m in VARIANT_METHODS), key=lambda run: -run["reward"]["mean"])
        parts.append(p(
            _prefix(config, loaded) + f"Same {data['pairs']['n_pairs'] if 'pairs' in data else ''} pairs, same optimiser, "
            f"{cfg['steps']} updates of batch {cfg['batch_size']} at learning rate {cfg['learning_rate']:g} for every method, and "
            "four values of each method's main hyperparameter. Best reward reached: "
            + "; ".join(f"{label(run['method'])} {fmt(run['reward']['mean'], 3)} at KL {fmt(run['kl']['mean'], 1)}" for run in best)
            + ". Compare at similar KL, not by reward alone: a run far to the right has moved far from the reference, "
            "where the reviews lose fluency (length and the share of samples cut at the length limit are in the table)."
        ))
        parts.append(html_table(["method", "setting", "reward", "KL, nats", "length, tokens", "cut at limit"], rows))
    return notes_html("sentiment_frontier", loaded, parts)


# --------------------------------------------------------------------------- DPO vs RLHF


COST_ROWS = (  # (key, label, unit formatter, short label for the chart)
    ("models_in_memory", "models in memory", lambda v: f"{v:g}", "models"),
    ("state_bytes", "training state, MB (float32)", lambda v: fmt(v / 1e6, 2), "state, MB"),
    ("training_runs", "training runs", lambda v: f"{v:g}", "runs"),
    ("samples_generated", "samples generated", lambda v: f"{v:g}", "samples"),
    ("wall_time_s", "wall time, s", lambda v: fmt(v, 1), "wall time"),
)


def sentiment_cost() -> go.Figure:
    """What RLHF (reward model + PPO) costs against DPO: each measured quantity, RLHF over DPO."""
    loaded = load_all("sentiment_cost", require=("dpo", "rlhf"))
    fig = go.Figure()
    groups = []
    for config, data in loaded:
        sfx = suffix(config, loaded)
        start = len(fig.data)
        names = [short for _, _, _, short in COST_ROWS]
        fig.add_trace(go.Bar(y=names, x=[1.0] * len(names), orientation="h", name=f"DPO (= 1){sfx}",
                             marker=dict(color=METHOD_COLOURS["dpo"]),
                             customdata=[fn(data["dpo"][key]) for key, _, fn, _ in COST_ROWS],
                             hovertemplate="%{y}<br>DPO: %{customdata}<extra></extra>"))
        fig.add_trace(go.Bar(y=names, x=rs(data["rlhf"][key] / data["dpo"][key] for key, _, _, _ in COST_ROWS), orientation="h",
                             name=f"RLHF: reward model + PPO{sfx}", marker=dict(color=METHOD_COLOURS["ppo"]),
                             customdata=[fn(data["rlhf"][key]) for key, _, fn, _ in COST_ROWS],
                             hovertemplate="%{y}<br>RLHF: %{customdata} (%{x:.2f}× DPO)<extra></extra>"))
        groups.append((config, list(range(start, len(fig.data)))))
    config_menu(fig, groups)
    fig.update_xaxes(title_text="cost relative to DPO (×)", rangemode="tozero")
    fig.update_yaxes(title_text="measured", autorange="reversed")
    fig.update_layout(barmode="group", margin=dict(t=fig.layout.margin.t or 16, b=24), legend=dict(y=-0.2))
    return style(fig, height=460)


def sentiment_cost_numbers() -> str:
    loaded = load_all("sentiment_cost", require=("dpo", "rlhf"))
    parts = []
    for config, data in loaded:
        dpo, rlhf = data["dpo"], data["rlhf"]
        rows = [[name, fn(dpo[key]), fn(rlhf[key]), fmt(rlhf[key] / dpo[key], 2) + "×"] for key, name, fn, _ in COST_ROWS]
        if "peak_cuda_bytes" in data:
            for stage, value in sorted(data["peak_cuda_bytes"].items()):
                rows.append([f"peak GPU memory, {escape(stage)}, MB", fmt(value / 1e6, 1), "", ""])
        shared = data.get("shared_by_both", {})
        text = (_prefix(config, loaded) + f"One training run of each, on the same {shared.get('n_pairs', '')} pairs. RLHF holds "
                f"{fmt(rlhf['models_in_memory'], 0)} models against DPO's {fmt(dpo['models_in_memory'], 0)} "
                f"({escape(rlhf.get('models_in_memory_note', ''))}; DPO: {escape(dpo.get('models_in_memory_note', ''))}), "
                f"needs {fmt(rlhf['training_runs'], 0)} training runs against {fmt(dpo['training_runs'], 0)}, and generates "
                f"{fmt(rlhf['samples_generated'] / dpo['samples_generated'], 2)}× the samples. Memory is "
                f"{escape(data.get('memory_measure', 'the float32 training state'))}. ")
        if "peak_rss_bytes_whole_process" in data:
            text += (f"The whole process peaked at {fmt(data['peak_rss_bytes_whole_process'] / 1e9, 2)} GB resident "
                     "(all methods together, so indicative only). ")
        text += (f"Both start from the same SFT model ({fmt(shared.get('sft_pretrain_wall_time_s', float('nan')), 0)} s) "
                 "and the same sampled pairs, which are not counted above. Wall times of a model this small say little "
                 "about large ones, where generation and the extra models in memory are what make RLHF expensive.")
        parts.append(p(text))
        parts.append(html_table(["", "DPO", "RLHF (RM + PPO)", "RLHF / DPO"], rows))
    return notes_html("sentiment_cost", loaded, parts)


def sentiment_matched_kl() -> go.Figure:
    """DPO minus PPO and DPO minus PPO-GT, reward at matched KL, over KL."""
    loaded = load_all("sentiment_frontier", require=("matched_kl",))
    fig = go.Figure()
    groups = []
    for config, data in loaded:
        sfx = suffix(config, loaded)
        start = len(fig.data)
        for other in ("ppo", "ppo-gt"):
            rows = [row for row in data["matched_kl"].get(other, []) if row.get("difference") is not None]
            fig.add_trace(go.Scatter(
                x=rs(row["kl"] for row in rows), y=rs(row["difference"] for row in rows),
                customdata=[[row["at"], r(row["dpo_reward"]), r(row["other_reward"])] for row in rows],
                mode="lines+markers", line=dict(color=colour(other), width=3),
                marker=dict(size=9, symbol=SYMBOLS[other], color=colour(other)),
                name=f"DPO − {label(other)}{sfx}",
                hovertemplate=(f"measured point: %{{customdata[0]}}<br>KL %{{x:.2f}}<br>DPO %{{customdata[1]:.3f}}, "
                               f"{label(other)} %{{customdata[2]:.3f}}<br>difference %{{y:+.3f}}<extra></extra>"),
            ))
        groups.append((config, list(range(start, len(fig.data)))))
    config_menu(fig, groups)
    fig.add_hline(y=0, line=dict(color=GUIDE, width=1.5, dash="dot"),
                  annotation_text="above: DPO ahead", annotation_position="top left",
                  annotation_font=dict(color=PALETTES["default"]["fg_light"], size=11))
    fig.update_xaxes(title_text=KL_TITLE)
    fig.update_yaxes(title_text="DPO − other, VADER reward at that KL")
    fig.update_layout(margin=dict(t=fig.layout.margin.t or 16, b=24), legend=dict(y=-0.2))
    return style(fig, height=440)


def sentiment_matched_kl_numbers() -> str:
    loaded = load_all("sentiment_frontier", require=("matched_kl",))
    paras = []
    for config, data in loaded:
        parts = []
        for other in ("ppo", "ppo-gt"):
            rows = [row for row in data["matched_kl"].get(other, []) if row.get("difference") is not None]
            if not rows:
                continue
            ahead = sum(row["difference"] > 0 for row in rows)
            lo, hi = min(row["kl"] for row in rows), max(row["kl"] for row in rows)
            parts.append(f"DPO is ahead of {label(other)} at {ahead} of {len(rows)} measured KLs between {fmt(lo, 1)} and "
                         f"{fmt(hi, 1)} nats (differences " + ", ".join(
                             ("+" if row["difference"] >= 0 else "") + fmt(row["difference"], 3) for row in rows) + ")")
        verdicts = []
        for other in ("ppo", "ppo-gt"):
            rows = [row for row in data["matched_kl"].get(other, []) if row.get("difference") is not None]
            if not rows:
                continue
            share = sum(row["difference"] > 0 for row in rows) / len(rows)
            mean = sum(row["difference"] for row in rows) / len(rows)
            verdicts.append(f"ahead of {label(other)} everywhere" if share == 1 else
                            f"behind {label(other)} everywhere" if share == 0 else
                            f"level with {label(other)} (mean difference {'+' if mean >= 0 else ''}{fmt(mean, 3)})"
                            if abs(mean) < 0.05 else
                            f"{'ahead of' if mean > 0 else 'behind'} {label(other)} on average ({'+' if mean >= 0 else ''}{fmt(mean, 3)})")
        paras.append(p(_prefix(config, loaded) + "; ".join(parts) + "."
                       + (f" In the sentiment world, DPO is {' and '.join(verdicts)}." if verdicts else "")))
    return notes_html("sentiment_frontier", loaded, paras)
