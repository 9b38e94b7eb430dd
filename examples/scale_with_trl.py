"""The same DPO run through TRL's DPOTrainer, ready for many GPUs; its first losses match dpo_ref's.

    python examples/scale_with_trl.py            # built-in tiny model and pairs, about 10 s on a 2-core CPU (measured 7 s)
    python examples/scale_with_trl.py --smoke    # fewer steps, about 10 s (measured 9 s, mostly importing TRL)
    accelerate launch --config_file examples/accelerate/ddp.yaml examples/scale_with_trl.py \
        --model ./my-sft-model --dataset pairs.jsonl --batch-size 64 --dtype bfloat16 --no-compare

dpo_ref is for reading and checking; TRL (with accelerate, DeepSpeed or FSDP) is what
you scale with. This script trains with ``trl.DPOTrainer`` on the data and
hyperparameters the other examples use, then replays TRL's exact batches through
dpo_ref's trainer and asserts that the losses of the first steps agree: the same
maths, two implementations. The ``examples/accelerate/`` configs launch it on several
GPUs (DDP, FSDP, DeepSpeed ZeRO-3); see the site's scaling page.
"""

# %% [markdown]
# # Scale with TRL
#
# The run below uses the same hyperparameters in both libraries: $\beta$, learning rate
# (constant, no warm-up), AdamW without weight decay, gradient clipping at 1, summed
# log-probs, the sigmoid loss. TRL tokenizes and batches; dpo_ref then trains a fresh
# copy of the same model on exactly TRL's batches. Step 1 is $\ln 2$ in both; after
# that each loss depends on every earlier update, so agreement over several steps
# means the gradients and optimiser steps agree too.

# %%
from __future__ import annotations

import copy
import functools
import math
import os
import random
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass

import datasets
import torch
import transformers
from trl import DPOConfig, DPOTrainer

from dpo_ref.data import load_preference_dataset, tokenize_pairs
from dpo_ref.logps import IGNORE_INDEX
from dpo_ref.losses import dpo_loss
from dpo_ref.models import (
    load_causal_lm,
    load_tokenizer,
    tiny_bpe_tokenizer,
    tiny_gpt2,
    toy_preference_pairs,
)
from dpo_ref.scripts import parse_config, versions
from dpo_ref.train import PairwiseObjective, TrainConfig, Trainer


@dataclass
class Config:
    model: str = ""  # hub name or save_pretrained folder; "" builds a tiny GPT-2 locally
    dataset: str = ""  # hub name, save_to_disk folder, .jsonl/.parquet file; "" uses built-in toy pairs
    n_pairs: int = 32  # built-in toy pairs (ignored with --dataset)
    beta: float = 0.1  # DPO paper default
    steps: int = 12  # optimiser updates
    batch_size: int = 8  # global pairs per update: per GPU x GPUs (x gradient accumulation, here 1)
    learning_rate: float = 1e-3  # constant; 1e-3 suits the tiny model, use ~5e-7 for a real one
    max_length: int = 512  # prompt + completion tokens
    dtype: str = "float32"  # "bfloat16" on GPUs (TRL's bf16=True); the comparison wants float32
    compare: bool = True  # replay TRL's batches through dpo_ref and assert the losses match (one process only)
    compare_steps: int = 5  # how many first steps must agree
    tolerance: float = 1e-5  # largest allowed |loss_trl - loss_dpo_ref| (float32)
    output_dir: str = ""  # TRL's output_dir (checkpoints, the final model); "" uses a temporary folder
    seed: int = 0
    smoke: bool = False  # fewer steps for tests and the site build (also DPO_REF_SMOKE=1)


SMOKE = {"n_pairs": 16, "steps": 4, "compare_steps": 4}


config = parse_config(Config, smoke=SMOKE, description=__doc__)
world_size = int(os.environ.get("WORLD_SIZE", "1"))  # set by accelerate launch / torchrun
main_process = int(os.environ.get("RANK", "0")) == 0
log = print if main_process else (lambda *args, **kwargs: None)
log(versions("trl") + f" | processes {world_size}")
log(config)
random.seed(config.seed)
torch.manual_seed(config.seed)
datasets.disable_progress_bars()
transformers.logging.disable_progress_bar()  # the per-file "Loading weights" bars
transformers.logging.set_verbosity_error()  # keep the output to what this script prints
warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames raised inside TRL
if config.batch_size % world_size:
    print(f"error: --batch-size {config.batch_size} must be a multiple of the {world_size} processes", file=sys.stderr)
    sys.exit(2)

# %% [markdown]
# ## Data and model
#
# Loaded exactly as in `bring_your_own.py`. TRL's trainer gets its own reference model:
# a frozen copy of the starting policy, as dpo_ref uses.

# %%
try:  # bad input: one line and exit code 2, as in bring_your_own.py
    if config.dataset:
        dataset = load_preference_dataset(config.dataset)
    else:
        dataset = datasets.Dataset.from_list(toy_preference_pairs(config.n_pairs, seed=config.seed))
    if config.model:
        tokenizer = load_tokenizer(config.model)
    else:
        texts = [p["prompt"] + p[k] for p in toy_preference_pairs(256, seed=1) for k in ("chosen", "rejected")]
        tokenizer = tiny_bpe_tokenizer(texts, vocab_size=320)
except (ValueError, FileNotFoundError, ConnectionError, OSError) as error:
    print("error: " + " ".join(str(error).split()), file=sys.stderr)
    sys.exit(2)


def starting_model() -> torch.nn.Module:
    """The policy before training; called once for TRL and once for dpo_ref, giving the same weights."""
    if config.model:
        return load_causal_lm(config.model, dtype=config.dtype)
    return tiny_gpt2(
        len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        seed=config.seed,
        n_positions=128,
    )


model = starting_model()
log(
    f"{len(dataset)} pairs; model {config.model or 'built-in tiny GPT-2'} "
    f"({sum(p.numel() for p in model.parameters()):,} parameters)"
)

# %% [markdown]
# ## TRL
#
# `DPOConfig` carries the hyperparameters. `compute_loss` is wrapped only to keep each
# step's loss and batch for the comparison; nothing about training changes.


# %%
class RecordingDPOTrainer(DPOTrainer):
    """DPOTrainer that keeps each training step's loss and (CPU copy of the) batch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.recorded: list[tuple[float, dict[str, torch.Tensor]]] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        loss = out[0] if return_outputs else out
        if model.training:
            self.recorded.append((loss.item(), {k: v.detach().cpu() for k, v in inputs.items() if torch.is_tensor(v)}))
        return out


output_dir = config.output_dir or tempfile.mkdtemp(prefix="scale_with_trl_")
args = DPOConfig(
    output_dir=output_dir,
    beta=config.beta,
    loss_type=["sigmoid"],  # the DPO loss
    learning_rate=config.learning_rate,
    lr_scheduler_type="constant",
    warmup_steps=0,
    weight_decay=0.0,
    max_grad_norm=1.0,
    optim="adamw_torch",
    per_device_train_batch_size=config.batch_size // world_size,
    gradient_accumulation_steps=1,
    max_steps=config.steps,
    max_length=config.max_length,
    bf16=config.dtype == "bfloat16",
    logging_steps=1,
    save_strategy="no",
    report_to="none",
    seed=config.seed,
    use_cpu=not torch.cuda.is_available(),
    disable_tqdm=not (main_process and sys.stderr.isatty()),  # a progress bar in a terminal only
)
trl_trainer = RecordingDPOTrainer(
    model=model,
    ref_model=copy.deepcopy(model),
    args=args,
    train_dataset=dataset,
    processing_class=tokenizer,
)


class QuietProgress(transformers.ProgressCallback):
    """TRL's progress bar without a printed dict of metrics per step: this script prints its own summary."""

    def on_log(self, *args, **kwargs):
        pass


trl_trainer.remove_callback(transformers.PrinterCallback)
if trl_trainer.pop_callback(transformers.ProgressCallback) is not None:
    trl_trainer.add_callback(QuietProgress)
start = time.perf_counter()
trl_trainer.train()
trl_seconds = time.perf_counter() - start
trl_losses = [loss for loss, _ in trl_trainer.recorded]
log(f"TRL: {len(trl_losses)} steps in {trl_seconds:.1f} s; losses " + " ".join(f"{x:.4f}" for x in trl_losses))
if config.output_dir:
    trl_trainer.save_model(output_dir)
    log(f"saved the trained model to {output_dir}")

# %% [markdown]
# ## Same tokens in both libraries
#
# dpo_ref's `tokenize_pairs` follows TRL's rules (EOS appended to standard completions,
# the completion starting where prompt and prompt + completion tokens diverge), so
# the token ids of every pair must be the same.

# %%
if config.compare and world_size == 1:
    ours, _ = tokenize_pairs(dataset, tokenizer, max_length=config.max_length)
    theirs = trl_trainer.train_dataset
    n_same = sum(
        ours[i]["chosen_input_ids"] == theirs[i]["prompt_ids"] + theirs[i]["chosen_ids"]
        and ours[i]["rejected_input_ids"] == theirs[i]["prompt_ids"] + theirs[i]["rejected_ids"]
        for i in range(len(ours))
    )
    log(f"identical token ids in {n_same} of {len(ours)} pairs")
    assert n_same == len(ours), "dpo_ref and TRL tokenized some pairs differently"

# %% [markdown]
# ## dpo_ref on TRL's batches
#
# TRL stacks `[chosen; rejected]` rows with a completion mask; dpo_ref wants
# `chosen_*` / `rejected_*` keys with label $-100$ on prompt and padding. A fresh copy
# of the starting model trains on the recorded batches, in TRL's order.


# %%
def to_dpo_ref(trl_batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    labels = trl_batch["input_ids"].masked_fill(trl_batch["completion_mask"] == 0, IGNORE_INDEX)
    n = trl_batch["input_ids"].shape[0] // 2
    batch = {}
    for side, rows in (("chosen", slice(0, n)), ("rejected", slice(n, None))):
        batch[f"{side}_input_ids"] = trl_batch["input_ids"][rows]
        batch[f"{side}_attention_mask"] = trl_batch["attention_mask"][rows]
        batch[f"{side}_labels"] = labels[rows]
    return batch


if config.compare and world_size == 1:
    policy = starting_model()
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    recorded = [to_dpo_ref(batch) for _, batch in trl_trainer.recorded]
    steps = min(config.compare_steps, len(recorded))
    trainer = Trainer(
        policy,
        PairwiseObjective(functools.partial(dpo_loss, beta=config.beta), beta=config.beta, reference=reference),
        lambda step: recorded[step],
        TrainConfig(
            steps=steps,
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            optimizer="adamw",
            weight_decay=0.0,
            max_grad_norm=1.0,
            device="cuda" if torch.cuda.is_available() else "cpu",
        ),
    )
    reference.to(trainer.device)
    ours = [record["loss"] for record in trainer.fit().history]
    print(f"{'step':>4} {'TRL loss':>12} {'dpo_ref loss':>13} {'|difference|':>13}")
    for step, (a, b) in enumerate(zip(trl_losses, ours), start=1):
        print(f"{step:>4} {a:>12.6f} {b:>13.6f} {abs(a - b):>13.2e}")
    worst = max(abs(a - b) for a, b in zip(trl_losses, ours))
    assert abs(ours[0] - math.log(2)) < 1e-5, "step 1 must be ln 2"
    assert worst <= config.tolerance, f"TRL and dpo_ref losses differ by {worst:.2e} > {config.tolerance}"
    print(f"the first {steps} losses match: max |TRL - dpo_ref| = {worst:.2e} <= {config.tolerance}")
elif config.compare:
    log(f"comparison skipped: it replays batches in one process, and this run has {world_size}")
