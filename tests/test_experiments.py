"""`dpo-ref reproduce --config smoke`: seed files and summaries with provenance, the same numbers
when a seed runs again, claims that follow their intervals, and configurations whose every
field is documented."""

from __future__ import annotations

import ast
import inspect
import json
import math

import pytest
from conftest import without_timings

from dpo_ref.errors import UnknownNameError, UserError
from dpo_ref.experiments import count_runs, get_config, reproduce
from dpo_ref.experiments.exact_runner import TARGETS_OPTIMUM

SMOKE = get_config("smoke")


def test_every_file_has_provenance(smoke_run):
    files, _ = smoke_run
    expected = {f"{g}_seed{s}" for g in ("exact", "sentiment") for s in SMOKE.exact.seeds}
    assert set(files) == expected | {"exact_summary", "sentiment_summary"}
    for name, data in files.items():
        prov = data["provenance"]
        assert set(prov) >= {"config", "seeds", "versions", "device", "git_commit", "wall_time_s", "date", "command"}
        assert prov["config"]["name"] == "smoke" and prov["versions"]["torch"] and prov["wall_time_s"] > 0
        if name.endswith("summary"):
            assert prov["seeds"] == {"seeds": list(SMOKE.exact.seeds)}  # what the summary read
        else:
            assert prov["seeds"] == {"seed": int(name[-1])}


def test_exact_seed_files_hold_every_run_measured_exactly(smoke_run):
    files, _ = smoke_run
    cfg = SMOKE.exact
    for seed in cfg.seeds:
        data = files[f"exact_seed{seed}"]
        offline = [(r["method"], r["params"]) for r in data["runs"] if "objective" not in r]
        assert offline == _expected_offline_runs(cfg.grids)
        for record in data["runs"]:
            assert record["seed"] == seed and record["final"] == record["trajectory"][-1]
            # nothing beats the exact optimum at its own KL (float rounding aside)
            assert record["optimal_reward_at_kl"] - record["final"]["reward"] > -1e-6, record["method"]
            assert ("kl_to_optimum" in record["final"]) == (record["method"] in TARGETS_OPTIMUM)
        ppo = [r for r in data["runs"] if "objective" in r]
        assert sorted({r["method"] for r in ppo}) == ["ppo", "ppo-gt"]
        for record in ppo:
            start, end = record["objective"]["start"], record["objective"]["end"]
            assert record["objective"]["rose"] == (end > start + 1e-9)
            assert {"policy/approxkl", "policy/clipfrac", "loss/value", "policy/entropy"} <= set(
                record["diagnostics"][-1]
            )
            # evaluated after every rollout (the animation), compared on every other method's grid
            rollout = cfg.ppo.updates_per_rollout()
            assert [p["step"] for p in record["every_rollout"]] == list(range(0, cfg.steps + 1, rollout))
            assert record["trajectory"] == [p for p in record["every_rollout"] if p["step"] % cfg.eval_every == 0]
            assert rollout < cfg.eval_every  # so the two differ
        assert set(data["studies"]) == {"recovery", "deterministic", "online", "shift"}


def _expected_offline_runs(grids: dict) -> list[tuple[str, dict]]:
    """Each offline method's runs, written out here rather than read from the registry: the swept hyperparameter
    at each grid value, SimPO's gamma at half its beta, Preferred-FT's learning-rate multiple, the rest at their
    defaults (cDPO's label smoothing 0.1, KTO's weights 1, DPOP's lambda 50)."""
    swept = {"orpo": "lam", "unlikelihood": "alpha"}
    defaults = {
        "cdpo": {"label_smoothing": 0.1},
        "kto": {"desirable_weight": 1.0, "undesirable_weight": 1.0},
        "dpop": {"lam": 50.0},
    }
    out = []
    for name, values in grids.items():
        for v in values if name not in ("ppo", "ppo-gt") else ():
            if name == "preferred-ft":
                out.append((name, {"lr_scale": v}))
            else:
                params = {swept.get(name, "beta"): v, **defaults.get(name, {})}
                out.append((name, {**params, "gamma": v / 2} if name == "simpo" else params))
    return out


def test_exact_summary_claims_follow_the_intervals(smoke_run):
    files, _ = smoke_run
    summary = files["exact_summary"]
    failed = {(f["method"], tuple(sorted(f["params"].items()))) for f in summary["failed"]}
    for row in summary["ppo"]:  # a setting is failed exactly when some seed's objective did not rise
        is_failed = (row["method"], (("kl_coef", row["kl_coef"]),)) in failed
        assert is_failed == (row["rose_in_seeds"] != row["seeds"])
        for seed, path in row["trajectories"].items():  # what the animation plays: every rollout's evaluation
            runs = files[f"exact_seed{seed}"]["runs"]
            record = next(r for r in runs if r["method"] == row["method"] and r["params"]["kl_coef"] == row["kl_coef"])
            assert path == record["every_rollout"]
    for method in summary["methods"].values():
        kls = [point[0] for point in method["envelope"]]
        assert kls == sorted(kls) and kls[0] > 0  # trained policies only: no envelope starts at pi_ref
        rewards = [point[1] for point in method["envelope"]]
        assert rewards == sorted(rewards)  # an envelope only rises
        for row in method["settings"]:
            assert row["reward"]["low"] <= row["reward"]["mean"] <= row["reward"]["high"]
    for other, result in summary["matched_kl"].items():
        if result is None:
            continue
        d = result["mean_difference"]
        expected = "ahead" if d["low"] > 0 else "behind" if d["high"] < 0 else "level"
        assert result["verdict"] == expected, other


def test_a_seed_run_again_gives_the_same_numbers(smoke_run, tmp_path):
    """One seed of each group, again, in this process: what the parallel run wrote, number for number."""
    files, _ = smoke_run
    reproduce("smoke", device="cpu", out=tmp_path, seeds=[SMOKE.exact.seeds[0]], summarise=False)
    for group in ("exact", "sentiment"):
        again = (tmp_path / "smoke" / f"{group}_seed0.json").read_text()
        assert without_timings(json.loads(again)) == without_timings(files[f"{group}_seed0"]), group


def test_named_configs_and_unknown_names():
    for name in ("smoke", "cpu", "gpu"):
        cfg = get_config(name)
        assert cfg.name == name and count_runs(cfg, ["exact"]) > 10
        assert len(cfg.exact.seeds) >= (3 if name != "smoke" else 2) and len(cfg.sentiment.seeds) == len(
            cfg.exact.seeds
        )
    assert len(get_config("gpu").exact.seeds) == 5
    with pytest.raises(UnknownNameError, match="unknown config"):
        get_config("laptop")
    with pytest.raises(UnknownNameError, match="seed 7 is not a seed of the smoke configuration"):
        reproduce("smoke", device="cpu", seeds=[7])
    from dpo_ref.experiments.configs import ExactExperimentConfig, SentimentConfig

    with pytest.raises(UserError, match=r"beta \(0.3\) must be in grids\['dpo'\]"):
        ExactExperimentConfig(beta=0.3)
    with pytest.raises(UserError, match=r"every method needs as many values as the others.*'ipo': 2"):
        ExactExperimentConfig(grids={"dpo": (0.5,), "ipo": (0.5, 1.0)})
    with pytest.raises(UserError, match="unknown method 'dpo-typo'"):
        SentimentConfig(grids={"dpo-typo": (0.5,)})
    for name in ("smoke", "cpu", "gpu"):  # the same tuning budget for every method within a world
        cfg = get_config(name)
        assert (
            len({len(v) for v in cfg.exact.grids.values()}) == 1 == len({len(v) for v in cfg.sentiment.grids.values()})
        )


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


def test_online_and_shift_studies_are_paired_with_their_baselines(smoke_run):
    files, _ = smoke_run
    summary = files["exact_summary"]
    online = summary["online"]
    for quantity, entry in online["online_minus_offline"].items():
        assert math.isclose(
            entry["difference"]["mean"],
            online["online"][quantity]["mean"] - online["offline"][quantity]["mean"],
            abs_tol=1e-9,
        )
    shift = summary["shift"]
    assert shift["data_kl_to_reference"] > 0  # the pairs did come from another policy
    assert math.isclose(
        shift["after_minus_plain"]["reward"]["difference"]["mean"],
        shift["dpo_after_preferred_ft"]["reward"]["mean"] - shift["dpo"]["reward"]["mean"],
        abs_tol=1e-9,
    )


def test_a_world_is_trained_once_per_shared_folder(tmp_path, monkeypatch):
    """What `reproduce --jobs N` relies on: the second process loads the first one's reference, bit for bit."""
    import torch

    from dpo_ref.experiments import shared_worlds

    monkeypatch.setenv(shared_worlds.FOLDER_VARIABLE, str(tmp_path))
    monkeypatch.setattr(shared_worlds, "_in_memory", {})
    calls = []

    def train():
        calls.append(1)
        return {"state_dict": {"w": torch.randn(3, generator=torch.Generator().manual_seed(len(calls)))}, "loss": [1.5]}

    first = shared_worlds.trained_once("world", {"size": 1}, train)
    shared_worlds._in_memory.clear()  # as a second process starts: nothing in memory, the file in the folder
    second = shared_worlds.trained_once("world", {"size": 1}, train)
    assert calls == [1] and torch.equal(first["state_dict"]["w"], second["state_dict"]["w"]) and second["loss"] == [1.5]
    shared_worlds.trained_once("world", {"size": 2}, train)  # other settings: another world, trained
    assert calls == [1, 1]


def test_parts_are_ordered_by_their_last_wall_time(tmp_path):
    """`reproduce --jobs 2` starts the longest parts first: as timed last run, by share of an older seed file's time,
    and a part never timed first of all."""
    from dpo_ref.experiments import group
    from dpo_ref.experiments.cli import _last_wall_time

    parts = {
        "offline": {"wall_time_s": 250.0, "date": "2026-12-01T00:00:00+00:00"},
        "rlhf": {"wall_time_s": 310.0, "date": "2026-12-01T00:00:00+00:00"},
    }
    (tmp_path / "sentiment_seed0.json").write_text(json.dumps({"provenance": {"wall_time_s": 560.0, "parts": parts}}))
    (tmp_path / "exact_seed0.json").write_text(json.dumps({"provenance": {"wall_time_s": 400.0}}))  # before parts
    assert _last_wall_time(tmp_path, "sentiment", 0, "rlhf") == 310.0
    assert _last_wall_time(tmp_path, "exact", 0, "studies") == pytest.approx(400.0 * group("exact").parts["studies"])
    assert _last_wall_time(tmp_path, "exact", 1, "studies") == float("inf")


def test_a_group_not_started_yet_goes_first():
    """The first part of a world trains its reference; a second part of the same world would only wait for it."""
    from dpo_ref.experiments.cli import _next_unit

    pending = [("sentiment", 0, "rlhf"), ("sentiment", 1, "offline"), ("exact", 0, "frontier")]
    assert _next_unit(pending, {"sentiment"}) == 2
    assert _next_unit(pending, {"sentiment", "exact"}) == 0
    assert _next_unit(pending, set()) == 0


def test_sentiment_runs_are_evaluated_along_training(smoke_run):
    """Every sentiment run, offline or PPO, carries its test evaluations before its end (smoke: one, halfway)."""
    files, _ = smoke_run
    cfg = SMOKE.sentiment
    for seed in cfg.seeds:
        runs = files[f"sentiment_seed{seed}"]["runs"]
        assert sorted({r["method"] for r in runs}) == sorted(cfg.grids)
        for run in runs:
            assert [p["step"] for p in run["trajectory"]] == [2], run["method"]  # 4 updates, 1 checkpoint
            assert set(run["trajectory"][0]) == {"step", "reward", "kl", "length"}
            assert run["trajectory"][0]["kl"]["n"] == run["final"]["kl"]["n"]  # the test prompts, as at the end


def test_the_best_ppo_objective_is_reached_by_the_tilted_reference():
    """``optimal_objective`` against the objective written out, E[score] - c KL averaged over prompts."""
    import torch

    from dpo_ref.experiments.exact_runner import optimal_objective

    generator = torch.Generator().manual_seed(0)
    reference = torch.randn(3, 5, generator=generator, dtype=torch.float64).log_softmax(-1)
    scores = torch.randn(3, 5, generator=generator, dtype=torch.float64)
    c = 0.4

    def objective(logps):
        p = logps.exp()
        return float(((p * scores).sum(1) - c * (p * (logps - reference)).sum(1)).mean())

    best = optimal_objective(reference, scores, c)
    assert best == pytest.approx(objective((reference + scores / c).log_softmax(-1)), abs=1e-12)
    assert best > objective(reference)
    for _ in range(20):  # no other policy does better
        assert objective(torch.randn(3, 5, generator=generator, dtype=torch.float64).log_softmax(-1)) < best
    assert optimal_objective(reference, torch.full((3, 5), 0.7, dtype=torch.float64), c) == pytest.approx(0.7)


def test_a_grid_value_becomes_hyperparameters_and_pairs_per_update():
    from dpo_ref.experiments.exact_runner import Runner
    from dpo_ref.methods import METHODS

    assert METHODS["simpo"].grid_point(2.5) == ({"beta": 2.5, "gamma": 1.25}, 1.0)  # gamma / beta = 1/2
    assert METHODS["preferred-ft"].grid_point(0.5) == ({}, 0.5)  # its learning rate's multiple
    assert METHODS["orpo"].grid_point(0.3) == ({"lam": 0.3}, 1.0)
    assert METHODS["ppo-gt"].grid_point(0.2) == ({"kl_coef": 0.2}, 1.0)
    # KTO's rows are two per pair: twice the rows per update is the same pairs per update
    assert [METHODS[m].rows_per_pair for m in ("dpo", "kto", "preferred-ft")] == [1, 2, 1]
    runner = Runner(SMOKE.exact, None, 0, "cpu", print)
    assert runner.train_config(rows_per_pair=2).batch_size == 2 * SMOKE.exact.batch_size


def test_each_world_s_shared_reference_is_keyed_by_its_whole_world_config(monkeypatch):
    """A field of a world, added later, cannot be left off the key of its shared reference: the key is every
    field of the world's configuration (and only the world's: seeds and budgets share one pretraining)."""
    import dataclasses

    import torch

    from dpo_ref.experiments import exact, sentiment, shared_worlds
    from dpo_ref.experiments.costs import StageTimer

    keys = []

    class Stop(Exception):
        pass

    def capture(name, settings, train):
        keys.append((name, settings))
        raise Stop

    monkeypatch.setattr(shared_worlds, "trained_once", capture)
    cpu = torch.device("cpu")
    world = SMOKE.sentiment.world
    for cfg in (
        SMOKE.sentiment,
        dataclasses.replace(SMOKE.sentiment, world=dataclasses.replace(world, pretrain_steps=world.pretrain_steps + 1)),
        dataclasses.replace(SMOKE.sentiment, seeds=(5,), steps=SMOKE.sentiment.steps + 1),
    ):
        with pytest.raises(Stop):
            sentiment.shared_world(cfg, cpu, StageTimer(cpu))
    assert keys[0] == ("sentiment-reference", {"world": dataclasses.asdict(world), "device": "cpu"})
    assert keys[0] != keys[1] and keys[0] == keys[2]
    keys.clear()
    for cfg in (SMOKE.exact, dataclasses.replace(SMOKE.exact, world=dataclasses.replace(SMOKE.exact.world, seed=7))):
        with pytest.raises(Stop):
            exact.shared_world(cfg, "cpu")
    assert keys[0] == ("exact-reference", {"world": dataclasses.asdict(SMOKE.exact.world), "device": "cpu"})
    assert keys[0] != keys[1]


def test_both_worlds_write_one_run_record_and_one_summary_shape(smoke_run):
    """One engine: every run of either world is the same RUN record, and both summaries hold the shared
    sections with settings named by ``params``."""
    files, _ = smoke_run
    shared = {"method", "seed", "params", "final", "trajectory", "train_metrics"}
    for name in ("exact_seed0", "sentiment_seed0"):
        for record in files[name]["runs"]:
            assert shared <= set(record), (name, sorted(record))
            if "objective" in record:
                assert {"rose", "start", "end"} <= set(record["objective"]) and "diagnostics" in record
    for name in ("exact_summary", "sentiment_summary"):
        summary = files[name]
        assert {"seeds", "methods", "failed", "matched_kl", "kto_reference_point", "ppo"} <= set(summary)
        for method in summary["methods"].values():
            assert all("params" in row for row in method["settings"]) and method["envelope"]
        assert all(set(failed) == {"method", "params"} for failed in summary["failed"])


def test_the_shared_summariser_reads_exact_numbers_and_estimates_alike():
    from dpo_ref.experiments import summary

    def estimate(x):
        return {"mean": x, "stderr": 0.1, "n": 8}

    def run(method, seed, beta, along, end, wrap=float):
        return {
            "method": method,
            "seed": seed,
            "params": {"beta": beta},
            "final": {"kl": wrap(end[0]), "reward": wrap(end[1])},
            # step 0 is pi_ref itself: not a trained policy
            "trajectory": [{"step": 0, "kl": wrap(0.0), "reward": wrap(0.0)}]
            + [{"step": s, "kl": wrap(k), "reward": wrap(r)} for s, (k, r) in along],
            "train_metrics": {},
        }

    assert summary.trained_points(run("dpo", 0, 0.1, [(5, (1.0, 0.5))], (2.0, 1.0))) == [(1.0, 0.5), (2.0, 1.0)]
    assert summary.trained_points(run("dpo", 0, 0.1, [(5, (1.0, 0.5))], (2.0, 1.0), estimate)) == [
        (1.0, 0.5),
        (2.0, 1.0),
    ]
    # DPO's trained points per seed lie on reward = KL / 2 + 0.1, IPO's on reward = KL / 2: DPO ahead by 0.1
    # wherever both reach (KL 1 to 3), in every seed, whether the numbers are exact or estimates
    for wrap in (float, estimate):
        runs = [run("dpo", s, 0.1, [(5, (1.0, 0.6))], (3.0, 1.6), wrap) for s in (0, 1, 2)] + [
            run("ipo", s, 0.1, [(5, (1.0, 0.5))], (3.0, 1.5), wrap) for s in (0, 1, 2)
        ]
        matched = summary.matched(runs)["ipo"]
        assert (matched["low"], matched["high"]) == (1.0, 3.0)
        assert matched["mean_difference"]["mean"] == pytest.approx(0.1) and matched["verdict"] == "ahead"
        assert summary.failed_settings(runs) == set()
        runs[-1]["objective"] = {"rose": False}
        assert summary.failed_settings(runs) == {("ipo", (("beta", 0.1),))}


def test_a_seed_file_records_the_commit_its_parts_started_from(tmp_path, monkeypatch):
    """A run of many minutes records the code it ran: the commit as each part starts, not when the file is
    written (the checkout may have moved on by then)."""
    import torch

    from dpo_ref import experiments
    from dpo_ref.experiments import provenance

    heads = iter(["aaa", "bbb", "ccc", "ddd", "eee"])  # HEAD moves on every time it is read
    monkeypatch.setattr(provenance, "git_commit", lambda: next(heads))
    g = experiments.Group(
        name="toy",
        world="exact",
        parts={"one": 0.5, "two": 0.5},
        # each part reads HEAD once while it runs: someone commits during the run
        run_part=lambda config, seed, part, device, progress: {"part": part, "during": provenance.git_commit()},
        finish=lambda config, seed, parts: {f"toy_seed{seed}": {"parts": sorted(parts)}},
        count_runs=lambda config, part: 1,
        summarise=lambda config, per_seed: {},
    )
    config = get_config("smoke")
    parts = {part: experiments.run_part(g, config, 0, part, "cpu", lambda _: None) for part in ("one", "two")}
    assert [parts[p]["git_commit"] for p in ("one", "two")] == ["aaa", "ccc"]
    (path,) = experiments.write_seed(g, config, 0, torch.device("cpu"), tmp_path, parts)
    info = json.loads(path.read_text())["provenance"]
    assert info["git_commit"] == "aaa and ccc"  # not "eee", HEAD when the file was written
    assert {p: info["parts"][p]["git_commit"] for p in ("one", "two")} == {"one": "aaa", "two": "ccc"}
    same = {p: {**parts[p], "git_commit": "aaa"} for p in parts}
    (path,) = experiments.write_seed(g, config, 0, torch.device("cpu"), tmp_path, same)
    assert json.loads(path.read_text())["provenance"]["git_commit"] == "aaa"
