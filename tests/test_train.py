"""The trainer and its objectives: step-0 values, exact reference precomputation, resume
after SIGKILL, NaN handling, per-token log-probs against brute force (GAE: tests/test_ppo.py)."""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from dpo_ref.data import unpaired_rows
from dpo_ref.logps import token_logps
from dpo_ref.losses import dpo_loss
from dpo_ref.models import tiny_gpt2
from dpo_ref.runtime import resolve_device
from dpo_ref.train import (
    NonFiniteLossError,
    PairwiseObjective,
    RewardModel,
    SFTObjective,
    TensorBatches,
    TrainConfig,
    Trainer,
    precompute_reference_logps,
    train_reward_model,
)

V = 10  # vocabulary of the toy models


def _model(seed: int = 0):
    return tiny_gpt2(V, n_layer=1, n_embd=16, n_head=2, n_positions=16, seed=seed)


def _pairs(n: int = 24, *, seed: int = 0, prompt: int = 3, padded: bool = True) -> dict[str, torch.Tensor]:
    """Random pairs with a shared prompt; completions of varying length, right-padded."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    prompts = torch.randint(0, V, (n, prompt), generator=g)
    for side in ("chosen", "rejected"):
        length = 5
        completion = torch.randint(0, V, (n, length), generator=g)
        ids = torch.cat([prompts, completion], 1)
        mask = torch.ones_like(ids)
        if padded:  # each row keeps 1..length completion tokens
            keep = torch.randint(1, length + 1, (n,), generator=g)
            mask[:, prompt:] = (torch.arange(length)[None, :] < keep[:, None]).long()
        labels = ids.masked_fill(mask == 0, -100)
        labels[:, :prompt] = -100
        out[f"{side}_input_ids"] = ids.masked_fill(mask == 0, 0)
        out[f"{side}_attention_mask"] = mask
        out[f"{side}_labels"] = labels
    return out


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_step0_dpo_loss_is_ln2_and_rewards_zero():
    policy = _model()
    objective = PairwiseObjective(functools.partial(dpo_loss, beta=0.1), beta=0.1, reference=copy.deepcopy(policy))
    loss, metrics = objective(policy, _pairs())
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6)
    assert metrics["rewards/chosen"] == 0 and metrics["rewards/rejected"] == 0
    assert metrics["rewards/margins"] == 0 and metrics["rewards/accuracies"] == 0
    assert set(metrics) >= {
        "rewards/chosen",
        "rewards/rejected",
        "rewards/margins",
        "rewards/accuracies",
        "logps/chosen",
        "logps/rejected",
    }


def test_precomputed_reference_equals_live_and_trains_identically():
    pairs = _pairs(32)
    reference = _model()
    pre = precompute_reference_logps(reference, pairs, batch_size=5, device="cpu")
    live = PairwiseObjective(functools.partial(dpo_loss, beta=0.1), beta=0.1, reference=reference)
    with torch.no_grad():
        from dpo_ref.logps import concatenated_logps

        chosen, rejected = concatenated_logps(reference, pairs)
    assert torch.equal(pre["reference_chosen_logps"], chosen)
    assert torch.equal(pre["reference_rejected_logps"], rejected)

    config = TrainConfig(steps=4, batch_size=8, learning_rate=1e-2, device="cpu")
    a = Trainer(_model(), live, TensorBatches(pairs, 8), config).fit()
    precomputed = PairwiseObjective(functools.partial(dpo_loss, beta=0.1), beta=0.1)  # no reference model
    b = Trainer(_model(), precomputed, TensorBatches(pre, 8), config).fit()
    for key, value in _params(a.model).items():
        assert torch.equal(value, _params(b.model)[key]), key
    assert a.history == b.history


def test_resume_equals_uninterrupted(tmp_path):
    pairs = _pairs(32)
    objective = PairwiseObjective(functools.partial(dpo_loss, beta=0.5), beta=0.5, reference=_model())

    def run(steps, ckpt):
        cfg = TrainConfig(
            steps=steps, batch_size=8, learning_rate=1e-2, device="cpu", checkpoint_dir=ckpt, checkpoint_every=3
        )
        return Trainer(_model(), objective, TensorBatches(pairs, 8, seed=1), cfg).fit()

    whole = run(9, None)
    run(5, str(tmp_path))  # stops after step 5; its last checkpoint is step 5
    resumed = run(9, str(tmp_path))  # a fresh model and trainer, resumed from step 5
    assert resumed.history == whole.history
    for key, value in _params(whole.model).items():
        assert torch.equal(value, _params(resumed.model)[key]), key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000006", "step-000009"]  # keep_checkpoints=2


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time, torch
    from safetensors.torch import save_model
    from dpo_ref.models import tiny_gpt2
    from dpo_ref.train import PPOConfig, TrainConfig, train_ppo

    ckpt, hang_after, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(1)
    V = 6
    policy = tiny_gpt2(V, n_layer=1, n_embd=16, n_head=2, n_positions=8, seed=0)
    reference = tiny_gpt2(V, n_layer=1, n_embd=16, n_head=2, n_positions=8, seed=0)
    prompts = torch.randint(0, V, (5, 2), generator=torch.Generator().manual_seed(0))

    def reward(ids, mask):  # how often token 3 appears in the completion
        return (ids[:, 2:] == 3).float().sum(1)

    def on_step(step, record):
        print("step", step, flush=True)
        if step == hang_after:
            print("HANG", flush=True)
            time.sleep(600)

    ppo = PPOConfig(kl_coef=0.1, rollout_batch_size=16, minibatch_size=8, ppo_epochs=2, max_new_tokens=3)
    cfg = TrainConfig(steps=12, learning_rate=1e-2, device="cpu", checkpoint_dir=ckpt, checkpoint_every=3)
    result = train_ppo(policy, reference, reward, prompts, ppo, cfg, on_step=on_step)
    save_model(result.model, out)
    """
)


def test_sigkilled_ppo_run_resumes_to_the_same_result(tmp_path):
    """PPO's rollout buffer is checkpointed: step 6 is in the middle of the second rollout."""
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(ckpt, hang_after, out):
        return subprocess.Popen(
            [sys.executable, str(script), str(ckpt), str(hang_after), str(out)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    killed = run(tmp_path / "ckpt", 7, tmp_path / "unused.safetensors")
    for line in killed.stdout:
        if line.startswith("HANG"):
            break
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert (tmp_path / "ckpt" / "step-000006").is_dir()  # the last checkpoint before the kill

    resumed = run(tmp_path / "ckpt", -1, tmp_path / "resumed.safetensors")
    steps_seen = [int(line.split()[1]) for line in resumed.stdout if line.startswith("step")]
    assert resumed.wait(timeout=120) == 0
    assert steps_seen == list(range(7, 13))  # continued after step 6
    whole = run(tmp_path / "whole", -1, tmp_path / "whole.safetensors")
    whole.stdout.read()
    assert whole.wait(timeout=120) == 0

    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "resumed.safetensors"), load_file(tmp_path / "whole.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    history = json.loads((tmp_path / "ckpt" / "step-000012" / "trainer_state.json").read_text())["history"]
    whole_history = json.loads((tmp_path / "whole" / "step-000012" / "trainer_state.json").read_text())["history"]
    assert history == whole_history


def test_non_finite_loss_stops_with_the_step_and_keeps_last_checkpoint(tmp_path):
    sft = SFTObjective()

    calls = 0

    def poisoned(model, batch):  # NaN from the fourth update (step index 3) on
        nonlocal calls
        loss, metrics = sft(model, batch)
        calls += 1
        return (loss * float("nan") if calls > 3 else loss), metrics

    pairs = _pairs(16, padded=False)
    data = {
        "input_ids": pairs["chosen_input_ids"],
        "attention_mask": pairs["chosen_attention_mask"],
        "labels": pairs["chosen_labels"],
    }
    cfg = TrainConfig(steps=10, batch_size=4, device="cpu", checkpoint_dir=str(tmp_path), checkpoint_every=2)
    trainer = Trainer(_model(), poisoned, TensorBatches(data, 4), cfg)
    with pytest.raises(NonFiniteLossError, match=r"step 3: loss is nan.*step-000002"):
        trainer.fit()
    assert [p.name for p in tmp_path.iterdir()] == ["step-000002"]
    # the last good checkpoint loads, and the model in memory was not touched by the NaN step
    fresh = Trainer(_model(), sft, TensorBatches(data, 4), cfg)
    fresh.load_checkpoint(tmp_path / "step-000002")
    assert fresh.step == 2


def test_stale_temporary_checkpoint_is_ignored(tmp_path):
    pairs = _pairs(16, padded=False)
    data = {
        "input_ids": pairs["chosen_input_ids"],
        "attention_mask": pairs["chosen_attention_mask"],
        "labels": pairs["chosen_labels"],
    }
    (tmp_path / ".tmp-step-000003-999").mkdir()
    (tmp_path / ".tmp-step-000003-999" / "model.safetensors").write_bytes(b"half-written")
    cfg = TrainConfig(steps=2, batch_size=4, device="cpu", checkpoint_dir=str(tmp_path))
    result = Trainer(_model(), SFTObjective(), TensorBatches(data, 4), cfg).fit()
    assert result.step == 2 and [p.name for p in tmp_path.iterdir()] == ["step-000002"]


def test_token_logps_match_a_per_token_loop():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 6, V, generator=g)
    labels = torch.randint(0, V, (3, 6), generator=g)
    labels[:, :2] = -100
    labels[1, 4:] = -100  # padding
    values, mask = token_logps(logits, labels)
    for b in range(3):
        for t in range(5):
            if labels[b, t + 1] == -100:
                assert not mask[b, t] and values[b, t] == 0
            else:
                expected = torch.log_softmax(logits[b, t], -1)[labels[b, t + 1]]
                assert values[b, t].item() == pytest.approx(expected.item(), abs=1e-6)


def test_reward_model_starts_at_ln2_and_learns_the_preference():
    pairs = _pairs(64, padded=False)
    # the preference: chosen completions end with token 1, rejected with token 2
    pairs["chosen_input_ids"][:, -1] = pairs["chosen_labels"][:, -1] = 1
    pairs["rejected_input_ids"][:, -1] = pairs["rejected_labels"][:, -1] = 2
    lm = _model().requires_grad_(False)  # a frozen reference: the reward model's copy must still train
    model = RewardModel.from_causal_lm(lm)
    assert all(p.requires_grad for p in model.parameters())
    from dpo_ref.train import RewardObjective

    loss, _ = RewardObjective()(model, pairs)
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6)
    cfg = TrainConfig(steps=30, batch_size=16, learning_rate=1e-2, device="cpu", log_every=30)
    result = train_reward_model(model, pairs, cfg)
    assert result.history[-1]["rewards/accuracies"] == 1.0
    assert result.history[-1]["loss"] < 0.1


def test_reward_model_reads_the_last_token_whatever_the_padding():
    model = RewardModel.from_causal_lm(_model())
    torch.nn.init.normal_(model.head.weight, generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([[3, 4, 5, 6]])
    right = model(torch.tensor([[3, 4, 5, 6, 0, 0]]), torch.tensor([[1, 1, 1, 1, 0, 0]]))
    left = model(torch.tensor([[0, 0, 3, 4, 5, 6]]), torch.tensor([[0, 0, 1, 1, 1, 1]]))
    plain = model(ids, torch.ones_like(ids))
    assert torch.allclose(right, plain, atol=1e-5) and torch.allclose(left, plain, atol=1e-5)


def test_kto_rows_pair_each_prompt_with_the_next_other_prompts_completion():
    pairs = _pairs(4, padded=False)
    for side in ("chosen", "rejected"):  # pairs 0 and 1 share a prompt, as pairs of one prompt sit together
        pairs[f"{side}_input_ids"][1, :3] = pairs[f"{side}_input_ids"][0, :3]
    rows = unpaired_rows(pairs)
    assert rows["desirable"].tolist() == [True, False] * 4
    assert torch.equal(rows["input_ids"][2], pairs["chosen_input_ids"][1])
    assert torch.equal(rows["input_ids"][3], pairs["rejected_input_ids"][1])
    # row 0 (prompt of pair 0): rows 1-3 share its prompt, so its mismatched completion is row 4's (chosen of pair 2)
    assert torch.equal(rows["kl_input_ids"][0, :3], pairs["chosen_input_ids"][0, :3])
    assert torch.equal(rows["kl_input_ids"][0, 3:], pairs["chosen_input_ids"][2, 3:])
    # row 4 (prompt of pair 2): row 5 is its own rejected answer, so row 6's completion (chosen of pair 3)
    assert torch.equal(rows["kl_input_ids"][4, 3:], pairs["chosen_input_ids"][3, 3:])
    # the last row wraps around to row 0, whose prompt differs
    assert torch.equal(rows["kl_input_ids"][7, 3:], pairs["chosen_input_ids"][0, 3:])
    # no mismatched row keeps its own prompt's completion
    prompts = [tuple(r) for r in rows["input_ids"][:, :3].tolist()]
    completions = [tuple(r) for r in rows["input_ids"][:, 3:].tolist()]
    for j in range(8):
        k = completions.index(tuple(rows["kl_input_ids"][j, 3:].tolist()))
        assert prompts[k] != prompts[j]


def test_kto_rows_of_one_prompt_fall_back_to_the_next_row():
    pairs = _pairs(2, padded=False)
    for side in ("chosen", "rejected"):
        pairs[f"{side}_input_ids"][1, :3] = pairs[f"{side}_input_ids"][0, :3]
    rows = unpaired_rows(pairs)
    assert torch.equal(rows["kl_input_ids"][0, 3:], pairs["rejected_input_ids"][0, 3:])


def test_kto_reference_logps_precomputed_once_match_the_live_pass():
    """TrainingData gives KTO the reference's log-probs of its rows and their mismatched
    partners; the objective then skips its reference pass, with the same loss."""
    from dpo_ref.methods import METHODS, TrainingData

    pairs, reference, policy = _pairs(8), _model(0), _model(1)
    rows = TrainingData(pairs, reference=reference, batch_size=5).rows_for("kto")  # batches cut across rows
    live = {k: v for k, v in rows.items() if not k.startswith("reference_")}
    objective = METHODS["kto"].objective(reference=reference, beta=0.1)
    loss_live, metrics_live = objective(policy, live)
    objective.reference = None  # the precomputed columns must be enough on their own
    loss_precomputed, metrics_precomputed = objective(policy, rows)
    assert loss_precomputed.item() == pytest.approx(loss_live.item(), abs=1e-6)
    assert metrics_precomputed["kl/unclamped"] == pytest.approx(metrics_live["kl/unclamped"], abs=1e-6)
    assert metrics_live["kl/unclamped"] != 0.0  # the two models differ, so the check has teeth


def test_batches_depend_only_on_the_step():
    data = {"x": torch.arange(10)}
    a, b = TensorBatches(data, 3, seed=4), TensorBatches(data, 3, seed=4)
    forward = [a(s)["x"].tolist() for s in range(7)]
    backward = [b(s)["x"].tolist() for s in reversed(range(7))][::-1]
    assert forward == backward
    assert sorted(sum(forward[:3], [])) == sorted(set(sum(forward[:3], [])))  # no repeats within an epoch


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")


def test_train_cli_dpo_on_a_jsonl_file(tmp_path):
    import argparse

    from dpo_ref import train_cli
    from dpo_ref.models import toy_preference_pairs

    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in toy_preference_pairs(16)))
    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    out = tmp_path / "out"
    args = parser.parse_args(
        [
            "--data",
            str(data),
            "--method",
            "dpo",
            "--steps",
            "4",
            "--batch-size",
            "4",
            "--output-dir",
            str(out),
            "--device",
            "cpu",
            "--max-length",
            "32",
        ]
    )
    assert train_cli.main(args) == 0
    history = json.loads((out / "history.json").read_text())
    assert history[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)  # step-0 DPO loss
    assert (out / "model.safetensors").exists() and (out / "checkpoints" / "step-000004").is_dir()
