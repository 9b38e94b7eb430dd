"""The measured figures: built from the committed results files, deterministic, and faithful to them.

Each figure's plotted numbers are read back out of the Plotly figure and compared with
the JSON files under docs/results/data/cpu/; each ``*-numbers`` block must quote the
file's numbers. A missing or corrupt results file must stop the figure with the clear
error of :func:`dpo_ref.results.load_results`, and a gpu file beside the cpu one must
show up as a second set of traces.
"""

from __future__ import annotations

import json
import shutil

import plotly.graph_objects as go
import pytest

import dpo_ref.results as results_module
from dpo_ref.figures import FIGURES, build_figure, figure_function
from dpo_ref.figures import measured_exact as mx
from dpo_ref.figures._util import fmt
from dpo_ref.figures.html import embed, figure_spec
from dpo_ref.results import RESULTS_DIR, ResultsFileError

MEASURED = [i for i, target in FIGURES.items() if ".measured_" in target]
EXACT_FILES = ("exact_frontier", "exact_recovery", "exact_deterministic", "exact_ppo")
SENTIMENT_FILES = ("sentiment_frontier", "sentiment_win_rates", "sentiment_curves", "sentiment_cost")
TOL = 1e-6


def cpu(name: str) -> dict:
    return json.loads((RESULTS_DIR / "cpu" / f"{name}.json").read_text(encoding="utf-8"))


def close(a, b, tol: float = TOL) -> bool:
    a, b = list(a), list(b)
    return len(a) == len(b) and all(abs(float(x) - float(y)) <= tol for x, y in zip(a, b))


def trace(fig: go.Figure, name_start: str) -> go.BaseTraceType:
    found = [t for t in fig.data if (t.name or "").startswith(name_start)]
    assert found, f"no trace named {name_start!r}: {[t.name for t in fig.data]}"
    return found[0]


@pytest.fixture(scope="module")
def figures() -> dict:
    return {figure_id: build_figure(figure_id) for figure_id in MEASURED}


# --------------------------------------------------------------------------- every measured figure


def test_the_exact_world_figures_are_registered():
    ids = set(MEASURED)
    for figure_id in ("measured-ppo-runs", "measured-exact-frontier", "measured-dpo-recovery", "measured-deterministic",
                      "measured-exact-variants", "measured-beta-sweep", "measured-matched-kl"):
        assert figure_id in ids and f"{figure_id}-numbers" in ids or figure_id == "measured-matched-kl"


@pytest.mark.parametrize("figure_id", MEASURED)
def test_builds_and_is_deterministic(figure_id, figures):
    first = figures[figure_id]
    assert isinstance(first, (go.Figure, str))
    assert embed(figure_id, first) == embed(figure_id, figure_function(figure_id)())
    if isinstance(first, go.Figure):
        json.dumps(figure_spec(first))  # plain JSON, no NaN


@pytest.mark.parametrize("figure_id", [i for i in MEASURED if not i.endswith("-numbers")])
def test_plots_are_measured_figures(figure_id, figures):
    fig = figures[figure_id]
    assert isinstance(fig, go.Figure)
    assert fig.layout.width is None and fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0


@pytest.mark.parametrize("figure_id", [i for i in MEASURED if i.endswith("-numbers")])
def test_numbers_blocks_say_what_was_run_and_link_the_data(figure_id, figures):
    html = figures[figure_id]
    assert isinstance(html, str)
    assert 'class="dpo-caption"' in html and "Run: <code>" in html
    assert 'href="../results/data/cpu/' in html
    prov = cpu(html.split('href="../results/data/cpu/')[1].split('.json"')[0])["provenance"]
    assert prov["device"] in html and (prov["git_commit"] or "unknown")[:12] in html


# --------------------------------------------------------------------------- exact world: numbers


def test_exact_frontier_points_are_the_files(figures):
    data = cpu("exact_frontier")
    fig = figures["measured-exact-frontier"]
    front = sorted(data["optimal_frontier"], key=lambda row: row["kl"])
    t = trace(fig, "optimal frontier")
    assert close(t.x, [row["kl"] for row in front]) and close(t.y, [row["reward"] for row in front])
    assert close(trace(fig, "reference").y, [data["world"]["reference_reward"]])
    for method in mx.PAPER_METHODS:
        runs = sorted((pt for pt in data["points"] if pt["method"] == method), key=lambda pt: pt["final"]["kl"])
        t = trace(fig, mx.label(method))
        assert close(t.x, [pt["final"]["kl"] for pt in runs]) and close(t.y, [pt["final"]["reward"] for pt in runs])
        assert t.line.color == mx.colour(method)
    variants = figures["measured-exact-variants"]
    for method in mx.VARIANT_METHODS:
        runs = sorted((pt for pt in data["points"] if pt["method"] == method), key=lambda pt: pt["final"]["kl"])
        assert close(trace(variants, mx.label(method)).y, [pt["final"]["reward"] for pt in runs])


def test_exact_frontier_numbers_quote_the_matched_kl_rows(figures):
    data = cpu("exact_frontier")
    html = figures["measured-exact-frontier-numbers"]
    for row in data["matched_kl"]:
        if row["dpo_reward_at_kl"] is not None:
            assert mx._signed(row["reward"] - row["dpo_reward_at_kl"]) in html
            assert fmt(row["kl"], 2) in html
    gt = [row["reward"] - row["dpo_reward_at_kl"] for row in data["matched_kl"] if row["method"] == "ppo-gt"]
    if all(d > 0 for d in gt):
        assert "PPO-GT, trained on the true reward, is above DPO" in html and "differs from the paper" in html


def test_matched_kl_bars_are_the_files(figures):
    rows = [row for row in cpu("exact_frontier")["matched_kl"] if row["dpo_reward_at_kl"] is not None]
    fig = figures["measured-matched-kl"]
    assert close(trace(fig, "PPO / PPO-GT run").y, [row["reward"] for row in rows])
    assert close(trace(fig, "DPO at the same KL").y, [row["dpo_reward_at_kl"] for row in rows])
    assert close(trace(fig, "optimum at the same KL").y, [row["optimal_reward_at_kl"] for row in rows])


def test_ppo_runs_animate_the_real_trajectories(figures):
    data = cpu("exact_ppo")
    fig = figures["measured-ppo-runs"]
    runs = data["runs"]
    assert len(runs) >= 3 + 1  # several PPO seeds and PPO-GT
    assert len(fig.data) == 3 * len(runs)
    for i, run in enumerate(runs):
        traj = run["trajectory"]
        for j, key in enumerate(("reward", "score", "kl")):
            t = fig.data[3 * i + j]
            assert list(t.x) == [row["step"] for row in traj]
            assert close(t.y, [row[key] for row in traj])
            assert t.visible == (i == 0)  # the first run is shown, the menu picks another
    # one frame per evaluation; frame k holds every run up to its k-th evaluation
    n = len(runs[0]["trajectory"])
    assert len(fig.frames) == n
    assert close(fig.frames[0].data[0].y, [runs[0]["trajectory"][0]["reward"]])
    assert close(fig.frames[-1].data[1].y, [row["score"] for row in runs[0]["trajectory"]])
    run_menu, play_menu = fig.layout.updatemenus
    assert len(run_menu.buttons) == len(runs) and all(b.label.startswith("run: ") for b in run_menu.buttons)
    labels = [b.label for b in play_menu.buttons]
    assert any("Play" in lab for lab in labels) and any("Pause" in lab for lab in labels)
    assert all(b.method == "animate" for b in play_menu.buttons)
    assert fig.layout.sliders[0].currentvalue.prefix.startswith("training step")


def test_ppo_numbers_follow_the_data(figures):
    data = cpu("exact_ppo")
    html = figures["measured-ppo-runs-numbers"]
    ppo = [run for run in data["runs"] if run["method"] == "ppo"]
    hacked = [mx.ppo_hacking(run)["hacking"] for run in ppo]
    assert ("No reward hacking in these runs" in html) == (not any(hacked))
    scores = [run["final"]["score"] for run in ppo]
    rewards = [run["final"]["reward"] for run in ppo]
    assert mx._span(scores) in html and mx._span(rewards) in html
    assert fmt(data["optimal_at_beta"]["reward"], 2) in html


def test_hacking_check_sees_a_made_up_hacked_run():
    steps = range(0, 1000, 100)
    run = {"trajectory": [{"step": s, "reward": 0.5 - s / 4000, "score": s / 1000} for s in steps]}
    assert mx.ppo_hacking(run)["hacking"]
    run = {"trajectory": [{"step": s, "reward": s / 2000, "score": s / 1000} for s in steps]}
    assert not mx.ppo_hacking(run)["hacking"]


def test_recovery_is_the_file(figures):
    data = cpu("exact_recovery")
    fig = figures["measured-dpo-recovery"]
    per_beta = sorted(data["per_beta"], key=lambda row: row["beta"])
    assert close(trace(fig, "DPO-trained policy").x, [row["beta"] for row in per_beta])
    assert close(trace(fig, "DPO-trained policy").y, [row["kl_to_optimum"] for row in per_beta])
    assert close(trace(fig, "reference π").y, [row["reference_kl_to_optimum"] for row in per_beta])
    per_n = sorted(data["per_n_pairs"], key=lambda row: row["n_pairs"])
    assert close(trace(fig, "DPO at β").y, [row["kl_to_optimum"] for row in per_n])
    html = figures["measured-dpo-recovery-numbers"]
    for row in per_n:
        assert f"{row['n_pairs']} pairs give {fmt(row['kl_to_optimum'], 2)}" in html


def test_deterministic_is_the_file(figures):
    data = cpu("exact_deterministic")
    fig = figures["measured-deterministic"]
    for run in data["runs"]:
        t = trace(fig, f"{mx.label(run['method'])}, β")
        assert list(t.x) == [row["step"] for row in run["trajectory"]]
        assert close(t.y, [row["kl"] for row in run["trajectory"]])
    html = figures["measured-deterministic-numbers"]
    for run in data["runs"]:
        assert fmt(run["final"]["kl"], 2) in html and fmt(run["final"]["reward"], 2) in html


def test_beta_sweep_is_the_file(figures):
    data = cpu("exact_frontier")
    fig = figures["measured-beta-sweep"]
    dpo = sorted((pt for pt in data["points"] if pt["method"] == "dpo"), key=lambda pt: pt["params"]["beta"])
    dpo_traces = [t for t in fig.data if t.name.startswith("DPO")]
    assert close(dpo_traces[0].y, [pt["final"]["reward"] for pt in dpo])
    assert close(dpo_traces[1].y, [pt["final"]["kl"] for pt in dpo])
    html = figures["measured-beta-sweep-numbers"]
    for pt in dpo:
        assert f"<td>{fmt(pt['final']['kl_to_optimum'], 3)}</td>" in html


# --------------------------------------------------------------------------- missing, corrupt, gpu


@pytest.fixture()
def results_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(results_module, "RESULTS_DIR", tmp_path)
    return tmp_path


@pytest.mark.parametrize("figure_id", [i for i in MEASURED if i.startswith("measured-")])
def test_a_missing_results_file_is_the_loaders_clear_error(figure_id, results_dir):
    with pytest.raises(ResultsFileError, match=r"is missing; run `dpo-ref reproduce --config cpu` to write it"):
        build_figure(figure_id)


def test_a_truncated_results_file_is_a_clear_error(results_dir):
    (results_dir / "cpu").mkdir()
    text = (RESULTS_DIR / "cpu" / "exact_ppo.json").read_text(encoding="utf-8")
    (results_dir / "cpu" / "exact_ppo.json").write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(ResultsFileError, match="exact_ppo.json: is not valid JSON"):
        build_figure("measured-ppo-runs")


def test_a_gpu_file_beside_the_cpu_file_is_drawn_too(results_dir):
    for config in ("cpu", "gpu"):
        (results_dir / config).mkdir()
        for name in EXACT_FILES:
            shutil.copy(RESULTS_DIR / "cpu" / f"{name}.json", results_dir / config / f"{name}.json")
    one = build_figure("measured-exact-frontier")
    assert len(one.data) % 2 == 0
    menu = one.layout.updatemenus[-1]
    assert [b.label for b in menu.buttons] == ["results: cpu configuration", "results: gpu configuration"]
    half = len(one.data) // 2
    assert all(t.visible is not False for t in one.data[:half]) and all(t.visible is False for t in one.data[half:])
    ppo = build_figure("measured-ppo-runs")
    assert len(ppo.layout.updatemenus[0].buttons) == 2 * len(cpu("exact_ppo")["runs"])
    assert "gpu configuration" in build_figure("measured-ppo-runs-numbers")
    assert 'href="../results/data/gpu/exact_ppo.json"' in build_figure("measured-ppo-runs-numbers")


def test_every_measured_figure_builds_with_gpu_files_beside(results_dir):
    for config in ("cpu", "gpu"):
        (results_dir / config).mkdir()
        for path in (RESULTS_DIR / "cpu").glob("*.json"):
            shutil.copy(path, results_dir / config / path.name)
    for figure_id in MEASURED:
        fig = build_figure(figure_id)
        if isinstance(fig, str):
            assert "gpu configuration" in fig and 'href="../results/data/gpu/' in fig
        else:
            labels = [b.label for menu in fig.layout.updatemenus for b in menu.buttons]
            assert any("gpu" in lab for lab in labels), figure_id


# --------------------------------------------------------------------------- sentiment world

from dpo_ref.figures import measured_sentiment as ms  # noqa: E402

HAVE_SENTIMENT = all((RESULTS_DIR / "cpu" / f"{name}.json").exists() for name in SENTIMENT_FILES)
needs_sentiment = pytest.mark.skipif(not HAVE_SENTIMENT, reason="no committed sentiment results")


@needs_sentiment
def test_sentiment_figures_are_registered():
    for figure_id in ("sentiment-frontier", "sentiment-win-rates", "sentiment-dpo-curves", "sentiment-variants",
                      "sentiment-cost", "sentiment-matched-kl"):
        assert figure_id in MEASURED and f"{figure_id}-numbers" in MEASURED


@needs_sentiment
def test_sentiment_frontier_points_are_the_file(figures):
    data = cpu("sentiment_frontier")
    for figure_id, methods in (("sentiment-frontier", ms.PAPER_METHODS), ("sentiment-variants", ms.VARIANT_METHODS)):
        fig = figures[figure_id]
        assert close(trace(fig, "reference").y, [data["world"]["reference"]["reward"]["mean"]])
        for method in methods:
            runs = sorted((x for x in data["runs"] if x["method"] == method), key=lambda x: x["kl"]["mean"])
            t = trace(fig, mx.label(method))
            assert close(t.x, [x["kl"]["mean"] for x in runs]) and close(t.y, [x["reward"]["mean"] for x in runs])
            assert close(t.error_y.array, [x["reward"]["stderr"] for x in runs])
            # the file's own frontier key says the same
            assert close([kl for kl, _ in data["frontier"][method]], t.x)


@needs_sentiment
def test_sentiment_win_rates_are_the_file(figures):
    data = cpu("sentiment_win_rates")
    fig = figures["sentiment-win-rates"]
    for method, entry in data["methods"].items():
        t = trace(fig, mx.label(method) + " (")
        temps = sorted(entry["by_temperature"], key=float)
        assert close(t.x, [float(x) for x in temps])
        assert close(t.y, [100 * entry["by_temperature"][x]["win_rate"] for x in temps], 1e-4)


@needs_sentiment
def test_sentiment_curves_use_trl_names_and_the_file(figures):
    data = cpu("sentiment_curves")
    fig = figures["sentiment-dpo-curves"]
    betas = sorted(data["dpo"], key=float)
    assert len(fig.layout.updatemenus[0].buttons) == len(betas)
    per_run = len(fig.data) // len(betas)
    for i, beta in enumerate(betas):
        for t in fig.data[i * per_run:(i + 1) * per_run]:
            assert t.name in data["dpo"][beta]  # TRL's metric names
            assert list(t.x) == data["dpo"][beta]["step"] and close(t.y, data["dpo"][beta][t.name])
    html = figures["sentiment-dpo-curves-numbers"]
    for beta in betas:
        assert fmt(data["dpo"][beta]["rewards/chosen"][-1], 2) in html
    if any(data["dpo"][b]["rewards/chosen"][-1] < 0 for b in betas):
        assert "The chosen reward goes down" in html


@needs_sentiment
def test_sentiment_cost_is_the_file(figures):
    data = cpu("sentiment_cost")
    fig = figures["sentiment-cost"]
    ratios = trace(fig, "RLHF").x
    assert close(ratios, [data["rlhf"][key] / data["dpo"][key] for key, _, _, _ in ms.COST_ROWS])
    html = figures["sentiment-cost-numbers"]
    assert f"<td>{data['rlhf']['models_in_memory']:g}</td>" in html and f"<td>{data['dpo']['samples_generated']:g}</td>" in html


@needs_sentiment
def test_sentiment_matched_kl_is_the_file(figures):
    data = cpu("sentiment_frontier")
    fig = figures["sentiment-matched-kl"]
    for other in ("ppo", "ppo-gt"):
        rows = [row for row in data["matched_kl"][other] if row["difference"] is not None]
        t = trace(fig, f"DPO − {mx.label(other)}")
        assert close(t.x, [row["kl"] for row in rows]) and close(t.y, [row["difference"] for row in rows])


@pytest.mark.parametrize("figure_id", [i for i in MEASURED if i.startswith("sentiment-")])
def test_sentiment_figures_fail_clearly_without_their_file(figure_id, results_dir):
    with pytest.raises(ResultsFileError, match=r"sentiment_\w+\.json: is missing; run `dpo-ref reproduce --config cpu`"):
        build_figure(figure_id)
