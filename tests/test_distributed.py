"""dpo_ref's trainer under DDP: two CPU processes (gloo, launched by torchrun) give the one-process result.

The run is ``examples/distributed_dpo.py``: DPO on toy pairs with a global batch of 8,
once as a plain process and once as ``torchrun --nproc_per_node 2`` (4 pairs per
process). Losses, gradient norms and final weights must agree up to float rounding
(summation order differs), and the checkpoint written by rank 0 alone must hold the
final weights.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dpo_ref.distributed import DistributedContext, DistributedTrainer, ShardedBatches, shard_batch, unwrap
from dpo_ref.losses import dpo_loss
from dpo_ref.models import tiny_gpt2
from dpo_ref.train import PairwiseObjective, TensorBatches, TrainConfig, Trainer

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "distributed_dpo.py"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"})
    # TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 would make torchrun pick the workers' port by
    # finding a free one and releasing it (the race --standalone avoids, see below)
    for key in (
        "RANK",
        "WORLD_SIZE",
        "LOCAL_RANK",
        "MASTER_ADDR",
        "MASTER_PORT",
        "DPO_REF_SMOKE",
        "TORCH_DISABLE_SHARE_RDZV_TCP_STORE",
    ):
        env.pop(key, None)
    return env


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT, env=_env())
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.slow
def test_two_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    args = ["--smoke", "--batch-size", "8", "--steps", "4"]
    one = _run([sys.executable, str(SCRIPT), *args, "--result-file", str(tmp_path / "one.safetensors")])
    # --standalone: torchrun's rendezvous store binds port 0 (the kernel picks a free port
    # as it binds), and the workers join that same store (torch 2.13 shares it by default),
    # so no port is chosen first and bound later, when another process may have taken it.
    two = _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(SCRIPT),
            *args,
            "--result-file",
            str(tmp_path / "two.safetensors"),
            "--checkpoint-dir",
            str(tmp_path / "checkpoints"),
        ]
    )
    assert "processes 1" in one and "processes 2" in two
    assert two.count("step   1  loss") == 1  # only rank 0 prints
    a, b = load_file(str(tmp_path / "one.safetensors")), load_file(str(tmp_path / "two.safetensors"))
    assert a["loss"][0].item() == pytest.approx(0.6931471805599453, abs=1e-6)
    torch.testing.assert_close(b["loss"], a["loss"], rtol=0, atol=1e-5)
    torch.testing.assert_close(b["grad_norm"], a["grad_norm"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b["weights"], a["weights"], rtol=0, atol=1e-4)
    assert not torch.equal(a["weights"][:100], torch.zeros(100))

    # rank 0 wrote one complete checkpoint, in the plain (unwrapped) format, holding the final weights
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert checkpoints == ["step-000004"]
    saved = load_file(str(tmp_path / "checkpoints" / "step-000004" / "model.safetensors"))
    assert not any(k.startswith("module.") for k in saved)
    flat = torch.cat([saved[k].flatten() for k in saved])
    assert flat.sum().item() == pytest.approx(b["weights"].double().sum().item(), rel=1e-4)


# --------------------------------------------------------------------------- one process, no launcher


def test_shard_batch_splits_rows_contiguously():
    batch = {"a": torch.arange(8), "b": torch.arange(16).reshape(8, 2)}
    parts = [shard_batch(batch, rank, 4) for rank in range(4)]
    assert torch.equal(torch.cat([p["a"] for p in parts]), batch["a"])
    assert torch.equal(torch.cat([p["b"] for p in parts]), batch["b"])
    with pytest.raises(ValueError, match="does not split evenly"):
        shard_batch(batch, 0, 3)
    sharded = ShardedBatches(lambda step: batch, DistributedContext(rank=1, world_size=2))
    assert torch.equal(sharded(0)["a"], torch.arange(4, 8))


def test_one_process_distributed_trainer_is_the_plain_trainer():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 30, (16, 6), generator=gen)
    labels = ids.clone()
    labels[:, :2] = -100
    data = {
        f"{side}_{key}": value
        for side in ("chosen", "rejected")
        for key, value in (
            ("input_ids", ids if side == "chosen" else ids.flip(0)),
            ("attention_mask", torch.ones_like(ids)),
            ("labels", labels if side == "chosen" else labels.flip(0)),
        )
    }
    config = TrainConfig(steps=3, batch_size=8, learning_rate=1e-2, device="cpu")
    results = []
    for trainer_class in (Trainer, DistributedTrainer):
        reference = tiny_gpt2(30, n_layer=1, n_embd=16, n_head=2, seed=0).eval()
        objective = PairwiseObjective(functools.partial(dpo_loss, beta=0.1), beta=0.1, reference=reference)
        trainer = trainer_class(
            tiny_gpt2(30, n_layer=1, n_embd=16, n_head=2, seed=0), objective, TensorBatches(data, 8), config
        )
        results.append(trainer.fit())
    assert [r["loss"] for r in results[0].history] == [r["loss"] for r in results[1].history]
    assert unwrap(results[1].model) is results[1].model
