"""Every site figure: it builds, it is deterministic, and its numbers are the package's.

Figures are pure functions (dpo_ref.figures); these tests read the data back out of
the Plotly figures and compare it with dpo_ref.losses and dpo_ref.figures.toy.
"""

from __future__ import annotations

import json
import math
import re

import plotly.graph_objects as go
import pytest
import torch
from figure_values import leaves, non_finite_values

from dpo_ref import losses
from dpo_ref.figures import FIGURES, build_figure, figure_function, toy
from dpo_ref.figures.html import embed, figure_spec
from dpo_ref.figures.theme import (
    METHOD_COLOURS,
    METHOD_LABELS,
    ORDERED_COLOURS,
    PALETTES,
    QUANTITY_COLOURS,
    ordered_shades,
    palette_updates,
)

TOL = 2e-6  # figure data is rounded to 6 decimals


def t(values) -> torch.Tensor:
    return torch.tensor(list(values), dtype=torch.float64)


def close(a, b, tol: float = TOL) -> bool:
    return torch.allclose(t(a), t(b), atol=tol, rtol=0)


@pytest.fixture(scope="module")
def figures() -> dict:
    return {figure_id: build_figure(figure_id) for figure_id in FIGURES}


# --------------------------------------------------------------------------- every figure


@pytest.mark.parametrize("figure_id", list(FIGURES))
def test_builds_and_is_deterministic_with_finite_numbers(figure_id, figures):
    first = figures[figure_id]
    assert isinstance(first, (go.Figure, str))
    assert embed(figure_id, first) == embed(figure_id, figure_function(figure_id)())
    if isinstance(first, go.Figure):
        assert not non_finite_values(first)


def test_the_finite_check_finds_nan_wherever_it_hides():
    """NaN in a trace, its error bars, its customdata, a frame or a slider's restyle; None in a trace."""
    nan = float("nan")
    fig = go.Figure(
        [
            go.Scatter(x=[0, 1], y=[1.0, nan], customdata=[nan, 1.0], error_y={"array": [0.1, float("inf")]}),
            go.Bar(x=["a", "b"], y=[1, None]),
        ],
        frames=[go.Frame(data=[go.Scatter(y=[nan])])],
        layout={"sliders": [{"steps": [{"args": [{"y": [[nan]]}], "method": "restyle"}]}]},
    )
    assert sorted(non_finite_values(fig)) == sorted(
        [
            "data[0].y[1]: nan",
            "data[0].customdata[0]: nan",
            "data[0].error_y.array[1]: inf",
            "data[1].y[1]: None",
            "frames[0].data[0].y[0]: nan",
            "layout.sliders[0].steps[0].args[0].y[0][0]: nan",
        ]
    )
    assert json.dumps(figure_spec(fig))  # what the old check did: the JSON writer hides every one of them


# rlhf-pipeline, the playground's widgets and the measured "-table" blocks are HTML, not Plotly figures
HTML_FIGURES = {
    "rlhf-pipeline",
    "playground",
    "playground-displacement",
    "playground-beta",
    "playground-rlhf",
    "playground-deterministic",
}


@pytest.mark.parametrize("figure_id", [i for i in FIGURES if i not in HTML_FIGURES and not i.endswith("-table")])
def test_plot_follows_site_conventions(figure_id, figures):
    fig = figures[figure_id]
    layout = fig.layout
    # fits a phone: no fixed width; a legend at the top of the figure, placed in the figure,
    # not from the plot's edge (so it stays out of the plot when the plot resizes)
    assert layout.width is None
    if layout.showlegend is not False:
        assert layout.legend.orientation == "h"
        assert (layout.legend.yref, layout.legend.y, layout.legend.yanchor) == ("container", 1, "top")
    # every axis that is shown has a name
    for name, axis in layout.to_plotly_json().items():
        if name.startswith(("xaxis", "yaxis")) and axis.get("visible", True):
            if axis.get("matches") or (name.startswith("xaxis") and _shares_x_with_lower_panel(layout, name)):
                continue
            assert axis.get("title", {}).get("text"), f"{figure_id}: {name} has no title"
    # sliders say what they change
    for slider in layout.sliders or ():
        assert slider.currentvalue.prefix and len(slider.currentvalue.prefix) > 3
        # a parameter slider has a few positions at least; an animation's has one per evaluation of its data
        assert len(slider.steps) >= 5 or all(step.method == "animate" for step in slider.steps)
    # colours come from the one site map
    shades = {c for base in METHOD_COLOURS.values() for n in range(2, 9) for c in ordered_shades(base, n)}
    allowed = {c.lower() for c in (*METHOD_COLOURS.values(), *QUANTITY_COLOURS.values(), *ORDERED_COLOURS, *shades)}
    for trace in fig.data:
        colour = (trace.marker.color if isinstance(trace, go.Bar) else trace.line.color) or trace.marker.color
        if isinstance(colour, str):
            assert colour.lower() in allowed, f"{figure_id}: trace {trace.name!r} colour {colour}"
    # the dark palette restyles every axis and slider
    updates = palette_updates(fig)
    assert set(updates) == set(PALETTES)
    assert updates["slate"]["font.color"] == PALETTES["slate"]["fg"]


def _shares_x_with_lower_panel(layout, name: str) -> bool:
    """Stacked panels name the x axis once, on the bottom panel."""
    axis = layout[name]
    return bool(
        axis.showticklabels is not False
        and any(
            other.startswith("xaxis") and other != name and layout[other].title.text
            for other in layout.to_plotly_json()
        )
    )


def test_embed_uses_stable_ids_and_valid_json(figures):
    html = embed("dpo-loss-margin", figures["dpo-loss-margin"])
    assert 'id="plot-dpo-loss-margin"' in html
    spec_text = html.split('["dpo-loss-margin"]=', 1)[1].rsplit(";</script>", 1)[0]
    spec = json.loads(spec_text)
    assert spec["config"]["responsive"] is True
    assert set(spec["palettes"]) == {"default", "slate"}
    assert "</" not in spec_text.replace("<\\/", "")


def test_marker_outlines_take_the_background_of_each_palette(figures):
    """Markers ringed in the page's background colour (to stand out from the curve under
    them) get the dark background in the dark palette, not a white ring."""
    from dpo_ref.figures.theme import PALETTES, dark_copy, palette_restyles

    fig = figures["beta-slider"]
    ringed = [i for i, t in enumerate(fig.data) if t.marker and t.marker.line and t.marker.line.color == "#ffffff"]
    assert ringed and PALETTES["default"]["bg"] == "#ffffff"
    restyles = palette_restyles(fig)
    assert restyles["slate"] == [[{"marker.line.color": PALETTES["slate"]["bg"]}, ringed]]
    assert restyles["default"] == [[{"marker.line.color": "#ffffff"}, ringed]]  # switching back restores it
    assert all(dark_copy(fig).data[i].marker.line.color == PALETTES["slate"]["bg"] for i in ringed)


def test_method_colours_are_distinct():
    methods = {k: v for k, v in METHOD_COLOURS.items() if k not in ("sft", "reference", "optimal")}
    assert len(set(methods.values())) == len(methods)


# --------------------------------------------------------------------------- numbers agree with dpo_ref


def _slider_states(fig):
    return [step.args[0] for step in fig.layout.sliders[0].steps]


def _readouts_clear_of(curve, label_x: float, side: str, top: float, fraction: float = 0.45) -> bool:
    """The curve stays well below the panel's top over the half of the axis where the readout sits."""
    xs, ys = list(curve.x), list(curve.y)
    lo, hi = min(xs), max(xs)
    span = (hi - lo) * fraction
    region = [y for x, y in zip(xs, ys) if (x >= hi - span if side == "right" else x <= lo + span)]
    return max(region) < 0.6 * top and (label_x > hi - span if side == "right" else label_x < lo + span)


def test_bradley_terry_curves_are_the_package_loss(figures):
    from dpo_ref.figures import reward_modelling as rm

    fig = figures["bradley-terry-chosen-reward"]
    prob, loss = fig.data[2], fig.data[5]
    margins = t(prob.x)
    expected_loss = losses.bradley_terry_loss(margins, torch.zeros_like(margins))
    assert close(loss.y, expected_loss)
    assert close(prob.y, torch.sigmoid(margins))
    # a slider for each reward; every pair of positions has its state, markers on the curves
    assert [s.currentvalue.prefix.split(" ")[0] for s in fig.layout.sliders] == ["chosen", "rejected"]
    states = fig.layout.meta["dpo_states"]
    assert states["traces"] == rm.MARKER_TRACES and len(states["states"]) == len(rm.REWARDS) ** 2
    p_range, loss_range = fig.layout.yaxis2.range, fig.layout.yaxis3.range
    for key, state in states["states"].items():
        i, j = map(int, key.split(","))
        r_w, r_l = rm.REWARDS[i], rm.REWARDS[j]
        assert state["x"][0] == [r_w, r_l] and state["x"][2][0] == pytest.approx(r_w - r_l)
        assert state["y"][4][0] == pytest.approx(float(losses.bradley_terry_loss(t([r_w]), t([r_l]))[0]), abs=1e-8)
        assert fig.layout.xaxis2.range[0] < r_w - r_l < fig.layout.xaxis2.range[1]  # every margin on the axis
        assert p_range[0] < state["y"][2][0] < p_range[1] and loss_range[0] < state["y"][4][0] < loss_range[1]
    # the readouts sit where their curves never go
    assert _readouts_clear_of(prob, rm.P_LABEL_AT[0], "left", p_range[1])
    assert _readouts_clear_of(loss, rm.LOSS_LABEL_AT[0], "right", loss_range[1])


def test_bradley_terry_shift_changes_nothing_but_the_rewards(figures):
    states = _slider_states(figures["bradley-terry-shift"])
    assert len({tuple(s["x"][0]) for s in states}) == len(states)  # the rewards move
    assert len({s["text"][3][0] for s in states}) == 1  # the probability does not
    assert len({s["text"][5][0] for s in states}) == 1  # nor the loss
    assert states[0]["y"][2][0] == pytest.approx(1 / (1 + math.exp(-1.5)))


def test_dpo_loss_figure_is_dpo_loss_and_sigmoid_weight(figures):
    from dpo_ref.figures import loss as loss_module

    fig = figures["dpo-loss-margin"]
    margins = t(fig.data[0].x)
    beta = 0.1
    zeros = torch.zeros_like(margins)
    expected = losses.dpo_loss(margins / beta, zeros, zeros, zeros, beta=beta)
    assert close(fig.data[0].y, expected)
    assert close(fig.data[1].y, torch.sigmoid(-margins))  # the paper's weight sigma(r_l - r_w)
    # two sliders, the chosen and the rejected implicit reward, each with its own values
    chosen, rejected = ([float(step.label.replace("−", "-")) for step in s.steps] for s in fig.layout.sliders)
    assert (
        "chosen" in fig.layout.sliders[0].currentvalue.prefix
        and "rejected" in fig.layout.sliders[1].currentvalue.prefix
    )
    states = fig.layout.meta["dpo_states"]["states"]
    assert len(states) == len(chosen) * len(rejected)
    for i, r_w in enumerate(chosen):
        for j, r_l in enumerate(rejected):
            state = states[f"{i},{j}"]
            m = r_w - r_l  # where the current pair sits on both curves, and its loss and weight there
            assert state["x"][0] == [pytest.approx(m)] and state["x"][1] == [pytest.approx(m)]
            assert state["y"][0][0] == pytest.approx(math.log1p(math.exp(-m)), abs=1e-8)
            assert state["y"][1][0] == pytest.approx(1 / (1 + math.exp(m)), abs=1e-8)
    # each slider alone moves the pair: the chosen reward to the right, the rejected to the left
    assert states["9,8"]["x"][0][0] > states["8,8"]["x"][0][0] > states["8,9"]["x"][0][0]
    # both rewards shifted together: the same margin, the same loss
    assert states["10,10"]["y"][0] == states["8,8"]["y"][0] == [pytest.approx(math.log(2))]
    # the margins of the sliders cover the whole horizontal axis
    axis = fig.layout.xaxis2.range
    assert max(chosen) - min(rejected) >= axis[1] - 1 and min(chosen) - max(rejected) <= axis[0] + 1
    # the figure opens at the reference: both rewards 0
    assert (chosen[fig.layout.sliders[0].active], rejected[fig.layout.sliders[1].active]) == (0.0, 0.0)
    # both readouts in a top-right corner that neither curve reaches
    assert _readouts_clear_of(fig.data[0], loss_module.LOSS_LABEL_AT[0], "right", fig.layout.yaxis.range[1])
    assert _readouts_clear_of(fig.data[1], loss_module.WEIGHT_LABEL_AT[0], "right", fig.layout.yaxis2.range[1])


def test_beta_figure_is_the_closed_form_optimum(figures):
    fig = figures["beta-slider"]
    example = toy.SUMMARY_PROMPT
    ref, rewards = example.tensor("reference_probs"), example.tensor("true_rewards")
    assert close(fig.data[0].x, ref)
    kls = []
    for beta, state in zip(toy.BETA_GRID, _slider_states(fig)):
        policy = toy.optimal_policy(ref, rewards, beta)
        assert close(state["x"][0], policy)
        assert state["x"][1][0] == pytest.approx(float(toy.kl_divergence(policy, ref)), abs=1e-9)
        assert state["y"][1][0] == pytest.approx(float(toy.expected_reward(policy, rewards)), abs=1e-9)
        kls.append(state["x"][1][0])
    assert kls == sorted(kls, reverse=True)  # larger beta, closer to the reference
    assert kls[-1] < 0.01 and kls[0] == pytest.approx(math.log(10), abs=1e-3)


def test_beta_readout_stays_in_its_empty_corner(figures):
    from dpo_ref.figures import beta as beta_module

    fig = figures["beta-slider"]
    frontier = fig.data[2]
    x_range, y_range = fig.layout.xaxis2.range, fig.layout.yaxis2.range
    # bottom right: wherever the curve is at the right of the panel, it is high
    right = [y for x, y in zip(frontier.x, frontier.y) if x > x_range[1] - 0.45 * (x_range[1] - x_range[0])]
    assert min(right) > y_range[0] + 0.6 * (y_range[1] - y_range[0])
    assert beta_module.LABEL_AT[0] > x_range[1] - 0.1 and beta_module.LABEL_AT[1] < y_range[0] + 0.1
    for state in _slider_states(fig):  # every beta's point is inside the panel
        assert x_range[0] < state["x"][1][0] < x_range[1] and y_range[0] < state["y"][1][0] < y_range[1]


def test_both_routes_reach_the_closed_form_optimum():
    """DPO straight from the pairs, RLHF through its fitted reward model: the same pi* (4)."""
    from dpo_ref.figures import dpo_vs_rlhf as dvr

    example = toy.SUMMARY_PROMPT
    paths = dvr.training_paths(dvr.BETA, example)
    target = toy.optimal_policy(example.tensor("reference_probs"), example.tensor("true_rewards"), dvr.BETA)
    assert close(paths["dpo"][-1], target, tol=1e-3) and close(paths["rlhf"][-1], target, tol=1e-2)
    # RLHF's policy waits while its reward model is fitted; DPO's moves from the first step
    assert all(close(p, paths["rlhf"][0], tol=1e-12) for p in paths["rlhf"][: dvr.STAGE_STEPS + 1])
    assert not close(paths["dpo"][1], paths["dpo"][0], tol=1e-3)
    # the fitted reward model is the true reward up to a constant (only differences are identified)
    fitted = paths["reward_model"][-1]
    true = example.tensor("true_rewards")
    assert close(fitted - fitted.mean(), true - true.mean(), tol=0.05)


def test_preference_pairs_are_bradley_terry_weighted():
    from dpo_ref.figures import dpo_vs_rlhf as dvr

    example = toy.SUMMARY_PROMPT
    winners, losers, weights = dvr.preference_pairs(example)
    ref, reward = example.tensor("reference_probs"), example.tensor("true_rewards")
    assert len(weights) == 8 * 7 and float(weights.sum()) == pytest.approx(1.0)
    i = 3
    win, lose = int(winners[i]), int(losers[i])
    j = next(k for k in range(len(weights)) if int(winners[k]) == lose and int(losers[k]) == win)
    # the two orders of one pair split their weight by the Bradley-Terry probability
    assert float(weights[i] / weights[j]) == pytest.approx(math.exp(float(reward[win] - reward[lose])))
    assert float(weights[i] + weights[j]) == pytest.approx(float(2 * ref[win] * ref[lose] / (1 - (ref**2).sum())))


def test_paper_charts_show_the_data_file(figures):
    from dpo_ref.figures import paper_results

    for figure_id, name in (
        ("paper-summarization", "summarization"),
        ("paper-summarization-ood", "summarization_out_of_distribution"),
    ):
        block = paper_results.reported(name)
        fig = figures[figure_id]
        for trace in fig.data:
            method = next(m for m, label in METHOD_LABELS.items() if label == trace.name)
            assert list(trace.y) == [g["values"][method] for g in block["groups"]]


# What the DPO paper (arXiv 2305.18290) reports, written here from the paper, not from
# the data file: TL;DR win rates at temperature 0.0, which its text reads off Figure 2
# (right) to the whole percent, and Table 1's CNN/DailyMail win rates at 0 and 0.25.
PAPER_TLDR = {"DPO": 0.61, "PPO": 0.57}
PAPER_TABLE_1 = {"DPO": [0.36, 0.31], "PPO": [0.26, 0.23]}


def _note(fig) -> str:
    return " ".join(a.text for a in fig.layout.annotations)


def test_paper_charts_plot_the_papers_numbers_and_say_where_they_come_from(figures):
    tldr = figures["paper-summarization"]
    assert {t.name: list(t.y) for t in tldr.data} == {k: [v] for k, v in PAPER_TLDR.items()}
    for trace in tldr.data:  # a reading of the figure: half a percentage point either way, drawn as bars
        assert trace.error_y.type == "constant" and trace.error_y.value == pytest.approx(0.005)
        assert trace.text[0].startswith("≈")
    assert "read from Figure 2 (right)" in _note(tldr) and "± 0.5 points" in _note(tldr)
    assert "2305.18290" in _note(tldr)
    ood = figures["paper-summarization-ood"]
    assert {t.name: list(t.y) for t in ood.data} == PAPER_TABLE_1
    assert list(ood.data[0].x) == ["0", "0.25"]
    assert all(t.error_y.value is None for t in ood.data)  # a table's numbers are exact
    assert "Table 1" in _note(ood) and "read from" not in _note(ood)


def test_a_figure_reading_needs_its_precision(tmp_path, monkeypatch):
    from dpo_ref import paths
    from dpo_ref.figures import paper_results

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "paper_results.yml").write_text(
        "tldr:\n  title: t\n  source: s\n  measure: m\n  axis: a\n  read_from: Figure 2\n  reading: r\n"
        "  groups:\n    - label: '0'\n      values: {dpo: 0.61}\n"
    )
    monkeypatch.setattr(paths, "docs_dir", lambda: tmp_path)
    with pytest.raises(ValueError, match="read from a figure: it needs `reading` and an `uncertainty`"):
        paper_results.reported("tldr")


def test_paper_results_file_rejects_a_bad_block(tmp_path, monkeypatch):
    from dpo_ref.figures import paper_results

    with pytest.raises(ValueError, match="needs title"):
        paper_results.reported("no_such_block")


def test_log_axes_label_powers_of_ten_only():
    from dpo_ref.figures.theme import style

    fig = style(go.Figure(go.Scatter(x=[0.01, 10], y=[1, 2])).update_xaxes(type="log"))
    assert fig.layout.xaxis.dtick == 1 and fig.layout.xaxis.minor.dtick == "D1"
    assert fig.layout.yaxis.dtick is None  # a linear axis is left alone


def test_key_insight_rewards_differ_by_beta_log_z(figures):
    fig = figures["implicit-reward-offset"]
    example = toy.SUMMARY_PROMPT
    ref, rewards = example.tensor("reference_probs"), example.tensor("true_rewards")
    for beta, state in zip(toy.BETA_GRID, _slider_states(fig)):
        implicit = t(state["x"][0])
        offset = beta * toy.log_partition(ref, rewards, beta)
        assert close(implicit + offset, rewards, tol=1e-5)


def test_reward_hacking_curves_are_exact_expectations(figures):
    fig = figures["reward-hacking"]
    proxy, true = fig.data[0], fig.data[1]
    example = toy.SUMMARY_PROMPT
    ref = example.tensor("reference_probs")
    for i in (0, 60, 120):
        beta = proxy.customdata[i]
        policy = toy.optimal_policy(ref, example.tensor("proxy_rewards"), beta)
        assert proxy.x[i] == pytest.approx(float(toy.kl_divergence(policy, ref)), abs=1e-5)
        assert true.y[i] == pytest.approx(float(toy.expected_reward(policy, example.tensor("true_rewards"))), abs=1e-5)
    assert list(proxy.y) == sorted(proxy.y)  # the reward model's score only goes up
    peak = max(range(len(true.y)), key=lambda i: true.y[i])
    assert 0 < peak < len(true.y) - 1 and true.y[-1] < true.y[0]  # true reward rises, then falls


@pytest.mark.parametrize(
    ("figure_id", "fn"),
    [
        ("variant-cdpo", lambda h: losses.dpo_loss(h, 0 * h, 0 * h, 0 * h, beta=0.1, label_smoothing=0.1)),
        ("variant-hinge", lambda h: losses.hinge_loss(h, 0 * h, 0 * h, 0 * h, beta=0.1)),
        ("variant-ipo", lambda h: losses.ipo_loss(h, 0 * h, 0 * h, 0 * h, beta=0.1)),
        ("variant-simpo", lambda g: losses.simpo_loss(g, 0 * g, beta=2.0, gamma=1.0)),
    ],
)
def test_variant_curves_are_the_package_losses(figure_id, fn, figures):
    trace = figures[figure_id].data[0]
    assert close(trace.y, fn(t(trace.x)))


def test_variant_gradients_match_closed_forms(figures):
    def push(figure_id, index=0):
        data = figures[figure_id].data[index * 2 + 1]  # traces alternate loss, push per curve
        return t(data.x), t(data.y)

    h, p = push("variant-cdpo", 1)  # the dotted DPO reference: beta * sigma(-beta h)
    assert close(p, 0.1 * torch.sigmoid(-0.1 * h))
    h, p = push("variant-cdpo")  # cDPO's push turns negative past beta h = log((1 - eps) / eps)
    crossing = math.log(0.9 / 0.1) / 0.1
    assert torch.all(p[h < crossing - 0.5] > 0) and torch.all(p[h > crossing + 0.5] < 0)
    h, p = push("variant-hinge")
    assert torch.all(p[h > 10.5] == 0) and close(p[h < 9.5], torch.full_like(p[h < 9.5], 0.1))
    h, p = push("variant-ipo")
    assert close(p, -2 * (h - 5.0), tol=1e-5)
    g, p = push("variant-simpo")
    assert close(p, 2.0 * torch.sigmoid(1.0 - 2.0 * g))
    # DPOP, along the chosen log-ratio c with the rejected one at -10: DPO's push beta * sigma(-beta (c + 10)),
    # times (1 + lambda) once c < 0, where the sigmoid's argument is beta (c + 10 + lambda c)
    c, p = push("variant-dpop")
    above, below = c > 0.01, c < -0.01
    assert close(p[above], 0.1 * torch.sigmoid(-0.1 * (c[above] + 10)))
    assert close(p[below], 0.1 * 51 * torch.sigmoid(-0.1 * (c[below] + 10 + 50 * c[below])))
    c, p = push("variant-dpop", 1)  # the dotted DPO reference
    assert close(p, 0.1 * torch.sigmoid(-0.1 * (c + 10)))


def test_kto_and_orpo_figures(figures):
    kto = figures["variant-kto"]
    rho = t(kto.data[0].x)
    for index, desirable in ((0, True), (2, False)):  # traces alternate loss and push per curve
        flags = torch.full(rho.shape, desirable, dtype=torch.bool)
        assert close(t(kto.data[index].x), rho)
        assert close(kto.data[index].y, losses.kto_loss(rho, 0 * rho, flags, 0.0, beta=0.1))
    orpo = figures["variant-orpo"]
    gap = t(orpo.data[0].x)
    rejected = torch.full_like(gap, -1.5)
    chosen = rejected + gap
    assert close(orpo.data[0].y, losses.orpo_loss(chosen, rejected, -chosen, lam=0.1), tol=1e-5)


# --------------------------------------------------------------------------- the closed form itself


def test_optimal_policy_beats_every_perturbation():
    example = toy.SUMMARY_PROMPT
    ref, rewards = example.tensor("reference_probs"), example.tensor("true_rewards")
    beta = 0.5

    def objective(p):
        return float(toy.expected_reward(p, rewards) - beta * toy.kl_divergence(p, ref))

    best = toy.optimal_policy(ref, rewards, beta)
    assert float(best.sum()) == pytest.approx(1.0)
    # the optimum's value is beta log Z (the derivation's step 3 with KL = 0)
    assert objective(best) == pytest.approx(beta * float(toy.log_partition(ref, rewards, beta)))
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        other = torch.softmax(best.log() + 0.3 * torch.randn(best.shape, generator=generator, dtype=torch.float64), -1)
        assert objective(other) < objective(best)


def test_toy_rejects_bad_input():
    with pytest.raises(ValueError, match="beta"):
        toy.optimal_policy(t([0.5, 0.5]), t([0.0, 1.0]), 0.0)
    with pytest.raises(ValueError, match="sum to 1"):
        toy.ToyPrompt("p", ("a", "b"), (0.5, 0.6), (0, 0), (0, 0))


def test_unknown_figure_id_is_a_clear_error():
    with pytest.raises(KeyError, match="known figures"):
        build_figure("no-such-figure")


@pytest.mark.parametrize("figure_id", ["beta-slider", "reward-hacking", "variant-kto"])
def test_figure_spec_is_plain_json(figure_id, figures):
    fig = figures[figure_id]
    spec = figure_spec(fig)
    assert set(spec) == {"figure", "config", "palettes", "restyles"}
    text = json.dumps(spec, allow_nan=False)  # strict JSON: NaN or an infinity would raise here
    assert json.loads(text) == spec
    # every number of the figure arrives as that number (Plotly writes a NaN as null)
    written = [value for _, value in leaves(spec["figure"]["data"])]
    held = [value for _, value in leaves(fig.to_plotly_json()["data"])]
    assert len(written) == len(held) > 100 and None not in written
    assert close(written, held, tol=1e-12)


def test_figure_alt_text_names_what_is_plotted(figures):
    from dpo_ref.figures.html import figure_alt

    alt = figure_alt(figure_spec(figures["dpo-loss-margin"])["figure"])
    assert alt.startswith("Interactive chart.") and "gradient weight" in alt and "margin m" in alt
    assert "a slider sets chosen implicit reward" in alt and "a slider sets rejected implicit reward" in alt
    assert "<" not in alt  # plain text, no HTML
    assert "buttons:" in figure_alt(figure_spec(figures["measured-ppo-runs"])["figure"])


# --------------------------------------------------------------------------- CLI


def test_cli_writes_standalone_html(tmp_path):
    import argparse

    from dpo_ref.figures import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path), "--only", "dpo-loss-margin", "--only", "rlhf-pipeline"])
    assert cli.main(args) == 0
    html = (tmp_path / "dpo-loss-margin.html").read_text()
    assert 'src="plotly.min.js"' in html and "cdn" not in html.lower()
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000
    assert "dpo-pipeline" in (tmp_path / "rlhf-pipeline.html").read_text()


# --------------------------------------------------------------------------- figure controls


def test_every_method_has_its_own_colour_and_marker_readable_in_both_palettes():
    from dpo_ref.figures.measured.common import SYMBOLS, param_name
    from dpo_ref.figures.theme import _luminance
    from dpo_ref.methods import LR_SCALE, METHODS

    colours = [m.colour for m in METHODS.values()]
    markers = [m.marker for m in METHODS.values()]
    assert len(set(colours)) == len(colours) and len(set(markers)) == len(markers)
    for name, method in METHODS.items():
        assert re.fullmatch(r"#[0-9A-F]{6}", method.colour), name
        v = _luminance([int(method.colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
        # 2:1 against Material's white and its slate background (luminance about 0.0144)
        assert 1.05 / (v + 0.05) >= 2 and (v + 0.05) / (0.0144 + 0.05) >= 2, (name, method.colour)
        assert SYMBOLS[name] == method.marker
    assert param_name("beta", "ipo") == "τ" and param_name("beta", "dpo") == "β"
    assert param_name("kl_coef", "ppo") == "β" and param_name(LR_SCALE, "preferred-ft") == "learning-rate scale"
    with pytest.raises(ValueError, match="orpo has no hyperparameter 'beta'"):
        param_name("beta", "orpo")


def test_ordered_shades_run_light_to_dark_inside_the_contrast_band():
    from dpo_ref.figures.theme import SHADE_LUMINANCE, _luminance

    def luminance(colour: str) -> float:
        return _luminance([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])

    for base in ("#0072B2", "#009E73", "#999933"):
        shades = ordered_shades(base, 6)
        values = [luminance(c) for c in shades]
        assert len(set(shades)) == 6 and values == sorted(values, reverse=True)  # light to dark, all different
        assert abs(values[0] - SHADE_LUMINANCE[0]) < 0.01 and abs(values[-1] - SHADE_LUMINANCE[1]) < 0.01
        # 2:1 against Material's white and its slate background (luminance about 0.0144)
        assert all((1.05 / (v + 0.05)) >= 2 and (v + 0.05) / (0.0144 + 0.05) >= 2 for v in values)
    with pytest.raises(ValueError, match="at least one shade"):
        ordered_shades("#0072B2", 0)
    with pytest.raises(ValueError, match="#rrggbb"):
        ordered_shades("blue", 3)


def test_no_plotly_toolbar_and_dropdowns_become_buttons_beside_the_figure(figures):
    fig = figures["measured-overoptimisation"]
    spec = figure_spec(fig)
    assert spec["config"]["displayModeBar"] is False
    assert [m["visible"] for m in spec["figure"]["layout"]["updatemenus"]] == [False]  # Plotly's dropdown hidden
    html = embed("measured-overoptimisation", fig)
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert html.index('class="dpo-figure__menu"') < html.index('class="dpo-figure"')  # above the figure, outside it
    assert html.count('class="dpo-figure__choice"') == len(labels) >= 3
    assert "<span class=dpo-figure__menu-name>method</span>" in html  # "method: DPO" said once
    assert 'aria-pressed="true">DPO</button>' in html and html.count('aria-pressed="true"') == 1


def test_overoptimisation_tells_each_beta_apart_by_shade(figures):
    fig = figures["measured-overoptimisation"]
    dpo = [t for t in fig.data if t.name and t.name.startswith("DPO, β") and t.showlegend is not False]
    betas = [float(t.name.split("β = ")[1].split()[0]) for t in dpo]
    colours = [t.line.color for t in sorted(dpo, key=lambda t: betas[dpo.index(t)])]
    assert len(dpo) >= 4 and colours == ordered_shades(METHOD_COLOURS["dpo"], len(dpo))


def test_displacement_legend_names_each_class_of_answers_once(figures):
    fig = figures["measured-displacement"]
    shown = [t.name for t in fig.data if t.visible is True and t.showlegend is not False]
    assert len(shown) == len(set(shown)) == 5
