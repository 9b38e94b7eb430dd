"""The benchmarks compute what they claim: equal losses, a written table, robust parts.

Nothing here is timed: the benchmark's numbers are measurements, not pass/fail tests.
"""

import argparse
import json

import pytest

from benchmarks import reproduction, run, site


def bench_args(tmp_path, **overrides):
    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    args = parser.parse_args([])
    args.out_dir = str(tmp_path / "results")
    args.page = str(tmp_path / "performance.md")
    args.results_data = str(tmp_path / "data")
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


@pytest.mark.slow
def test_quick_bench_runs_end_to_end_with_equal_losses(tmp_path, capsys):
    """--quick, a few steps: both trainers run in their own process on the same batches."""
    # one thread: on a shared 2-core machine two threads per run only fight each other
    args = bench_args(tmp_path, quick=True, steps=3, threads=1, parts="training,reproduction")
    assert run.main(args) == 0

    training = json.loads((tmp_path / "results" / "training.json").read_text())
    assert training["trl_tokens_match"]  # TRL's own tokenization gave dpo_ref's ids
    assert training["max_loss_diff"] <= 1e-5
    for trainer in ("dpo_ref", "trl"):
        result = training["trainers"][trainer]
        assert len(result["losses"]) == 3
        assert result["losses"][0] == pytest.approx(0.693147, abs=1e-6)  # policy == reference at step 1
        assert result["tokens_per_s"] > 0 and result["peak_rss_bytes"] > 0

    page = (tmp_path / "performance.md").read_text()
    assert "| figure | measured | goal |" in page
    assert "throughput, dpo_ref / TRL" in page
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
    assert read["configs"]["gpu"]["wall_time_s"] == 60.0
    assert read["skipped_files"] == [str(data / "notes.json")]
    assert reproduction.read(tmp_path / "missing")["configs"] == {}


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
        "reproduction": {"configs": {"cpu": {"wall_time_s": 25 * 60}, "gpu": {"wall_time_s": 60}}},
    }
    by_name = {row["figure"]: row for row in run.table_rows(results)}
    assert by_name["reproduction, cpu config"]["met"] is False  # 25 min against < 20 min
    assert by_name["reproduction, gpu config"]["met"] is True
    assert by_name["reproduction, cpu config"]["ratio"] == pytest.approx(1.25)
    assert "**no**" in run.render_table(run.table_rows(results))


def test_page_weight_counts_the_served_files(tmp_path):
    """Sizes come from the files behind the fetched addresses, read after the page is drawn."""
    (tmp_path / "page").mkdir()
    (tmp_path / "page" / "index.html").write_text("<html></html>")
    (tmp_path / "app.js").write_text("x" * 100)
    assert site._served_file(tmp_path, "http://127.0.0.1:1/page/") == tmp_path / "page" / "index.html"
    assert site._served_file(tmp_path, "http://127.0.0.1:1/app.js?v=2") == tmp_path / "app.js"
    assert site._served_file(tmp_path, "http://127.0.0.1:1/missing.js") is None
    assert 0 < site._gzipped_size(tmp_path / "app.js") < 100


def test_model_flops_per_token_is_palm_6n_plus_12ldt_with_n_counted_by_hand():
    """MFU's numerator: 6 N + 12 L d T, N the weights that do matrix products (blocks and tied LM head)."""
    from benchmarks.flops import model_flops_per_token
    from benchmarks.workload import Workload, build_model

    workload = Workload(n_layer=2, n_embd=32, n_head=4, n_positions=32)
    meta = {"vocab_size": 50, "eos_token_id": 49, "pad_token_id": 0}
    # by hand, per block: attention c_attn 32 x 96 and c_proj 32 x 32, MLP c_fc 32 x 128 and c_proj 128 x 32
    per_block = 32 * 96 + 32 * 32 + 32 * 128 + 128 * 32  # 12 d^2 = 12288
    n = 2 * per_block + 50 * 32  # two blocks and the LM head: 26176
    # the benchmark's model holds exactly those matrices (biases, norms and the position table aside)
    model = build_model(workload, meta)
    matrices = [p for name, p in model.transformer.h.named_parameters() if name.endswith(".weight") and p.ndim == 2]
    assert sum(p.numel() for p in matrices) + model.lm_head.weight.numel() == n
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()  # tied: counted once
    assert model_flops_per_token(workload, meta, 20.0) == 6 * n + 12 * 2 * 32 * 20.0  # 157056 + 15360
