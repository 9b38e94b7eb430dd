"""The benchmarks compute what they claim: equal losses, a written table, robust parts.

Nothing here is timed: the benchmark's numbers are measurements, not pass/fail tests.
"""

import argparse
import json
import re

import pytest

from benchmarks import reproduction, run, site


def bench_args(tmp_path, **overrides):
    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    args = parser.parse_args([])
    args.out_dir = str(tmp_path / "results")
    args.results_data = str(tmp_path / "data")
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


@pytest.mark.slow
def test_quick_bench_runs_end_to_end_with_equal_losses(tmp_path, capsys):
    """--quick, a few steps: both trainers run in their own process on the same batches."""
    # one thread: on a shared 2-core machine two threads per run only fight each other
    args = bench_args(tmp_path, quick=True, steps=3, threads=1, parts="training,rollouts,reproduction")
    assert run.main(args) == 0

    training = json.loads((tmp_path / "results" / "training.json").read_text())
    assert training["trl_tokens_match"]  # TRL's own tokenization gave dpo_ref's ids
    assert training["max_loss_diff"] <= 1e-5
    for trainer in ("dpo_ref", "trl"):
        result = training["trainers"][trainer]
        assert len(result["losses"]) == 3
        assert result["losses"][0] == pytest.approx(0.693147, abs=1e-6)  # policy == reference at step 1
        assert result["tokens_per_s"] > 0 and result["peak_rss_bytes"] > 0
        assert 0 < result["mfu"] < 1 and sum(result["phases"].values()) == pytest.approx(1.0)
        assert result["phases"]["forward"] > 0 and result["phases"]["optimizer"] > 0
    # the shared prompt runs once: dpo_ref's blocks compute fewer positions per step than TRL's
    assert training["trainers"]["dpo_ref"]["positions_per_step"] < training["trainers"]["trl"]["positions_per_step"]

    rollouts = json.loads((tmp_path / "results" / "rollouts.json").read_text())
    assert rollouts["identical_samples_last_run"]  # the cache changes the speed, not the samples
    assert rollouts["tokens_per_s_after"] > 0 and rollouts["tokens_per_s_before"] > 0
    rows = json.loads((tmp_path / "results" / "summary.json").read_text())["rows"]
    assert {"figure", "measured"} <= set(rows[0])
    assert "throughput, dpo_ref / TRL" in capsys.readouterr().out


def write_result(path, provenance):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"value": 1, "provenance": provenance}))


def test_reproduction_times_sum_distinct_groups(tmp_path):
    data = tmp_path / "data"
    exact = {"config": {"name": "cpu"}, "wall_time_s": 300.0, "date": "2026-11-26T10:00:00+00:00", "device": "cpu"}
    write_result(data / "cpu" / "exact_frontier.json", exact)
    write_result(data / "cpu" / "exact_ppo.json", exact)  # same group: counted once
    write_result(data / "sentiment_cpu.json", {"config": "cpu", "wall_time_s": 120.0, "device": "cpu"})
    write_result(data / "gpu" / "exact_frontier.json", {**exact, "config": {"name": "gpu"}, "wall_time_s": 60.0})
    (data / "notes.json").write_text("{}")  # no provenance: skipped
    read = reproduction.read(data)
    assert read["configs"]["cpu"]["wall_time_s"] == 420.0
    assert read["configs"]["cpu"]["groups"] == 2 and read["configs"]["cpu"]["files"] == 3
    assert read["configs"]["cpu"]["sequential_by_world_s"] == {"exact": 300.0, "sentiment": 120.0}
    assert read["configs"]["gpu"]["wall_time_s"] == 60.0
    assert read["skipped_files"] == [str(data / "notes.json")]
    assert reproduction.read(tmp_path / "missing")["configs"] == {}


def test_reproduction_time_counts_the_parts_of_a_seed_when_each_ran(tmp_path):
    """A seed's parts may run apart (``--jobs 2``): the time covered is each part's own interval, not the seed's sum."""
    data = tmp_path / "data"
    parts = {
        "frontier": {"wall_time_s": 300.0, "date": "2026-11-26T10:05:00+00:00"},
        "studies": {"wall_time_s": 100.0, "date": "2026-11-26T10:20:00+00:00"},
    }
    seed = {"config": {"name": "cpu"}, "wall_time_s": 400.0, "date": "2026-11-26T10:20:00+00:00", "parts": parts}
    write_result(data / "cpu" / "exact_seed0.json", seed)
    other = {"config": {"name": "cpu"}, "wall_time_s": 900.0, "date": "2026-11-26T10:15:00+00:00"}
    write_result(data / "cpu" / "sentiment_seed0.json", other)  # 10:00 to 10:15, beside the frontier
    read = reproduction.read(data)["configs"]["cpu"]
    assert read["wall_time_s"] == 900.0 + 100.0  # 10:00-10:15, then the studies' 10:18:20-10:20
    assert read["sequential_s"] == 1300.0


def test_site_without_mkdocs_yml_is_not_measured(tmp_path):
    result = site.measure(tmp_path)
    assert result["build"]["status"] == "not measured"
    assert result["page"]["status"] == "not measured"


def test_table_without_measurements_says_not_measured(tmp_path):
    results = {"reproduction": reproduction.read(tmp_path / "none"), "site": site.measure(tmp_path)}
    rows = run.table_rows(results)
    by_name = {row["figure"]: row for row in rows}
    assert by_name["reproduction, gpu config"]["measured"] == "not measured"
    assert by_name["site build time (mkdocs build)"]["measured"].startswith("not measured")
    assert "met" not in by_name["throughput, dpo_ref / TRL"]


def test_goals_are_judged_in_the_right_direction():
    results = {
        "reproduction": {"configs": {"cpu": {"wall_time_s": 30 * 60}, "gpu": {"wall_time_s": 60}}},
    }
    by_name = {row["figure"]: row for row in run.table_rows(results)}
    assert by_name["reproduction, cpu config"]["met"] is False  # 30 min against < 25 min
    assert by_name["reproduction, gpu config"]["met"] is True
    assert by_name["reproduction, cpu config"]["ratio"] == pytest.approx(1.2)
    assert "**no**" in run.render_table(run.table_rows(results))


def test_the_playground_row_meets_its_goal_only_without_long_tasks():
    def row(long_tasks, longest):
        page = {"status": "ok", "path": "p/index.html", "bytes": 1, "gzip_bytes": 1, "ready_ms": 1}
        page["playground"] = {"long_tasks": long_tasks, "longest_task_ms": longest}
        rows = run.table_rows({"site": {"page": page}})
        return next(r for r in rows if r["figure"].startswith("playground"))

    quiet, stalled = row(0, 0.0), row(1, 63.4)
    assert (quiet["measured"], quiet["goal"], quiet["met"]) == ("0 (longest 0 ms)", "≤ 0", True)
    assert (stalled["measured"], stalled["met"]) == ("1 (longest 63 ms)", False)
    older = run.table_rows({"site": {"page": {"status": "ok", "path": "p/index.html", "bytes": 1, "ready_ms": 1}}})
    assert next(r for r in older if r["figure"].startswith("playground"))["measured"].startswith("not measured")


def test_page_weight_counts_the_served_files(tmp_path):
    """Sizes come from the files behind the fetched addresses, read after the page is drawn."""
    (tmp_path / "page").mkdir()
    (tmp_path / "page" / "index.html").write_text("<html></html>")
    (tmp_path / "app.js").write_text("x" * 100)
    assert site._served_file(tmp_path, "http://127.0.0.1:1/page/") == tmp_path / "page" / "index.html"
    assert site._served_file(tmp_path, "http://127.0.0.1:1/app.js?v=2") == tmp_path / "app.js"
    assert site._served_file(tmp_path, "http://127.0.0.1:1/missing.js") is None
    assert 0 < site._gzipped_size(tmp_path / "app.js") < 100


def test_scaling_points_span_1m_to_25m_parameters_in_both_regimes():
    from benchmarks.flops import model_params
    from benchmarks.scaling import POINTS, workload_of

    sizes = {p.name: model_params(p.n_layer, p.n_embd, 512, 128) for p in POINTS}
    assert 0.8e6 <= min(sizes.values()) <= 1.2e6 and 24e6 <= max(sizes.values()) <= 27e6
    assert {p.regime for p in POINTS} == {"short", "chat"} and len(POINTS) == 6
    for point in POINTS:
        workload = workload_of(point)
        assert workload.n_pairs == point.batch_size * point.steps and workload.n_embd % workload.n_head == 0


def test_chat_regime_has_chat_like_lengths():
    from benchmarks.workload import build_tokenizer, preference_pairs

    pairs = preference_pairs(64, 0, "chat")
    tokenizer = build_tokenizer(preference_pairs(512, 0, "chat"), 512)
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    prompts = [count(p["prompt"]) for p in pairs]
    completions = [count(p[side]) for p in pairs for side in ("chosen", "rejected")]
    assert 120 <= sum(prompts) / len(prompts) <= 180  # prompts of about 150 tokens
    assert min(completions) >= 80 and max(completions) <= 260  # completions of about 100 to 250


def test_performed_flops_by_hand():
    from benchmarks.flops import model_params, performed_flops

    # one forward call on 2 rows x 3 positions of a 1-layer, width-4 model, vocabulary 10, 5 projected positions
    work = {"blocks": [(2, 3)], "head_positions": 5}
    blocks = 2 * 3 * (2 * 12 * 1 * 4 * 4 + 4 * 1 * 4 * 3)  # 2P per position + attention's 4 L d T
    head = 2 * 10 * 4 * 5
    assert performed_flops(work, 1, 4, 10) == 3 * (blocks + head)
    # GPT-2's parameters, counted by hand for 1 layer, width 4, vocabulary 10, 8 positions:
    # attention 4*(3*4) + 3*4 + 4*4 + 4, MLP 4*16 + 16 + 16*4 + 4, two layer norms 16, embeddings (10 + 8) * 4, ln_f 8
    by_hand = (48 + 12 + 16 + 4) + (64 + 16 + 64 + 4) + 16 + 18 * 4 + 8
    assert model_params(1, 4, 10, 8) == by_hand
    from dpo_ref.models import tiny_gpt2

    assert model_params(2, 16, 30, 12) == sum(
        p.numel() for p in tiny_gpt2(30, n_layer=2, n_embd=16, n_head=2, n_positions=12).parameters()
    )


def test_block_params_are_the_matrices_of_the_benchmark_model():
    """FLOPs' 2 P per position: P the weights of the blocks' matrix products, counted on the real model."""
    from benchmarks.flops import block_params
    from benchmarks.workload import Workload, build_model

    workload = Workload(n_layer=2, n_embd=32, n_head=4, n_positions=32)
    model = build_model(workload, {"vocab_size": 50, "eos_token_id": 49, "pad_token_id": 0})
    # per block: attention c_attn 32 x 96 and c_proj 32 x 32, MLP c_fc 32 x 128 and c_proj 128 x 32
    per_block = 32 * 96 + 32 * 32 + 32 * 128 + 128 * 32
    matrices = [p for name, p in model.transformer.h.named_parameters() if name.endswith(".weight") and p.ndim == 2]
    assert sum(p.numel() for p in matrices) == 2 * per_block == block_params(2, 32)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()  # the head is tied: V d once


def _trainer(tokens_per_s, mfu):
    phases = {"forward": 0.5, "backward_and_rest": 0.4, "optimizer": 0.1}
    return {"tokens_per_s": tokens_per_s, "peak_rss_bytes": 300 * 2**20, "mfu": mfu, "phases": phases}


def _scaling_point(name, regime, n_params, runs):
    point = {"name": name, "regime": regime, "n_params": n_params, "batch_size": 4, "steps": 6}
    return {
        "point": point,
        "steps": 6,
        "speedup": sorted(runs)[len(runs) // 2],
        "speedup_runs": runs,
        "max_loss_diff": 3e-7,
        "trainers": {"dpo_ref": _trainer(2000.0, 0.2), "trl": _trainer(1000.0, 0.1)},
    }


@pytest.fixture
def bench_checkout(tmp_path, monkeypatch):
    """A checkout whose benchmarks/results/ holds a small scaling study (sizes written out of order) and a summary."""
    from dpo_ref import paths

    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    points = [
        _scaling_point("25M", "short", 25e6, [1.1, 1.2, 1.3]),
        _scaling_point("1M", "short", 1e6, [2.0, 2.4, 2.2]),
        _scaling_point("1M", "chat", 1e6, [3.0, 3.5, 3.1]),
    ]
    (results / "scaling.json").write_text(json.dumps({"points": points, "repeats": 3}))
    rows = [
        {"figure": "throughput, dpo_ref / TRL", "measured": "2.20x", "goal": "> 1.6x", "met": True},
        {"figure": "reproduction, cpu config", "measured": "30 min", "goal": "< 25 min", "met": False},
    ]
    (results / "summary.json").write_text(json.dumps({"rows": rows}))
    monkeypatch.setattr(paths, "require_checkout", lambda what: tmp_path)
    return results


def test_scaling_figure_has_one_line_per_regime_with_the_spread_over_runs(bench_checkout):
    from dpo_ref.figures.performance import scaling_ratio

    traces = scaling_ratio().data
    assert [trace.name.split(" ")[0] for trace in traces] == ["short", "chat-like"]
    short = traces[0]
    assert list(short.x) == [1.0, 25.0]  # sorted by size, whatever the file's order
    assert list(short.y) == [2.2, 1.2]
    # the bars reach from the slowest to the fastest run
    assert list(short.error_y.arrayminus) == pytest.approx([0.2, 0.1])
    assert list(short.error_y.array) == pytest.approx([0.2, 0.1])


def test_scaling_table_has_one_row_per_point(bench_checkout):
    from dpo_ref.figures.performance import scaling_table

    html = scaling_table()
    assert html.count("<tr>") == 1 + 3  # the header and one row per point
    assert "2.20× (2.00 to 2.40)" in html and "25.0 M" in html and "20% / 10%" in html


def test_summary_table_shows_every_row_and_marks_missed_goals(bench_checkout):
    from dpo_ref.figures.performance import summary_table

    html = summary_table()
    assert "throughput, dpo_ref / TRL" in html and "reproduction, cpu config" in html
    assert html.count("<strong>no</strong>") == 1
    assert not re.search(r"<th[^>]*></th>", html)  # a data cell under an empty header has no header


def test_missing_bench_results_name_the_file_and_make_bench(bench_checkout):
    from dpo_ref.errors import MissingFileError
    from dpo_ref.figures.performance import bench_results

    with pytest.raises(MissingFileError, match=r"rollouts\.json.*make bench"):
        bench_results("rollouts")


def test_mfu_divides_every_trainer_by_one_matmul_rate():
    """Each process times its own matmul; utilisation uses the median of all of them, for every trainer."""
    from benchmarks.training import with_common_mfu

    summary = {
        "dpo_ref": {"flops_per_s_runs": [30.0, 60.0], "matmul_flops_per_s_runs": [100.0, 200.0]},
        "trl": {"flops_per_s_runs": [45.0], "matmul_flops_per_s_runs": [150.0]},
    }
    assert with_common_mfu(summary) == 150.0
    assert summary["dpo_ref"]["mfu_runs"] == [0.2, 0.4] and summary["dpo_ref"]["mfu"] == pytest.approx(0.3)
    assert summary["trl"]["mfu"] == pytest.approx(0.3)  # the same work per second reads as the same utilisation
