"""Every site figure: it builds, it is deterministic, and its numbers are the package's.

Figures are pure functions (dpo_ref.figures); these tests read the data back out of
the Plotly figures and compare it with dpo_ref.losses and dpo_ref.figures.toy.
"""

from __future__ import annotations

import json
import math

import plotly.graph_objects as go
import pytest
import torch
from figure_values import leaves, non_finite_values

from dpo_ref import losses
from dpo_ref.figures import FIGURES, build_figure, figure_function, toy
from dpo_ref.figures.html import embed, figure_spec
from dpo_ref.figures.theme import METHOD_COLOURS, PALETTES, QUANTITY_COLOURS, palette_updates

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
        [go.Scatter(x=[0, 1], y=[1.0, nan], customdata=[nan, 1.0], error_y={"array": [0.1, float("inf")]}),
         go.Bar(x=["a", "b"], y=[1, None])],
        frames=[go.Frame(data=[go.Scatter(y=[nan])])],
        layout={"sliders": [{"steps": [{"args": [{"y": [[nan]]}], "method": "restyle"}]}]},
    )
    assert sorted(non_finite_values(fig)) == sorted([
        "data[0].y[1]: nan", "data[0].customdata[0]: nan", "data[0].error_y.array[1]: inf", "data[1].y[1]: None",
        "frames[0].data[0].y[0]: nan", "layout.sliders[0].steps[0].args[0].y[0][0]: nan",
    ])  # fmt: skip
    assert json.dumps(figure_spec(fig))  # what the old check did: the JSON writer hides every one of them


# rlhf-pipeline and the measured "-table" blocks are HTML, not Plotly figures
@pytest.mark.parametrize("figure_id", [i for i in FIGURES if i != "rlhf-pipeline" and not i.endswith("-table")])
def test_plot_follows_site_conventions(figure_id, figures):
    fig = figures[figure_id]
    layout = fig.layout
    # fits a phone: legend below the plot (or none), no fixed width
    assert layout.width is None
    if layout.showlegend is not False:
        assert layout.legend.orientation == "h" and layout.legend.y < 0
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
    allowed = {c.lower() for c in (*METHOD_COLOURS.values(), *QUANTITY_COLOURS.values())}
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
    return bool(axis.showticklabels is not False and any(
        other.startswith("xaxis") and other != name and layout[other].title.text
        for other in layout.to_plotly_json()
    ))


def test_embed_uses_stable_ids_and_valid_json(figures):
    html = embed("dpo-loss-margin", figures["dpo-loss-margin"])
    assert 'id="plot-dpo-loss-margin"' in html
    spec_text = html.split('["dpo-loss-margin"]=', 1)[1].rsplit(";</script>", 1)[0]
    spec = json.loads(spec_text)
    assert spec["config"]["responsive"] is True
    assert set(spec["palettes"]) == {"default", "slate"}
    assert "</" not in spec_text.replace("<\\/", "")


def test_method_colours_are_distinct():
    methods = {k: v for k, v in METHOD_COLOURS.items() if k not in ("sft", "reference", "optimal")}
    assert len(set(methods.values())) == len(methods)


# --------------------------------------------------------------------------- numbers agree with dpo_ref


def _slider_states(fig):
    return [step.args[0] for step in fig.layout.sliders[0].steps]


def test_bradley_terry_curves_are_the_package_loss(figures):
    fig = figures["bradley-terry-chosen-reward"]
    prob, loss = fig.data[2], fig.data[4]
    margins = t(prob.x)
    expected_loss = losses.bradley_terry_loss(margins, torch.zeros_like(margins))
    assert close(loss.y, expected_loss)
    assert close(prob.y, torch.sigmoid(margins))
    # each slider step puts the markers on the curves
    for state in _slider_states(fig):
        (r_w, r_l), m = state["x"][0], state["x"][2][0]
        assert m == pytest.approx(r_w - r_l)
        assert state["y"][3][0] == pytest.approx(float(losses.bradley_terry_loss(t([r_w]), t([r_l]))[0]), abs=1e-9)


def test_bradley_terry_shift_changes_nothing_but_the_rewards(figures):
    states = _slider_states(figures["bradley-terry-shift"])
    assert len({tuple(s["x"][0]) for s in states}) == len(states)  # the rewards move
    assert len({s["text"][2][0] for s in states}) == 1  # the probability does not
    assert len({s["text"][3][0] for s in states}) == 1  # nor the loss
    assert states[0]["y"][2][0] == pytest.approx(1 / (1 + math.exp(-1.5)))


def test_dpo_loss_figure_is_dpo_loss_and_sigmoid_weight(figures):
    fig = figures["dpo-loss-margin"]
    margins = t(fig.data[0].x)
    beta = 0.1
    zeros = torch.zeros_like(margins)
    expected = losses.dpo_loss(margins / beta, zeros, zeros, zeros, beta=beta)
    assert close(fig.data[0].y, expected)
    assert close(fig.data[1].y, torch.sigmoid(-margins))  # the paper's weight sigma(r_l - r_w)
    zero_step = _slider_states(fig)[6]
    assert zero_step["x"][0] == [0.0]
    assert zero_step["y"][0][0] == pytest.approx(math.log(2))
    assert zero_step["y"][1][0] == pytest.approx(0.5)


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
    assert set(spec) == {"figure", "config", "palettes"}
    text = json.dumps(spec, allow_nan=False)  # strict JSON: NaN or an infinity would raise here
    assert json.loads(text) == spec
    # every number of the figure arrives as that number (Plotly writes a NaN as null)
    written = [value for _, value in leaves(spec["figure"]["data"])]
    held = [value for _, value in leaves(fig.to_plotly_json()["data"])]
    assert len(written) == len(held) > 100 and None not in written
    assert close(written, held, tol=1e-12)


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
