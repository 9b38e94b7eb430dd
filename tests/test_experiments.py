"""`dpo-ref reproduce --config smoke`: valid files with provenance, the same numbers twice,
and configurations whose every field is documented."""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import subprocess
import sys

import pytest
import torch

from dpo_ref.experiments import count_runs, get_config, reproduce
from dpo_ref.experiments import cli as experiments_cli

EXACT_FILES = ("exact_frontier", "exact_recovery", "exact_deterministic", "exact_ppo")
METHODS = {"dpo", "ipo", "cdpo", "hinge", "kto", "orpo", "simpo", "preferred-ft", "unlikelihood", "ppo", "ppo-gt"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    parser = argparse.ArgumentParser()
    experiments_cli.add_arguments(parser)
    args = parser.parse_args(["--config", "smoke", "--device", "cpu", "--out", str(out), "--only", "exact"])
    assert experiments_cli.main(args) == 0
    return {name: json.loads((out / "smoke" / f"{name}.json").read_text()) for name in EXACT_FILES}


def test_smoke_writes_every_file_with_provenance(smoke):
    for name, data in smoke.items():
        prov = data["provenance"]
        assert set(prov) >= {"config", "seeds", "versions", "device", "git_commit", "wall_time_s", "date", "command"}
        assert prov["config"]["name"] == "smoke"
        assert prov["versions"]["torch"] and prov["versions"]["transformers"] and prov["versions"]["dpo_ref"]
        assert prov["device"].startswith("cpu") and prov["wall_time_s"] > 0


def test_smoke_frontier_holds_every_method_against_the_optimum(smoke):
    frontier = smoke["exact_frontier"]
    optimal = frontier["optimal_frontier"]
    assert [p["kl"] for p in optimal] == sorted((p["kl"] for p in optimal), reverse=True)  # beta ascending
    assert {p["method"] for p in frontier["points"]} == METHODS
    for point in frontier["points"]:
        final = point["final"]
        assert final == point["trajectory"][-1] and final["kl"] >= -1e-9
        # nothing beats the optimal frontier at its own KL (up to float rounding)
        assert point["frontier_gap"] > -1e-6, point
    cfg = get_config("smoke").exact
    assert len([p for p in frontier["points"] if p["method"] == "dpo"]) == len(cfg.dpo_betas)
    assert frontier["matched_kl"] and all("dpo_reward_at_kl" in m for m in frontier["matched_kl"])
    assert 0 <= frontier["reward_model"]["pair_accuracy_under_reference"] <= 1


def test_smoke_recovery_deterministic_and_ppo_files(smoke):
    cfg = get_config("smoke").exact
    recovery = smoke["exact_recovery"]
    assert [r["n_pairs"] for r in recovery["per_n_pairs"]] == list(cfg.recovery_n_pairs)
    assert [r["beta"] for r in recovery["per_beta"]] == list(cfg.dpo_betas)
    det = smoke["exact_deterministic"]["runs"]
    assert [r["method"] for r in det] == ["dpo", "ipo"]
    assert det[0]["trajectory"][-1]["step"] == cfg.deterministic_steps
    ppo = smoke["exact_ppo"]["runs"]
    learned = [r for r in ppo if r["method"] == "ppo"]
    assert [r["params"]["seed"] for r in learned] == list(cfg.ppo_seeds)
    for run in ppo:
        steps = [f["step"] for f in run["trajectory"]]
        assert steps == list(range(0, cfg.ppo_steps + 1, cfg.ppo_eval_every))
        assert all({"reward", "score", "kl"} <= set(frame) for frame in run["trajectory"])
    # different seeds give different runs
    assert learned[0]["trajectory"][-1] != learned[1]["trajectory"][-1]


def test_same_config_and_seed_give_the_same_numbers(smoke, tmp_path):
    reproduce("smoke", device="cpu", out=tmp_path, groups=["exact"])
    for name, data in smoke.items():
        again = json.loads((tmp_path / "smoke" / f"{name}.json").read_text())
        again.pop("provenance")
        assert again == {k: v for k, v in data.items() if k != "provenance"}, name


def test_named_configs_and_unknown_names():
    for name in ("smoke", "cpu", "gpu"):
        cfg = get_config(name)
        assert cfg.name == name and count_runs(cfg, ["exact"]) > 10
    with pytest.raises(ValueError, match="unknown config"):
        get_config("laptop")


@pytest.mark.parametrize(
    "cls",
    [
        "dpo_ref.experiments.configs.ExactExperimentConfig",
        "dpo_ref.experiments.configs.ExperimentConfig",
        "dpo_ref.experiments.configs.SentimentConfig",
        "dpo_ref.worlds.exact.ExactWorldConfig",
        "dpo_ref.train.TrainConfig",
        "dpo_ref.train.PPOConfig",
    ],
)
def test_every_config_field_has_a_comment(cls):
    module_name, _, name = cls.rpartition(".")
    module = __import__(module_name, fromlist=[name])
    source = inspect.getsource(getattr(module, name))
    lines = source.splitlines()
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign):
            line = node.lineno - 1
            commented = "#" in lines[line] or lines[line - 1].strip().startswith("#")
            assert commented, f"{name}.{node.target.id} has no comment"


def _measured_numbers(data):
    """A results file without what depends on the machine's load: provenance, times, memory."""
    if isinstance(data, dict):
        return {k: _measured_numbers(v) for k, v in data.items()
                if k != "provenance" and not any(word in k for word in ("wall", "time", "peak", "rss"))}  # fmt: skip
    if isinstance(data, list):
        return [_measured_numbers(v) for v in data]
    return data


def test_groups_in_parallel_processes_give_the_same_numbers(tmp_path):
    """`--jobs 2` (what `make reproduce` runs) against one process running every group."""
    parallel, sequential = tmp_path / "parallel", tmp_path / "sequential"
    command = [sys.executable, "-m", "dpo_ref.cli", "reproduce", "--config", "smoke", "--device", "cpu",
               "--out", str(parallel), "--jobs", "2"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    written = reproduce("smoke", device="cpu", out=sequential)
    assert {p.name for p in written} >= {f"{name}.json" for name in EXACT_FILES} | {"sentiment_frontier.json"}
    for path in written:
        again = json.loads((parallel / "smoke" / path.name).read_text())
        assert _measured_numbers(again) == _measured_numbers(json.loads(path.read_text())), path.name
