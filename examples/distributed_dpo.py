"""dpo_ref's own trainer on several processes (DDP), launched by torchrun or accelerate.

    python examples/distributed_dpo.py                                    # one process, about 10 s (measured 7 s)
    torchrun --nproc_per_node 2 examples/distributed_dpo.py               # two CPU processes (gloo), about 10 s (measured 10 s)
    torchrun --nproc_per_node 8 examples/distributed_dpo.py --device cuda # eight GPUs (NCCL)
    accelerate launch --config_file examples/accelerate/ddp.yaml examples/distributed_dpo.py --device cuda
    python examples/distributed_dpo.py --smoke                            # fewer steps, about 6 s (measured 6 s)

The unchanged :class:`dpo_ref.train.Trainer` under PyTorch's DistributedDataParallel
(:mod:`dpo_ref.distributed`): every process builds the same global batch and trains
on its slice; DDP averages the gradients. With the same global batch size the losses
and final weights equal those of the one-process run, whatever the number of
processes (``tests/test_distributed.py`` checks it).
"""

# %% [markdown]
# # Many processes, the same run
#
# The launcher starts one process per device; `init_distributed` joins them;
# `DistributedTrainer` shards each global batch, wraps the model in DDP, logs global
# metrics and checkpoints from rank 0. Run as a plain script it is a single process
# and the trainer is the plain one.

# %%
from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import datasets
import torch
from safetensors.torch import save_file
from tqdm import tqdm

from dpo_ref.data import collate_pairs, tokenize_pairs
from dpo_ref.distributed import DistributedTrainer, init_distributed
from dpo_ref.losses import dpo_loss
from dpo_ref.models import tiny_bpe_tokenizer, tiny_gpt2, toy_preference_pairs
from dpo_ref.scripts import parse_config, versions
from dpo_ref.train import (
    PairwiseObjective,
    TensorBatches,
    TrainConfig,
    precompute_reference_logps,
)


@dataclass
class Config:
    n_pairs: int = 128  # built-in toy pairs
    beta: float = 0.1  # DPO paper default
    steps: int = 20  # optimiser updates
    batch_size: int = 16  # the GLOBAL batch: each of N processes gets batch_size / N pairs
    learning_rate: float = 1e-3  # AdamW
    device: str = "cpu"  # "cpu" (gloo) or "cuda" (NCCL, one GPU per process)
    checkpoint_dir: str = ""  # if set, rank 0 writes a checkpoint there at the end (and a rerun resumes)
    result_file: str = ""  # if set, rank 0 writes losses and final weights (safetensors) there, for tests
    seed: int = 0  # seeds data, model and batch order: the same in every process
    smoke: bool = False  # fewer steps for tests and the site build (also DPO_REF_SMOKE=1)


SMOKE = {"n_pairs": 32, "steps": 4, "batch_size": 8}


config = parse_config(Config, smoke=SMOKE, description=__doc__)
# --8<-- [start:init]
context = init_distributed()  # reads RANK / WORLD_SIZE / LOCAL_RANK; one process: nothing to join
# --8<-- [end:init]
log = print if context.is_main else (lambda *args, **kwargs: None)
log(versions() + f" | processes {context.world_size}")
log(config)
random.seed(config.seed)
torch.manual_seed(config.seed)
datasets.disable_progress_bars()

# %% [markdown]
# ## The same data and model in every process
#
# Everything is seeded, so every process builds identical pairs and weights (DDP also
# broadcasts rank 0's weights when it wraps the model).

# %%
pairs = toy_preference_pairs(config.n_pairs, seed=config.seed)
tokenizer = tiny_bpe_tokenizer([p["prompt"] + p[k] for p in pairs for k in ("chosen", "rejected")], vocab_size=320)
tokenized, _ = tokenize_pairs(datasets.Dataset.from_list(pairs), tokenizer, max_length=64)
policy = tiny_gpt2(
    len(tokenizer),
    eos_token_id=tokenizer.eos_token_id,
    bos_token_id=tokenizer.bos_token_id,
    pad_token_id=tokenizer.pad_token_id,
    seed=config.seed,
)
# The reference is frozen: its log-probs are computed once and travel with the batches.
data = precompute_reference_logps(policy, collate_pairs(list(tokenized), tokenizer.pad_token_id), device="cpu")

# %% [markdown]
# ## Training
#
# `config.batch_size` is the global batch; `TensorBatches` gives the same global batch
# of step $s$ in every process and `DistributedTrainer` keeps this process's slice.

# %%
bar = tqdm(total=config.steps, desc=f"DPO x{context.world_size}", disable=None if context.is_main else True)
# --8<-- [start:trainer]
trainer = DistributedTrainer(
    policy,
    PairwiseObjective(functools.partial(dpo_loss, beta=config.beta), beta=config.beta),
    TensorBatches(data, config.batch_size, seed=config.seed),
    TrainConfig(
        steps=config.steps,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
        device=config.device,
        checkpoint_dir=config.checkpoint_dir or None,
    ),
    context=context,
    on_step=lambda step, record: bar.update(step - bar.n),
)
result = trainer.fit()  # result.model is the plain (unwrapped) model, identical in every process
# --8<-- [end:trainer]
bar.close()
for record in result.history:
    log(
        f"step {record['step']:3d}  loss {record['loss']:.6f}  grad_norm {record['grad_norm']:.6f}  "
        f"rewards/accuracies {record['rewards/accuracies']:.3f}"
    )
weights = torch.cat([p.detach().float().flatten().cpu() for p in result.model.parameters()])
log(
    f"{context.world_size} process(es): final loss {result.history[-1]['loss']:.6f}, "
    f"weight checksum {weights.double().sum().item():.6f}"
)
if result.checkpoint:
    log(f"checkpoint: {result.checkpoint}")
if config.result_file and context.is_main:
    save_file(
        {
            "loss": torch.tensor([r["loss"] for r in result.history]),
            "grad_norm": torch.tensor([r["grad_norm"] for r in result.history]),
            "weights": weights,
        },
        config.result_file,
    )
if context.enabled:
    torch.distributed.destroy_process_group()
