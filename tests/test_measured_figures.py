"""The measured figures: built from the summaries, deterministic, finite, and equal to the files.

Each figure's plotted numbers are read back out of the Plotly figure and compared with
``exact_summary.json`` and ``sentiment_summary.json`` under docs/results/data/cpu/
(whatever configuration wrote them: the tests hold for smoke, cpu and gpu files alike).
A missing summary must stop every figure with the loader's one clear message.
"""

from __future__ import annotations

import json
import re

import plotly.graph_objects as go
import pytest
from figure_values import non_finite_values

import dpo_ref.results as results_module
from dpo_ref.analysis import interval
from dpo_ref.figures import FIGURES, build_figure, figure_function
from dpo_ref.figures.html import embed
from dpo_ref.figures.measured import common, ppo, studies
from dpo_ref.figures.measured import sentiment as sentiment_figures
from dpo_ref.figures.measured.common import label, log_ticks, means
from dpo_ref.results import RESULTS_DIR, ResultsFileError

MEASURED = [i for i, target in FIGURES.items() if ".measured." in target]
PLOTS = [i for i in MEASURED if not i.endswith("-table")]
TABLES = [i for i in MEASURED if i.endswith("-table")]
TOL = 1e-5


def summary(world: str) -> dict:
    return json.loads((RESULTS_DIR / "cpu" / f"{world}_summary.json").read_text(encoding="utf-8"))


def close(a, b, tol: float = TOL) -> bool:
    a, b = list(a), list(b)
    return len(a) == len(b) and all(abs(float(x) - float(y)) <= tol for x, y in zip(a, b))


def traces(fig: go.Figure, name: str) -> list:
    found = [t for t in fig.data if t.name == name]
    assert found, f"no trace named {name!r}: {sorted({t.name for t in fig.data})}"
    return found


@pytest.fixture(scope="module")
def figures() -> dict:
    return {figure_id: build_figure(figure_id) for figure_id in MEASURED}


# --------------------------------------------------------------------------- every measured figure


@pytest.mark.parametrize("figure_id", MEASURED)
def test_builds_and_is_deterministic(figure_id, figures):
    first = figures[figure_id]
    assert isinstance(first, str if figure_id in TABLES else go.Figure)
    assert embed(figure_id, first) == embed(figure_id, figure_function(figure_id)())


@pytest.mark.parametrize("figure_id", PLOTS)
def test_every_value_is_finite(figure_id, figures):
    assert non_finite_values(figures[figure_id]) == []


@pytest.mark.parametrize("figure_id", PLOTS)
def test_envelopes_run_in_kl_order_and_log_ticks_read_as_numbers(figure_id, figures):
    fig = figures[figure_id]
    for trace in fig.data:
        if (trace.name or "").endswith("envelope"):
            assert list(trace.x) == sorted(trace.x), f"{trace.name} zig-zags back in KL"
    for name, axis in fig.layout.to_plotly_json().items():
        if name.startswith(("xaxis", "yaxis")) and axis.get("type") == "log":
            values, text = axis["tickvals"], axis["ticktext"]
            assert 1 <= len(values) <= 8 and [float(t) for t in text] == pytest.approx(values)


def test_log_ticks_are_whole_numbers_in_a_few_steps():
    assert log_ticks(0.04, 0.6) == ([0.05, 0.1, 0.2, 0.5], ["0.05", "0.1", "0.2", "0.5"])
    assert log_ticks(400, 10000)[1] == ["500", "1000", "2000", "5000", "10000"]
    assert log_ticks(0.5, 1.3)[1] == ["0.5", "0.6", "0.8", "1"]  # under a decade: more mantissas
    with pytest.raises(ValueError):
        log_ticks(0, 1)


@pytest.mark.parametrize("figure_id", TABLES)
def test_tables_are_named_and_scroll_on_a_phone(figure_id, figures):
    html = figures[figure_id]
    assert html.startswith('<div class="md-typeset__scrollwrap">') and '<table aria-label="' in html
    assert "nan" not in html.lower().replace("nans", "")


# --------------------------------------------------------------------------- a missing summary


@pytest.fixture
def empty_results(tmp_path, monkeypatch):
    monkeypatch.setattr(results_module, "RESULTS_DIR", tmp_path)
    return tmp_path


@pytest.mark.parametrize("figure_id", MEASURED)
def test_a_missing_summary_is_one_clear_error(figure_id, empty_results):
    with pytest.raises(ResultsFileError, match=r"_summary\.json: is missing; run `dpo-ref reproduce --config cpu`"):
        build_figure(figure_id)


def test_a_stale_summary_names_the_missing_key(empty_results):
    (empty_results / "cpu").mkdir()
    (empty_results / "cpu" / "exact_summary.json").write_text(json.dumps({"provenance": {}, "methods": {}}))
    with pytest.raises(ResultsFileError, match=r"exact_summary\.json: has no key\(s\) \['seeds'"):
        build_figure("measured-exact-frontier")


# --------------------------------------------------------------------------- the exact world


def test_frontier_settings_and_envelopes_are_the_summary(figures):
    data = summary("exact")
    fig = figures["measured-exact-frontier"]
    for method, entry in data["methods"].items():
        settings, envelope = traces(fig, label(method))[0], traces(fig, f"{label(method)} envelope")[0]
        assert close(settings.x, means(r["kl"] for r in entry["settings"]))
        assert close(settings.y, means(r["reward"] for r in entry["settings"]))
        assert close(settings.error_y.array, [r["reward"]["high"] - r["reward"]["mean"] for r in entry["settings"]])
        drawn = [p for p in entry["envelope"] if p[0] > 0]  # trained points only: none at KL 0
        assert close(envelope.x, [p[0] for p in drawn]) and close(envelope.y, [p[1] for p in drawn])
        assert settings.visible is True if method in common.PAPER_METHODS else settings.visible == "legendonly"
    optimal = traces(fig, "optimal frontier π*<sub>β</sub>")[0]
    assert set(optimal.customdata) <= {round(p["beta"], 6) for p in data["optimal_frontier"]}


def test_failed_ppo_settings_are_not_drawn(figures):
    data = summary("exact")
    failed = {(f["method"], f["params"]["kl_coef"]) for f in data["failed"]}
    assert failed == {(row["method"], row["kl_coef"]) for row in data["ppo"] if ppo.failed(row)}
    fig = figures["measured-exact-frontier"]
    for method, kl_coef in failed:
        drawn = [c[0] for t in fig.data if t.name == label(method) for c in t.customdata]
        assert f"β = {kl_coef:g}" not in drawn


def test_kl_to_the_optimum_is_shown_only_for_dpo_and_ppo_gt(figures):
    data = summary("exact")
    assert {m for m, e in data["methods"].items() if "kl_to_optimum" in e["settings"][0]} <= {"dpo", "ppo-gt"}
    for row in re.findall(r"<tr><td>(.*?)</tr>", figures["measured-exact-settings-table"]):
        name, *_, last = row.split("</td><td>")
        assert (last == "—</td>") == (name not in (label("dpo"), label("ppo-gt"))), row


def test_matched_kl_is_the_paired_difference(figures):
    results = summary("exact")["matched_kl"]
    fig = figures["measured-matched-kl"]
    for other in ("ppo", "ppo-gt"):
        result = results.get(other)
        if result is None:
            assert all(t.name != f"DPO − {label(other)}" for t in fig.data)
            continue
        rows = result["points"]
        t = traces(fig, f"DPO − {label(other)}")[0]
        assert close(t.x, [r["kl"] for r in rows]) and close(t.y, means(r["difference"] for r in rows))
        assert all(result["low"] < r["kl"] < result["high"] for r in rows)


def test_variants_table_states_ipos_summed_tau(figures):
    data = summary("exact")
    length = data["provenance"]["config"]["exact"]["world"]["response_length"]
    html = figures["measured-exact-variants-table"]
    for row in data["methods"]["ipo"]["settings"]:
        tau = row["params"]["beta"]
        assert f"τ = {tau:g} (summed τ = {tau / length:.3g})" in html


def test_recovery_and_beta_sweep_are_the_summary(figures):
    data = summary("exact")
    fig = figures["measured-dpo-recovery"]
    (top,) = [t for t in fig.data if t.name == "DPO-trained policy"]
    assert close(top.y, means(r["kl_to_optimum"] for r in data["recovery"]["per_beta"]))
    for budget, words in (("updates", "updates for every size"), ("epochs", "epochs for every size")):
        (trace,) = [t for t in fig.data if t.name.endswith(words)]
        rows = [r for r in data["recovery"]["per_n_pairs"] if r["budget"] == budget]
        assert close(trace.x, [r["n_pairs"] for r in rows]) and len(rows) == 3
        assert close(trace.y, means(r["kl_to_optimum"] for r in rows))
    settings = sorted(data["methods"]["dpo"]["settings"], key=lambda r: r["params"]["beta"])
    reward, kl = [t for t in figures["measured-beta-sweep"].data if t.name == "DPO-trained policy"]
    assert close(reward.y, means(r["reward"] for r in settings)) and close(kl.y, means(r["kl"] for r in settings))


def test_over_optimisation_paths_are_the_summary(figures):
    study = summary("exact")["overoptimisation"]
    fig = figures["measured-overoptimisation"]
    for method, rows in study.items():
        for row in rows:
            name = f"{label(method)}, {common.params_text(row['params'], method)}"
            t = next(t for t in fig.data if (t.name or "").startswith(name))
            kept = [p for p in row["path"] if p["kl"]["mean"] > 0]
            assert close(t.x, means(p["kl"] for p in kept)) and close(t.y, means(p["reward"] for p in kept))
            assert t.name.endswith("(falls after its peak)") == row["over_optimised"]


def test_displacement_is_the_summary(figures):
    study = summary("exact")["displacement"]
    fig = figures["measured-displacement"]
    first = fig.layout.updatemenus[0].buttons[0]
    beta = first.label.split("= ")[1]
    assert beta == f"{study['beta']:g}"  # the menu opens on the studies' beta
    shown = [t for t, v in zip(fig.data, first.args[0]["visible"]) if v]
    trajectory = study["per_beta"][beta]["trajectory"]
    keys = [key for key, *_ in (*studies.MASS, *studies.LOGP)]
    for t, key in zip(shown, keys):
        assert close(t.y, means(p[key] for p in trajectory)), key


def test_online_shift_and_deterministic_are_the_summary(figures):
    data = summary("exact")
    path = data["online"]["online_path"]
    online = next(t for t in figures["measured-online-offline"].data if (t.name or "").startswith("online DPO"))
    assert close(online.x, means(p["kl"] for p in path)) and close(online.y, means(p["reward"] for p in path))
    shift = {t.name: t for t in figures["measured-distribution-shift"].data}
    assert close(shift["DPO after Preferred-FT"].y, [data["shift"]["dpo_after_preferred_ft"]["reward"]["mean"]])
    assert close(shift["DPO from π<sub>ref</sub>"].x, [data["shift"]["dpo"]["kl"]["mean"]])
    for method in ("dpo", "ipo"):
        trajectory = data["deterministic"][method]["trajectory"]
        low, high, mean = traces(figures["measured-deterministic"], label(method) + ", 95% interval") + [
            traces(figures["measured-deterministic"], label(method))[0]
        ]
        assert close(mean.y, means(p["kl"] for p in trajectory))
        assert close(low.y, [max(p["kl"]["low"], 0.0) for p in trajectory])  # a KL is never below 0
        assert close(high.y, [p["kl"]["high"] for p in trajectory])


def test_ppo_runs_are_the_trajectories_with_play_pause_reset_and_next_run(figures):
    data = summary("exact")
    setting = ppo.animated_setting(data)
    fig = figures["measured-ppo-runs"]
    seeds = sorted(setting["trajectories"], key=int)
    assert len(fig.data) == 3 * len(seeds)
    for i, seed in enumerate(seeds):
        trajectory = setting["trajectories"][seed]
        for j, key in enumerate(("reward", "score", "kl")):
            t = fig.data[3 * i + j]
            start = trajectory[0][key] if key != "kl" else 0.0
            assert close(t.y, [p[key] - start for p in trajectory][: len(t.y)]) and t.visible == (i == 0)
            assert f"seed {seed}" in t.name
    assert len(fig.layout.shapes) == 2  # the optimum at the run's KL coefficient, in both panels
    last = fig.frames[-1]
    assert close(last.data[0].y, fig.data[0].y)  # the last frame is the whole run
    # enough frames to watch: one per exact evaluation, after every rollout of PPO
    ran = data["provenance"]["config"]["exact"]  # what the runs were: 240 updates, 8 per rollout on cpu
    per_rollout = ran["ppo"]["ppo_epochs"] * ran["ppo"]["rollout_batch_size"] // ran["ppo"]["minibatch_size"]
    rollouts = ran["steps"] // per_rollout
    assert len(fig.frames) == rollouts + 1 == len(fig.data[0].x)
    controls = fig.layout.updatemenus
    assert [b.label for b in controls[0].buttons] == ["▶ Play", "❚❚ Pause", "⟲ Reset"]
    play = controls[0].buttons[0].args[1]
    assert play["frame"]["duration"] * (len(fig.frames) - 1) == pytest.approx(1000 * ppo.PLAY_SECONDS, rel=0.05)
    assert list(controls[0].buttons[2].args[0]) == ["k0"]
    # Next run: one button per run, naming the seed on screen (as the legend does) and showing the next
    shown = 0
    for _ in seeds:
        button = controls[1 + shown].buttons[0]
        assert button.label.startswith(f"Seed {seeds[shown]} (run {shown + 1} of {len(seeds)})")
        assert "next run" in button.label and controls[1 + shown].visible == (shown == 0)
        visible = list(button.args[0]["visible"])
        following = (shown + 1) % len(seeds)
        assert visible == [following * 3 <= t < following * 3 + 3 for t in range(len(fig.data))]
        assert button.args[1] == {
            f"updatemenus[{1 + shown}].visible": False,
            f"updatemenus[{1 + following}].visible": True,
        }
        shown = following
    assert shown == 0  # Next run cycles through every seed and back


def test_ppo_diagnostics_are_means_over_seeds(figures):
    for world, figure_id in (("exact", "measured-ppo-diagnostics"), ("sentiment", "sentiment-ppo-diagnostics")):
        row = summary(world)["ppo"][0]
        per_seed = list(row["diagnostics"].values())
        name = f"{label(row['method'])}, β = {row['kl_coef']:g}" + (" (failed)" if ppo.failed(row) else "")
        mean = next(t for t in figures[figure_id].data if t.name == name and t.hoverinfo != "skip")
        n = min(len(d) for d in per_seed)
        expected = [interval([d[k]["policy/approxkl"] for d in per_seed])["mean"] for k in range(n)]
        assert close(mean.y, expected)


# --------------------------------------------------------------------------- the sentiment world


def test_sentiment_frontier_win_rates_length_and_cost_are_the_summary(figures):
    data = summary("sentiment")
    frontier = figures["sentiment-frontier"]
    for method, entry in data["methods"].items():
        t = traces(frontier, label(method))[0]
        assert close(t.y, means(r["reward"] for r in entry["settings"]))
    assert not any(
        f["method"] in ("ppo", "ppo-gt")
        and f["method"] not in data["methods"]
        and any(t.name == label(f["method"]) for t in frontier.data)
        for f in data["failed"]
    )
    for method, per_t in data["win_rates"].items():
        t = next(t for t in figures["sentiment-win-rates"].data if t.name.startswith(label(method) + " ("))
        temperatures = sorted(per_t, key=float)
        assert close(t.x, [float(x) for x in temperatures])
        assert close(t.y, [100 * per_t[x]["win_rate"]["mean"] for x in temperatures], 1e-4)
    length = figures["sentiment-length"]
    for method, entry in data["methods"].items():
        t = traces(length, label(method))[0]
        assert close(t.x, means(r["length"] for r in entry["settings"]))
    ratios = data["cost"]["ratios_rlhf_over_dpo"]
    rlhf = traces(figures["sentiment-cost"], "RLHF: reward model + PPO")[0]
    assert close(rlhf.x, [ratios[k] for k, _ in sentiment_figures.COST if k in ratios])


def test_dpo_curves_are_means_over_seeds(figures):
    curves = summary("sentiment")["curves"]
    beta = sorted(curves, key=float)[0]
    fig = figures["sentiment-dpo-curves"]
    chosen = next(t for t in fig.data if t.name == "rewards/chosen" and t.hoverinfo != "skip")
    assert close(chosen.x, curves[beta]["step"]) and close(chosen.y, means(curves[beta]["rewards/chosen"]))


def test_kl_along_training_starts_at_pi_ref_and_ends_at_each_setting(figures):
    data = summary("sentiment")
    steps = data["provenance"]["config"]["sentiment"]["steps"]
    fig = figures["sentiment-kl-along-training"]
    for method, symbol in (("dpo", "β"), ("ipo", "τ")):
        settings = sorted(data["methods"][method]["settings"], key=lambda row: row["params"]["beta"])
        lines = [t for t in fig.data if t.legendgroup == method]
        assert [t.name for t in lines] == [f"{label(method)}, {symbol} = {row['params']['beta']:g}" for row in settings]
        colours = [t.line.color for t in lines]
        assert len(set(colours)) == len(settings)  # an ordered parameter in ordered colours, one each
        for trace, row in zip(lines, settings):
            assert close(trace.x, [0, *(p["step"] for p in row["trajectory"]), steps])
            assert close(trace.y, [0.0, *means(p["kl"] for p in row["trajectory"]), row["kl"]["mean"]])
