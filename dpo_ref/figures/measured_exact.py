"""Measured figures of the exact world, drawn from the committed results of ``dpo-ref reproduce``.

Every function here is pure: it reads ``docs/results/data/<config>/exact_*.json`` through
:func:`dpo_ref.results.load_results` (a missing or corrupt file fails the site build with
one clear message) and returns a Plotly figure, or, for the ``*-numbers`` ids, an HTML
string of sentences and tables whose every number is computed from the same file. No
number shown on a page is typed into Markdown.

The ``cpu`` results are always shown. Where a ``gpu`` results file sits beside them, its
runs are drawn too (a dropdown picks the configuration); without it nothing changes.
Schema of the files: :mod:`dpo_ref.experiments`.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any, Iterable, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dpo_ref.figures._util import fmt
from dpo_ref.figures.theme import METHOD_COLOURS, METHOD_LABELS, PALETTES, QUANTITY_COLOURS, slider, style
from dpo_ref.results import load_results, results_path

CONFIGS = ("cpu", "gpu")  # cpu results are required; gpu results are drawn where they exist
DIGITS = 6  # figure data is rounded like every other site figure, so its JSON is stable

SYMBOLS = {
    "dpo": "circle", "ipo": "diamond", "cdpo": "circle-open", "hinge": "triangle-up", "kto": "square",
    "orpo": "star", "simpo": "triangle-down", "preferred-ft": "x", "unlikelihood": "cross",
    "ppo": "hexagon", "ppo-gt": "pentagon",
}
KL_TITLE = "KL(π ‖ π<sub>ref</sub>), nats"
REWARD_TITLE = "true reward E[r*]"
GUIDE = PALETTES["default"]["fg_lighter"]  # thin reference lines; restyled by the dark palette


# --------------------------------------------------------------------------- shared helpers


def r(value: float) -> float:
    """A number as it is plotted (rounded to ``DIGITS`` decimals)."""
    return round(float(value), DIGITS)


def rs(values: Iterable[float]) -> list[float]:
    return [r(v) for v in values]


def colour(method: str) -> str:
    return METHOD_COLOURS[method]


def label(method: str) -> str:
    return METHOD_LABELS[method]


def load_all(name: str, require: Sequence[str] = ()) -> list[tuple[str, dict[str, Any]]]:
    """``[(config, data), ...]``: the cpu file (required), then the gpu file if it exists."""
    found = []
    for config in CONFIGS:
        if config == "cpu" or results_path(name, config=config).exists():
            found.append((config, load_results(name, config=config, require=require)))
    return found


def config_menu(fig: go.Figure, groups: list[tuple[str, list[int]]], *, y: float = 1.0) -> None:
    """A dropdown that shows one configuration's traces at a time (only when there are several)."""
    if len(groups) < 2:
        return
    n = len(fig.data)
    buttons = []
    for name, indices in groups:
        visible = [False] * n
        for i in indices:
            visible[i] = True
        buttons.append(dict(method="restyle", label=f"results: {name} configuration", args=[{"visible": visible}]))
    for _, indices in groups[1:]:
        for i in indices:
            fig.data[i].visible = False
    menus = list(fig.layout.updatemenus or ())
    menus.append(dict(type="dropdown", buttons=buttons, active=0, x=0, xanchor="left", y=y, yanchor="bottom",
                      showactive=True, pad=dict(t=2, b=2)))
    fig.update_layout(updatemenus=menus, margin=dict(t=56))


def suffix(config: str, configs: list) -> str:
    """Legend-name suffix that tells configurations apart, only when several are drawn."""
    return f" ({config})" if len(configs) > 1 else ""


def data_link(name: str, config: str) -> str:
    """Relative link from a top-level page (``/page/``) to a results file copied into the site."""
    return f"../results/data/{config}/{name}.json"


def p(text: str) -> str:
    return f"<p>{text}</p>"


def html_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A small table in Material's scrolling wrapper (it never widens a phone screen)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return ('<div class="md-typeset__scrollwrap"><div class="md-typeset__table"><table>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div></div>")


def provenance_line(name: str, config: str, data: dict) -> str:
    """What was run, read from the file's provenance: config, model, seeds, device, commit, date."""
    prov = data["provenance"]
    exact = prov["config"]["exact"]
    world = exact["world"]
    seeds = prov.get("seeds", {})
    seed_text = ", ".join(f"{k} {v}" for k, v in seeds.items())
    commit = (prov.get("git_commit") or "unknown")[:12]
    return (
        f"Run: <code>{escape(prov.get('command', 'dpo-ref reproduce'))}</code> (configuration <code>{escape(config)}</code>); "
        f"exact world of {world['n_prompts']} prompts × {world['vocab_size']}<sup>{world['response_length']}</sup> responses; "
        f"reference policy a GPT-2 of {world['n_layer']} layers, width {world['n_embd']}; "
        f"{exact['n_pairs']} preference pairs; seeds: {escape(seed_text)}; "
        f"device: {escape(str(prov.get('device')))}; commit {escape(commit)}; {escape(str(prov.get('date', ''))[:10])}; "
        f'wall time of the whole exact-world group {prov.get("wall_time_s", 0) / 60:.0f} min. '
        f'Data: <a href="{data_link(name, config)}"><code>{config}/{name}.json</code></a>.'
    )


def notes_html(name: str, loaded: list[tuple[str, dict]], paragraphs: Iterable[str]) -> str:
    parts = list(paragraphs)
    parts += [f'<p class="dpo-caption">{provenance_line(name, config, data)}</p>' for config, data in loaded]
    return "\n".join(parts)


def frontier_trace(data: dict, name_suffix: str = "") -> go.Scatter:
    front = sorted(data["optimal_frontier"], key=lambda row: row["kl"])
    return go.Scatter(
        x=rs(row["kl"] for row in front), y=rs(row["reward"] for row in front),
        customdata=rs(row["beta"] for row in front), mode="lines",
        line=dict(color=METHOD_COLOURS["optimal"], width=2, dash="dash"),
        name=f"optimal frontier π*<sub>β</sub>{name_suffix}",
        hovertemplate="π*<sub>β</sub>, β = %{customdata:.3g}<br>KL %{x:.3f}<br>reward %{y:.3f}<extra></extra>",
    )


def reference_trace(data: dict, name_suffix: str = "") -> go.Scatter:
    return go.Scatter(
        x=[0.0], y=[r(data["world"]["reference_reward"])], mode="markers",
        marker=dict(size=10, color=METHOD_COLOURS["reference"], symbol="circle"),
        name=f"{METHOD_LABELS['reference']}{name_suffix}",
        hovertemplate="reference π<sub>ref</sub><br>KL 0<br>reward %{y:.3f}<extra></extra>",
    )


PARAM_NAMES = {"beta": "β", "gamma": "γ", "lam": "λ", "alpha": "α", "label_smoothing": "label smoothing",
               "kl_coef": "β", "desirable_weight": "λ<sub>D</sub>", "undesirable_weight": "λ<sub>U</sub>"}


def _params_text(params: dict) -> str:
    return ", ".join(f"{PARAM_NAMES.get(k, k)} = {v:g}" if isinstance(v, (int, float)) else f"{PARAM_NAMES.get(k, k)} = {v}"
                     for k, v in params.items() if k != "reduction") or "defaults"


def method_trace(points: list[dict], method: str, name_suffix: str = "", *, connect: bool | None = None) -> go.Scatter:
    """The final (KL, reward) of every run of ``method`` (sorted by KL; joined when there are several)."""
    runs = sorted((pt for pt in points if pt["method"] == method), key=lambda pt: pt["final"]["kl"])
    if not runs:
        raise ValueError(f"no {method} runs in the results")
    joined = len(runs) > 1 if connect is None else connect
    return go.Scatter(
        x=rs(pt["final"]["kl"] for pt in runs), y=rs(pt["final"]["reward"] for pt in runs),
        customdata=[[_params_text(pt["params"]), r(pt.get("frontier_gap", float("nan")))] for pt in runs],
        mode="lines+markers" if joined else "markers",
        line=dict(color=colour(method), width=2),
        marker=dict(size=11, color=colour(method), symbol=SYMBOLS.get(method, "circle"),
                    line=dict(width=1, color=PALETTES["default"]["bg"])),
        name=f"{label(method)}{name_suffix}",
        hovertemplate=(f"{label(method)}, %{{customdata[0]}}<br>KL %{{x:.3f}}<br>reward %{{y:.3f}}"
                       "<br>below the frontier by %{customdata[1]:.3f}<extra></extra>"),
    )


def frontier_figure(name: str, methods: Sequence[str]) -> go.Figure:
    """Reward against KL: the exact optimal frontier, the reference and the final point of each run."""
    loaded = load_all(name, require=("world", "optimal_frontier", "points"))
    fig = go.Figure()
    groups = []
    for config, data in loaded:
        sfx = suffix(config, loaded)
        start = len(fig.data)
        fig.add_trace(frontier_trace(data, sfx))
        fig.add_trace(reference_trace(data, sfx))
        for method in methods:
            fig.add_trace(method_trace(data["points"], method, sfx))
        groups.append((config, list(range(start, len(fig.data)))))
    kl_max = max(pt["final"]["kl"] for _, data in loaded for pt in data["points"] if pt["method"] in methods)
    linear = [-0.1, r(kl_max * 1.15)]
    log = [-2.0, r(math.log10(kl_max * 1.5))]
    fig.update_layout(updatemenus=[dict(
        type="buttons", direction="left", showactive=True, active=0, x=1, xanchor="right", y=1.0, yanchor="bottom",
        pad=dict(t=2, b=2), font=dict(size=11),
        buttons=[dict(method="relayout", label="KL axis: linear", args=[{"xaxis.type": "linear", "xaxis.range": linear}]),
                 dict(method="relayout", label="log", args=[{"xaxis.type": "log", "xaxis.range": log}])],
    )])
    config_menu(fig, groups)
    fig.update_xaxes(title_text=f"{KL_TITLE} (exact)", range=linear)
    fig.update_yaxes(title_text=f"{REWARD_TITLE} (exact)")
    fig.update_layout(margin=dict(t=48, b=24), legend=dict(y=-0.16))
    return style(fig, height=540)


def _runs(points: list[dict], method: str) -> list[dict]:
    return [pt for pt in points if pt["method"] == method]


# --------------------------------------------------------------------------- PPO page


PPO_QUANTITIES = (  # (trajectory key, legend name, colour, dash, row)
    ("reward", "true reward E[r*]", QUANTITY_COLOURS["true_reward"], "solid", 1),
    ("score", "learned reward's score E[r<sub>φ</sub>]", QUANTITY_COLOURS["proxy_reward"], "dash", 1),
    ("kl", "KL(π ‖ π<sub>ref</sub>)", METHOD_COLOURS["ppo"], "solid", 2),
)


def _run_label(run: dict) -> str:
    kind = "learned reward" if run["method"] == "ppo" else "true reward"
    return f"{label(run['method'])} ({kind}), seed {run['params'].get('seed', 0)}"


def ppo_runs() -> go.Figure:
    """Real PPO runs over training: true reward, the reward model's score and KL; Play/Pause, pick a run."""
    loaded = load_all("exact_ppo", require=("runs", "optimal_at_beta", "beta"))
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.07, row_heights=[0.62, 0.38])
    runs = [(config, run) for config, data in loaded for run in data["runs"]]
    traj_traces: list[tuple[int, list[dict], str]] = []  # (trace index, trajectory, key)
    entries = []
    for i, (config, run) in enumerate(runs):
        traj = run["trajectory"]
        indices = []
        for key, name, col, dash, row in PPO_QUANTITIES:
            indices.append(len(fig.data))
            traj_traces.append((len(fig.data), traj, key))
            fig.add_trace(go.Scatter(
                x=[row_["step"] for row_ in traj], y=rs(row_[key] for row_ in traj), mode="lines+markers",
                line=dict(color=col, width=3, dash=dash), marker=dict(size=5, color=col), name=name,
                visible=i == 0, legendgroup=key,
                hovertemplate=f"step %{{x}}<br>{name}: %{{y:.3f}}<extra></extra>",
            ), row=row, col=1)
        entries.append((f"{_run_label(run)}{suffix(config, loaded)}", indices))

    # the exact optimum of objective (3) at this beta, for the true reward: what PPO-GT aims at
    first = loaded[0][1]
    opt = first["optimal_at_beta"]
    fig.add_hline(y=r(opt["reward"]), line=dict(color=GUIDE, dash="dot", width=1.5), row=1, col=1,
                  annotation_text=f"optimum π*<sub>β</sub>: {fmt(opt['reward'], 2)}",
                  annotation_position="top left", annotation_font=dict(color=PALETTES["default"]["fg_light"], size=11))
    fig.add_hline(y=r(opt["kl"]), line=dict(color=GUIDE, dash="dot", width=1.5), row=2, col=1,
                  annotation_text=f"π*<sub>β</sub>: {fmt(opt['kl'], 2)}", annotation_position="top left",
                  annotation_font=dict(color=PALETTES["default"]["fg_light"], size=11))

    # animation: frame k shows every run up to its k-th evaluation
    n_frames = max(len(traj) for _, traj, _ in traj_traces)
    steps = [row_["step"] for row_ in max((run["trajectory"] for _, run in runs), key=len)]
    frames = []
    for k in range(n_frames):
        data = []
        for _, traj, key in traj_traces:
            part = traj[: k + 1]
            data.append(go.Scatter(x=[row_["step"] for row_ in part], y=rs(row_[key] for row_ in part)))
        frames.append(go.Frame(name=str(steps[k]), data=data, traces=[i for i, _, _ in traj_traces]))
    fig.frames = frames
    still = dict(mode="immediate", frame=dict(duration=0, redraw=False), transition=dict(duration=0))
    play = dict(mode="immediate", fromcurrent=True, frame=dict(duration=350, redraw=False), transition=dict(duration=0))
    slider_steps = [dict(method="animate", label=str(s), args=[[str(s)], still]) for s in steps]
    anim_slider = slider(label="training step", steps=slider_steps, active=len(steps) - 1, y=-0.4)

    n = len(fig.data)
    run_buttons = []
    for text, indices in entries:
        visible = [j in indices for j in range(n)]
        run_buttons.append(dict(method="restyle", label=f"run: {text}", args=[{"visible": visible}]))
    xmax = max(steps)
    fig.update_xaxes(range=[-xmax * 0.02, xmax * 1.02])
    fig.update_xaxes(title_text="PPO step", row=2, col=1)
    fig.update_yaxes(title_text="expected reward (exact)", row=1, col=1)
    fig.update_yaxes(title_text="KL, nats", row=2, col=1, rangemode="tozero")
    fig.update_layout(
        margin=dict(t=56, b=24),
        legend=dict(y=-0.1),
        sliders=[anim_slider],
        updatemenus=[
            dict(type="dropdown", buttons=run_buttons, active=0, x=0, xanchor="left", y=1.0, yanchor="bottom",
                 pad=dict(t=2, b=2)),
            dict(type="buttons", direction="left", showactive=False, x=0, xanchor="left", y=-0.31, yanchor="top",
                 pad=dict(t=8, r=4),
                 buttons=[dict(method="animate", label="▶ Play", args=[None, play]),
                          dict(method="animate", label="❚❚ Pause", args=[[None], still])]),
        ],
    )
    return style(fig, height=720)


def _slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` against ``xs``."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0


def ppo_hacking(run: dict) -> dict:
    """Over the second half of training: slopes of true reward and score (per 100 steps), and the verdict.

    Reward hacking, as the page uses the words: the learned score still rises while the
    true reward falls, over the second half of the run.
    """
    traj = run["trajectory"]
    half = traj[len(traj) // 2:]
    steps = [row["step"] / 100 for row in half]
    reward_slope = _slope(steps, [row["reward"] for row in half])
    score_slope = _slope(steps, [row["score"] for row in half])
    return {"reward_slope": reward_slope, "score_slope": score_slope,
            "hacking": score_slope > 0 and reward_slope < 0, "from_step": half[0]["step"]}


def _span(values: Sequence[float], digits: int = 2) -> str:
    lo, hi = min(values), max(values)
    if fmt(lo, digits) == fmt(hi, digits):
        return fmt(lo, digits)
    return f"{fmt(lo, digits)}–{fmt(hi, digits)}" if lo >= 0 else f"{fmt(lo, digits)} to {fmt(hi, digits)}"


def ppo_runs_numbers() -> str:
    """The PPO page's headline: is there reward hacking in these runs, and how far the score is off."""
    loaded = load_all("exact_ppo", require=("runs", "optimal_at_beta", "beta"))
    paras = []
    for config, data in loaded:
        ppo = [run for run in data["runs"] if run["method"] == "ppo"]
        gt = [run for run in data["runs"] if run["method"] == "ppo-gt"]
        checks = [ppo_hacking(run) for run in ppo]
        hacked = [run["params"].get("seed", 0) for run, c in zip(ppo, checks) if c["hacking"]]
        start = ppo[0]["trajectory"][0]
        score_end = [run["final"]["score"] for run in ppo]
        reward_end = [run["final"]["reward"] for run in ppo]
        score_gain = [run["final"]["score"] - run["trajectory"][0]["score"] for run in ppo]
        reward_gain = [run["final"]["reward"] - run["trajectory"][0]["reward"] for run in ppo]
        kl_end = [run["final"]["kl"] for run in ppo]
        opt = data["optimal_at_beta"]
        prefix = f"<strong>{escape(config)} configuration.</strong> " if len(loaded) > 1 else ""
        if hacked:
            verdict = (f"In {len(hacked)} of {len(ppo)} PPO runs (seed {', '.join(map(str, hacked))}) the learned "
                       f"reward's score keeps rising over the second half of training (from step {checks[0]['from_step']}) "
                       "while the true reward falls: reward hacking, measured.")
        else:
            verdict = (f"<strong>No reward hacking in these runs.</strong> In none of the {len(ppo)} PPO runs does the learned "
                       f"reward's score keep rising while the true reward falls (least-squares trend over the second "
                       f"half, from step {checks[0]['from_step']}: true reward {_span([c['reward_slope'] for c in checks], 3)}, "
                       f"score {_span([c['score_slope'] for c in checks], 3)} per 100 steps). The two rise and dip together; "
                       f"the policies stay within {fmt(max(row['kl'] for run in ppo for row in run['trajectory']), 2)} nats of the reference, "
                       "near the answers the reward model was trained on.")
        paras.append(p(prefix + verdict))
        paras.append(p(
            ("What the data does show is a reward model that <strong>overestimates</strong>"
             if all(s_ > t_ for s_, t_ in zip(score_end, reward_end)) else "Score against true reward")
            + f": after {ppo[0]['final']['step']} "
            f"steps at β = {fmt(data['beta'], 2)} it scores the PPO policies {_span(score_end)} while their true reward "
            f"is {_span(reward_end)}. Part of that gap is already there at step 0: a Bradley-Terry reward is only defined up "
            f"to a constant, and this one scores the reference {fmt(start['score'], 2)} against a true "
            f"{fmt(start['reward'], 2)}. Measured from step 0, the score gained {_span(score_gain)} and the true reward "
            f"{_span(reward_gain)}. The best reachable at this β (the exact optimum π*<sub>β</sub> of objective (3) "
            f"for the true reward) is a reward of {fmt(opt['reward'], 2)} at KL {fmt(opt['kl'], 2)}; PPO ends at KL "
            f"{_span(kl_end)}"
            + (f", and PPO-GT, trained on the true reward, at reward {_span([g['final']['reward'] for g in gt])}." if gt else ".")
        ))
    return notes_html("exact_ppo", loaded, paras)


# --------------------------------------------------------------------------- experimental results


PAPER_METHODS = ("dpo", "ppo", "ppo-gt", "ipo", "preferred-ft", "unlikelihood")
VARIANT_METHODS = ("dpo", "ipo", "cdpo", "hinge", "kto", "orpo", "simpo")


def exact_frontier() -> go.Figure:
    """The paper's Figure 2 (left) in the exact world: every method against the exact optimal frontier."""
    return frontier_figure("exact_frontier", PAPER_METHODS)


def _matched_rows(data: dict, method: str) -> list[dict]:
    return [row for row in data["matched_kl"] if row["method"] == method and row["dpo_reward_at_kl"] is not None]


def _signed(value: float, digits: int = 2) -> str:
    text = fmt(value, digits)
    return text if text.startswith("−") or float(value) == 0 else "+" + text


def exact_frontier_numbers() -> str:
    """Headline numbers of the exact-world frontier, computed from exact_frontier.json."""
    loaded = load_all("exact_frontier", require=("world", "optimal_frontier", "points", "matched_kl", "reward_model"))
    paras = []
    for config, data in loaded:
        ppo = _matched_rows(data, "ppo")
        gt = _matched_rows(data, "ppo-gt")
        d_ppo = [row["reward"] - row["dpo_reward_at_kl"] for row in ppo]
        d_gt = [row["reward"] - row["dpo_reward_at_kl"] for row in gt]
        rm = data["reward_model"]
        gaps = {m: [pt["frontier_gap"] for pt in _runs(data["points"], m)] for m in PAPER_METHODS}
        prefix = f"<strong>{escape(config)} configuration.</strong> " if len(loaded) > 1 else ""
        if max(abs(v) for v in d_ppo) < 0.1:
            ppo_verdict = "PPO with the learned reward and DPO are about tied"
        elif all(v > 0 for v in d_ppo):
            ppo_verdict = "PPO with the learned reward is above DPO"
        elif all(v < 0 for v in d_ppo):
            ppo_verdict = "PPO with the learned reward is below DPO"
        else:
            ppo_verdict = "PPO with the learned reward and DPO trade places"
        gt_verdict = ("PPO-GT, trained on the true reward, is above DPO" if all(v > 0 for v in d_gt)
                      else "PPO-GT, trained on the true reward, is below DPO" if all(v < 0 for v in d_gt)
                      else "PPO-GT, trained on the true reward, and DPO trade places")
        paras.append(p(
            prefix + f"At matched KL (DPO's reward interpolated between its β points to the KL each PPO run reached), "
            f"<strong>{ppo_verdict}</strong>: PPO minus DPO is "
            f"{', '.join(_signed(v) for v in d_ppo)} at KL {', '.join(fmt(row['kl'], 2) for row in ppo)}. "
            f"<strong>{gt_verdict}</strong>: PPO-GT minus DPO is "
            f"{', '.join(_signed(v) for v in d_gt)} at KL {', '.join(fmt(row['kl'], 2) for row in gt)}."
        ))
        if all(v > 0 for v in d_gt):
            paras.append(p(
                "That differs from the paper, where DPO's frontier lies above PPO-GT's. The likely reason is the size of this "
                f"world: responses are {data['provenance']['config']['exact']['world']['response_length']} tokens long, so PPO's optimisation problem is easy and PPO-GT, which sees r* "
                f"itself, lands {_span(gaps['ppo-gt'])} below the exact frontier. DPO and the learned reward model both see "
                f"only {data['provenance']['config']['exact']['n_pairs']} pairs labelled by a noisy Bradley-Terry draw "
                f"(the reward model ranks pairs sampled from π<sub>ref</sub> correctly {fmt(100 * rm['pair_accuracy_under_reference'], 0)}% "
                f"of the time; its score correlates {fmt(rm['correlation_with_true_reward'], 2)} with r*), and they end "
                f"{_span(gaps['dpo'])} (DPO) and {_span(gaps['ppo'])} (PPO) below it. The paper's PPO-GT had to optimise "
                "a large language model with RL, where PPO's own difficulties cost more than the data does here."
            ))
    return notes_html("exact_frontier", loaded, paras)


# --------------------------------------------------------------------------- DPO vs RLHF


def matched_kl() -> go.Figure:
    """True reward at matched KL: each PPO / PPO-GT run, DPO interpolated to its KL, and the exact optimum."""
    loaded = load_all("exact_frontier", require=("matched_kl",))
    fig = go.Figure()
    groups = []
    for config, data in loaded:
        sfx = suffix(config, loaded)
        rows = [row for row in data["matched_kl"] if row["dpo_reward_at_kl"] is not None]
        cats = [f"{label(row['method'])}<br>β {fmt(row['kl_coef'], 1)}" for row in rows]
        start = len(fig.data)
        fig.add_trace(go.Bar(x=cats, y=rs(row["reward"] for row in rows), name=f"PPO / PPO-GT run{sfx}",
                             marker=dict(color=[colour(row["method"]) for row in rows]),
                             customdata=rs(row["kl"] for row in rows),
                             hovertemplate="%{x}<br>KL %{customdata:.3f}<br>measured reward %{y:.3f}<extra></extra>"))
        fig.add_trace(go.Bar(x=cats, y=rs(row["dpo_reward_at_kl"] for row in rows), name=f"DPO at the same KL{sfx}",
                             marker=dict(color=METHOD_COLOURS["dpo"]),
                             hovertemplate="%{x}<br>DPO, interpolated: %{y:.3f}<extra></extra>"))
        fig.add_trace(go.Bar(x=cats, y=rs(row["optimal_reward_at_kl"] for row in rows), name=f"optimum at the same KL{sfx}",
                             marker=dict(color=METHOD_COLOURS["optimal"], pattern=dict(shape="/")),
                             hovertemplate="%{x}<br>exact optimum: %{y:.3f}<extra></extra>"))
        groups.append((config, list(range(start, len(fig.data)))))
    config_menu(fig, groups)
    fig.update_xaxes(title_text="run: method, KL coefficient β", tickfont=dict(size=10), tickangle=0)
    fig.update_yaxes(title_text=f"{REWARD_TITLE} at that KL")
    fig.update_layout(barmode="group", margin=dict(t=fig.layout.margin.t or 16, b=24), legend=dict(y=-0.22))
    return style(fig, height=500)


# --------------------------------------------------------------------------- key insight: recovery


def dpo_recovery() -> go.Figure:
    """KL(π_DPO ‖ π*_β): against β (with the reference's), and against the number of pairs at one β."""
    loaded = load_all("exact_recovery", require=("beta", "per_beta", "per_n_pairs", "reference_kl_to_optimum"))
    fig = make_subplots(rows=2, cols=1, vertical_spacing=0.2)
    groups = []
    for config, data in loaded:
        sfx = suffix(config, loaded)
        start = len(fig.data)
        per_beta = sorted(data["per_beta"], key=lambda row: row["beta"])
        betas = rs(row["beta"] for row in per_beta)
        fig.add_trace(go.Scatter(x=betas, y=rs(row["kl_to_optimum"] for row in per_beta), mode="lines+markers",
                                 line=dict(color=METHOD_COLOURS["dpo"], width=3), marker=dict(size=9),
                                 name=f"DPO-trained policy{sfx}",
                                 hovertemplate="β = %{x}<br>KL(π<sub>DPO</sub> ‖ π*<sub>β</sub>) = %{y:.4f}<extra></extra>"),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=betas, y=rs(row["reference_kl_to_optimum"] for row in per_beta), mode="lines+markers",
                                 line=dict(color=METHOD_COLOURS["reference"], width=2, dash="dash"), marker=dict(size=7),
                                 name=f"reference π<sub>ref</sub> (where training starts){sfx}",
                                 hovertemplate="β = %{x}<br>KL(π<sub>ref</sub> ‖ π*<sub>β</sub>) = %{y:.4f}<extra></extra>"),
                      row=1, col=1)
        per_n = sorted(data["per_n_pairs"], key=lambda row: row["n_pairs"])
        ns = [row["n_pairs"] for row in per_n]
        fig.add_trace(go.Scatter(x=ns, y=rs(row["kl_to_optimum"] for row in per_n), mode="lines+markers",
                                 line=dict(color=METHOD_COLOURS["dpo"], width=3), marker=dict(size=9, symbol="square"),
                                 name=f"DPO at β = {fmt(data['beta'], 2)}, by number of pairs{sfx}",
                                 hovertemplate="%{x} pairs<br>KL(π<sub>DPO</sub> ‖ π*<sub>β</sub>) = %{y:.4f}<extra></extra>"),
                      row=2, col=1)
        fig.add_trace(go.Scatter(x=[ns[0], ns[-1]], y=[r(data["reference_kl_to_optimum"])] * 2, mode="lines",
                                 line=dict(color=METHOD_COLOURS["reference"], width=2, dash="dash"),
                                 name=f"reference at β = {fmt(data['beta'], 2)}{sfx}", showlegend=False,
                                 hovertemplate="KL(π<sub>ref</sub> ‖ π*<sub>β</sub>) = %{y:.4f}<extra></extra>"),
                      row=2, col=1)
        groups.append((config, list(range(start, len(fig.data)))))
    config_menu(fig, groups)
    beta = loaded[0][1]["beta"]
    fig.update_xaxes(type="log", title_text="β (log scale)", row=1, col=1)
    fig.update_yaxes(type="log", title_text="KL to π*<sub>β</sub>, nats", row=1, col=1)
    fig.update_xaxes(type="log", title_text=f"preference pairs (log scale), β = {fmt(beta, 2)}", row=2, col=1)
    fig.update_yaxes(title_text="KL to π*<sub>β</sub>, nats", rangemode="tozero", row=2, col=1)
    fig.update_layout(margin=dict(t=fig.layout.margin.t or 16, b=24), legend=dict(y=-0.14))
    return style(fig, height=620)


def dpo_recovery_numbers() -> str:
    loaded = load_all("exact_recovery", require=("beta", "per_beta", "per_n_pairs", "reference_kl_to_optimum"))
    paras = []
    for config, data in loaded:
        per_beta = sorted(data["per_beta"], key=lambda row: row["beta"])
        closer = [row for row in per_beta if row["kl_to_optimum"] < row["reference_kl_to_optimum"]]
        farther = [row for row in per_beta if row["kl_to_optimum"] >= row["reference_kl_to_optimum"]]
        at = next((row for row in per_beta if row["beta"] == data["beta"]), per_beta[len(per_beta) // 2])
        per_n = sorted(data["per_n_pairs"], key=lambda row: row["n_pairs"])
        prefix = f"<strong>{escape(config)} configuration.</strong> " if len(loaded) > 1 else ""
        text = (prefix + f"DPO ends closer to the closed-form optimum than the reference it started from at "
                f"{len(closer)} of {len(per_beta)} values of β: at β = {fmt(at['beta'], 2)}, KL(π<sub>DPO</sub> ‖ "
                f"π*<sub>β</sub>) is {fmt(at['kl_to_optimum'], 2)} nats against the reference's "
                f"{fmt(at['reference_kl_to_optimum'], 2)}.")
        if farther:
            text += (" It does not at " + ", ".join(f"β = {fmt(row['beta'], 2)} ({fmt(row['kl_to_optimum'], 3)} against "
                                                   f"{fmt(row['reference_kl_to_optimum'], 3)})" for row in farther)
                     + ", likely because π*<sub>β</sub> is already close to π<sub>ref</sub> there and the noise of a finite sample of pairs outweighs the signal.")
        text += " It never reaches the optimum exactly: with finitely many noisy pairs, DPO fits the sample's preferences, not r*."
        paras.append(p(text))
        paras.append(p(
            f"More pairs bring it closer: at β = {fmt(data['beta'], 2)}, "
            + ", ".join(f"{row['n_pairs']} pairs give {fmt(row['kl_to_optimum'], 2)}" for row in per_n)
            + f" nats (the reference: {fmt(data['reference_kl_to_optimum'], 2)})."
            + (f" With {per_n[0]['n_pairs']} pairs the run ends farther from the optimum than it started: it over-fits its "
               "few pairs" + (" (its KL to π*<sub>β</sub> grows at every evaluation)." if all(
                   a["kl_to_optimum"] < b["kl_to_optimum"] for a, b in zip(per_n[0]["trajectory"], per_n[0]["trajectory"][1:]))
                   else ".")
               if per_n[0]["kl_to_optimum"] > data["reference_kl_to_optimum"] else "")
        ))
    return notes_html("exact_recovery", loaded, paras)


# --------------------------------------------------------------------------- bigger picture


def exact_variants() -> go.Figure:
    """DPO, IPO, cDPO, hinge, KTO, ORPO and SimPO: same pairs, same steps, against the exact frontier."""
    return frontier_figure("exact_frontier", VARIANT_METHODS)


def exact_variants_numbers() -> str:
    loaded = load_all("exact_frontier", require=("points", "optimal_frontier"))
    parts = []
    for config, data in loaded:
        exact = data["provenance"]["config"]["exact"]
        rows = []
        for method in VARIANT_METHODS:
            for pt in sorted(_runs(data["points"], method), key=lambda pt: pt["final"]["kl"]):
                if method == "dpo" and pt["params"].get("beta") != exact["beta"]:
                    continue
                kl_opt = pt["final"].get("kl_to_optimum")
                rows.append([label(method), escape(_params_text(pt["params"])), fmt(pt["final"]["reward"], 3),
                             fmt(pt["final"]["kl"], 3), fmt(pt["frontier_gap"], 3),
                             "—" if kl_opt is None else fmt(kl_opt, 3)])
        shown = [pt for pt in data["points"] if pt["method"] in VARIANT_METHODS
                 and (pt["method"] != "dpo" or pt["params"].get("beta") == exact["beta"])]
        best = min(shown, key=lambda pt: pt["frontier_gap"])
        worst = max(shown, key=lambda pt: pt["frontier_gap"])
        prefix = f"<strong>{escape(config)} configuration.</strong> " if len(loaded) > 1 else ""
        parts.append(p(
            prefix + f"Every method was trained from the same reference on the same {exact['n_pairs']} pairs for "
            f"{exact['steps']} steps of batch {exact['batch_size']} at learning rate {exact['learning_rate']:g}, one "
            f"setting each (DPO also at other β, drawn as a line; the table lists DPO at β = {fmt(exact['beta'], 2)}). Closest to the exact frontier: "
            f"{label(best['method'])} ({escape(_params_text(best['params']))}), {fmt(best['frontier_gap'], 3)} below it; "
            f"farthest: {label(worst['method'])} ({escape(_params_text(worst['params']))}), {fmt(worst['frontier_gap'], 3)} "
            "below. A point far left has simply moved little: compare methods at similar KL, not by reward alone. "
            "KL to π*<sub>β</sub> is given for the methods whose target is π*<sub>β</sub> at their β."
        ))
        parts.append(html_table(["method", "setting", "reward", "KL, nats", "below frontier", "KL to π*<sub>β</sub>"], rows))
    return notes_html("exact_frontier", loaded, parts)


def deterministic() -> go.Figure:
    """Deterministic preferences: KL to the reference over training, DPO against IPO."""
    loaded = load_all("exact_deterministic", require=("runs", "beta", "n_pairs"))
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    groups = []
    for config, data in loaded:
        sfx = suffix(config, loaded)
        start = len(fig.data)
        for run in data["runs"]:
            m = run["method"]
            traj = run["trajectory"]
            steps = [row["step"] for row in traj]
            fig.add_trace(go.Scatter(x=steps, y=rs(row["kl"] for row in traj), mode="lines+markers",
                                     line=dict(color=colour(m), width=3), marker=dict(size=6, symbol=SYMBOLS[m]),
                                     name=f"{label(m)}, β = {fmt(run['params']['beta'], 2)}{sfx}", legendgroup=f"{m}{config}",
                                     hovertemplate=f"{label(m)}<br>step %{{x}}<br>KL to π<sub>ref</sub> %{{y:.3f}}<extra></extra>"),
                          row=1, col=1)
            fig.add_trace(go.Scatter(x=steps, y=rs(row["reward"] for row in traj), mode="lines+markers",
                                     line=dict(color=colour(m), width=2, dash="dash"), marker=dict(size=5, symbol=SYMBOLS[m]),
                                     name=f"{label(m)} true reward{sfx}", legendgroup=f"{m}{config}", showlegend=False,
                                     hovertemplate=f"{label(m)}<br>step %{{x}}<br>true reward %{{y:.3f}}<extra></extra>"),
                          row=2, col=1)
        groups.append((config, list(range(start, len(fig.data)))))
    config_menu(fig, groups)
    fig.update_yaxes(title_text=f"{KL_TITLE}", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text=REWARD_TITLE, row=2, col=1)
    fig.update_xaxes(title_text="training step", row=2, col=1)
    fig.update_layout(margin=dict(t=fig.layout.margin.t or 16, b=24), legend=dict(y=-0.14))
    return style(fig, height=560)


def deterministic_numbers() -> str:
    loaded = load_all("exact_deterministic", require=("runs", "beta", "n_pairs"))
    paras = []
    for config, data in loaded:
        runs = {run["method"]: run for run in data["runs"]}
        dpo, ipo = runs["dpo"], runs["ipo"]

        def mid_to_end(run):
            traj = run["trajectory"]
            mid = traj[len(traj) // 2]
            return mid, traj[-1]

        d_mid, d_end = mid_to_end(dpo)
        i_mid, i_end = mid_to_end(ipo)
        prefix = f"<strong>{escape(config)} configuration.</strong> " if len(loaded) > 1 else ""
        dpo_trend = "still growing" if d_end["kl"] > 1.05 * d_mid["kl"] else "levelling off"
        ipo_trend = ("bounded, as IPO's finite target (h = 1/(2τ)) promises" if i_end["kl"] <= 1.1 * i_mid["kl"]
                     else "also still growing")
        paras.append(p(
            prefix + f"On {data['n_pairs']} pairs labelled deterministically (the higher r* always wins), at β = "
            f"{fmt(data['beta'], 2)}: DPO's KL to the reference is {fmt(d_mid['kl'], 2)} nats at step {d_mid['step']} and "
            f"{fmt(d_end['kl'], 2)} at step {d_end['step']}, <strong>{dpo_trend}</strong>; IPO's is {fmt(i_mid['kl'], 2)} and "
            f"{fmt(i_end['kl'], 2)}: <strong>{ipo_trend}</strong>. DPO's final "
            f"training accuracy is {fmt(100 * dpo['train_metrics'].get('rewards/accuracies', float('nan')), 0)}% with a "
            f"loss of {fmt(dpo['train_metrics'].get('loss', float('nan')), 3)}: it is pushing rejected answers towards "
            "probability zero, which Bradley-Terry asks for when a preference is certain."
        ))
        paras.append(p(
            f"Drifting is not the same as getting worse here: DPO's true reward ends at {fmt(d_end['reward'], 2)} against "
            f"IPO's {fmt(i_end['reward'], 2)}, because the deterministic labels point the right way. What DPO loses is the "
            f"β-regularised optimum it is meant to find: its KL to π*<sub>β</sub> ends at {fmt(dpo['final']['kl_to_optimum'], 2)} "
            f"nats, IPO's at {fmt(ipo['final']['kl_to_optimum'], 2)}, and its entropy falls to "
            f"{fmt(dpo['final']['entropy'], 2)} nats (IPO: {fmt(ipo['final']['entropy'], 2)})."
        ))
    return notes_html("exact_deterministic", loaded, paras)


# --------------------------------------------------------------------------- beta page


def beta_sweep() -> go.Figure:
    """DPO at each β next to the closed-form optimum π*_β: its true reward and its KL, against β."""
    loaded = load_all("exact_frontier", require=("optimal_frontier", "points"))
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    groups = []
    for config, data in loaded:
        sfx = suffix(config, loaded)
        start = len(fig.data)
        front = sorted(data["optimal_frontier"], key=lambda row: row["beta"])
        dpo = sorted(_runs(data["points"], "dpo"), key=lambda pt: pt["params"]["beta"])
        lo, hi = dpo[0]["params"]["beta"] / 2, dpo[-1]["params"]["beta"] * 2
        front = [row for row in front if lo <= row["beta"] <= hi]
        for row_i, key, title in ((1, "reward", "true reward"), (2, "kl", "KL to π<sub>ref</sub>")):
            fig.add_trace(go.Scatter(x=rs(row["beta"] for row in front), y=rs(row[key] for row in front), mode="lines",
                                     line=dict(color=METHOD_COLOURS["optimal"], width=2, dash="dash"),
                                     name=f"optimum π*<sub>β</sub> (exact){sfx}", legendgroup=f"opt{config}", showlegend=row_i == 1,
                                     hovertemplate=f"π*<sub>β</sub>, β = %{{x:.3g}}<br>{title} %{{y:.3f}}<extra></extra>"),
                          row=row_i, col=1)
            fig.add_trace(go.Scatter(x=rs(pt["params"]["beta"] for pt in dpo), y=rs(pt["final"][key] for pt in dpo),
                                     mode="lines+markers", line=dict(color=METHOD_COLOURS["dpo"], width=3), marker=dict(size=9),
                                     name=f"DPO-trained policy{sfx}", legendgroup=f"dpo{config}", showlegend=row_i == 1,
                                     hovertemplate=f"DPO, β = %{{x:.3g}}<br>{title} %{{y:.3f}}<extra></extra>"),
                          row=row_i, col=1)
        groups.append((config, list(range(start, len(fig.data)))))
    config_menu(fig, groups)
    fig.update_xaxes(type="log")
    fig.update_xaxes(title_text="β (log scale)", row=2, col=1)
    fig.update_yaxes(title_text=REWARD_TITLE, row=1, col=1)
    fig.update_yaxes(title_text=KL_TITLE, row=2, col=1)
    fig.update_layout(margin=dict(t=fig.layout.margin.t or 16, b=24), legend=dict(y=-0.14))
    return style(fig, height=560)


def beta_sweep_numbers() -> str:
    loaded = load_all("exact_frontier", require=("optimal_frontier", "points"))
    paras = []
    for config, data in loaded:
        dpo = sorted(_runs(data["points"], "dpo"), key=lambda pt: pt["params"]["beta"])
        rows = [[fmt(pt["params"]["beta"], 2), fmt(pt["final"]["reward"], 3), fmt(pt["final"]["kl"], 3),
                 fmt(pt["final"]["kl_to_optimum"], 3), fmt(pt["frontier_gap"], 3)] for pt in dpo]
        prefix = f"<strong>{escape(config)} configuration.</strong> " if len(loaded) > 1 else ""
        paras.append(p(
            prefix + f"Lowering β from {fmt(dpo[-1]['params']['beta'], 2)} to {fmt(dpo[0]['params']['beta'], 2)} takes DPO's "
            f"policy from KL {fmt(dpo[-1]['final']['kl'], 2)} to {fmt(dpo[0]['final']['kl'], 2)} nats away from the reference "
            f"and its true reward from {fmt(dpo[-1]['final']['reward'], 2)} to {fmt(dpo[0]['final']['reward'], 2)}, next to "
            "the dashed curve of the exact optimum π*<sub>β</sub>."
            + (" The smaller β, the farther DPO ends from its own target: its KL to π*<sub>β</sub> grows from "
               f"{fmt(dpo[-1]['final']['kl_to_optimum'], 3)} to {fmt(dpo[0]['final']['kl_to_optimum'], 2)} nats, because the "
               "optimum moves far from π<sub>ref</sub>, into answers that the sampled pairs rarely show."
               if all(a["final"]["kl_to_optimum"] > b["final"]["kl_to_optimum"] for a, b in zip(dpo, dpo[1:])) else "")
        ))
        paras.append(html_table(["β", "true reward", "KL to π<sub>ref</sub>", "KL to π*<sub>β</sub>", "below frontier"], rows))
    return notes_html("exact_frontier", loaded, paras)
