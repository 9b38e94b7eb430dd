"""One measured training run, dpo_ref's or TRL's, in its own process.

``python -m benchmarks.trainers {dpo_ref,dpo_ref_plain,trl} WORKLOAD_DIR OUT.json [STEPS]``
trains for the workload's steps and writes the loss of every step, the start time of
every step, the end of the last one, and the peak RSS of the process. The parent
(:mod:`benchmarks.run`) starts a fresh process per run, so the peak RSS is that run's
alone, and interleaves the trainers.

Both trainers start from identical weights, use the policy itself to precompute the
reference log-probs before the first step (TRL: ``precompute_ref_log_probs=True``,
no ``ref_model``), take the same batches in the same order, and run AdamW at a
constant learning rate with gradient clipping at 1.0, in float32.

* ``dpo_ref``: :class:`dpo_ref.train.Trainer` with :class:`SharedPromptDPO`, which
  runs each pair as one row (:func:`dpo_ref.packing.shared_prompt_logps`, packed once
  for the whole dataset) and logs no per-step metrics;
* ``dpo_ref_plain``: the same trainer with :class:`dpo_ref.train.PairwiseObjective`
  (chosen and rejected as two padded rows, metrics every step), to show what the
  shared prompt buys;
* ``trl``: ``trl.DPOTrainer`` with gradient checkpointing off (TRL turns it on by
  default; it only slows a model this small) and a sequential sampler.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.workload import Workload, build_model, load


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


class WorkCounter:
    """The shapes a model actually computes in each training step, from forward hooks.

    Every forward call of the first transformer block records its ``(rows, length)``: the
    rectangle every block computes, padding and packed rows included. The LM head records
    how many positions it projects (dpo_ref's packed path projects only the positions that
    score a completion token). Nothing is recorded before the first :meth:`new_step`, so
    the reference pass before training is left out. :mod:`benchmarks.flops` turns these
    into FLOPs.
    """

    def __init__(self, model):
        self.steps: list[dict] = []
        model.base_model.h[0].register_forward_pre_hook(self._block)
        model.get_output_embeddings().register_forward_pre_hook(self._head)

    def new_step(self) -> None:
        self.steps.append({"blocks": [], "head_positions": 0})

    def _block(self, module, args):
        if self.steps:
            self.steps[-1]["blocks"].append((int(args[0].shape[0]), int(args[0].shape[1])))

    def _head(self, module, args):
        if self.steps:
            self.steps[-1]["head_positions"] += args[0].numel() // args[0].shape[-1]


class PhaseClock:
    """Seconds of each training step spent in the forward pass and in the optimizer step."""

    def __init__(self):
        self.forward: list[float] = []
        self.optimizer: list[float] = []

    def timed(self, phase: list[float], fn, *args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        phase.append(time.perf_counter() - start)
        return out


class SharedPromptDPO:
    """DPO loss from :func:`dpo_ref.packing.shared_prompt_logps` and precomputed reference log-probs.

    Returns no metrics: nothing reads them in a benchmark, and each ``.item()`` costs.
    """

    def __init__(self, beta: float):
        from dpo_ref.losses import dpo_loss

        self.loss = functools.partial(dpo_loss, beta=beta)

    def __call__(self, model, batch):
        from dpo_ref.packing import shared_prompt_logps

        chosen, rejected = shared_prompt_logps(model, batch)
        losses = self.loss(chosen, rejected, batch["reference_chosen_logps"], batch["reference_rejected_logps"])
        return losses.mean(), {}


def shared_prompt_reference_logps(model, packed: dict[str, torch.Tensor], batch_size: int) -> dict[str, torch.Tensor]:
    """``packed`` plus reference log-probs, computed in trimmed batches of ``batch_size`` pairs.

    What :func:`dpo_ref.train.precompute_reference_logps` does, with one row per pair
    and each batch cut to its own longest row instead of the dataset's.
    """
    from dpo_ref.batching import trim_padding
    from dpo_ref.packing import shared_prompt_logps

    n = len(packed["packed_input_ids"])
    chosen, rejected = torch.empty(n), torch.empty(n)
    model.eval()
    with torch.no_grad():
        for start in range(0, n, batch_size):
            rows = slice(start, start + batch_size)
            chosen[rows], rejected[rows] = shared_prompt_logps(
                model, trim_padding({k: v[rows] for k, v in packed.items()})
            )
    return {**packed, "reference_chosen_logps": chosen, "reference_rejected_logps": rejected}


def run_dpo_ref(directory: str, *, steps: int | None = None, shared_prompt: bool = True) -> dict:
    from dpo_ref.batching import OrderedBatches
    from dpo_ref.losses import dpo_loss
    from dpo_ref.packing import pack_shared_prompt
    from dpo_ref.train import PairwiseObjective, TrainConfig, Trainer, precompute_reference_logps

    workload = Workload(**json.loads((Path(directory) / "meta.json").read_text())["workload"])
    meta, tokens = load(directory)
    model = build_model(workload, meta)
    if shared_prompt:
        data = pack_shared_prompt(tokens)  # once for the whole dataset
        data = shared_prompt_reference_logps(model, data, workload.batch_size)
        objective = SharedPromptDPO(workload.beta)
    else:
        data = precompute_reference_logps(model, tokens, batch_size=workload.batch_size, device="cpu")
        objective = PairwiseObjective(functools.partial(dpo_loss, beta=workload.beta), beta=workload.beta)
    batches = OrderedBatches(data, meta["order"], workload.batch_size)

    starts: list[float] = []
    losses: list[torch.Tensor] = []
    work, clock = WorkCounter(model), PhaseClock()

    def timed_batches(step):
        starts.append(time.perf_counter())
        work.new_step()
        return batches(step)

    def recorded(model, batch):
        loss, metrics = clock.timed(clock.forward, objective, model, batch)
        losses.append(loss.detach())
        return loss, metrics

    steps = steps or workload.steps
    config = TrainConfig(
        steps=steps,
        batch_size=workload.batch_size,
        learning_rate=workload.learning_rate,
        max_grad_norm=workload.max_grad_norm,
        seed=workload.seed,
        device="cpu",
        log_every=steps,  # one record, at the end
    )
    trainer = Trainer(model, recorded, timed_batches, config)
    step = trainer.optimizer.step
    trainer.optimizer.step = lambda *a, **k: clock.timed(clock.optimizer, step, *a, **k)
    trainer.fit()
    end = time.perf_counter()
    return {
        "losses": [float(x) for x in losses],
        "step_starts": starts,
        "end": end,
        "work": work.steps,
        "forward_s": clock.forward,
        "optimizer_s": clock.optimizer,
    }


def run_trl(directory: str, *, steps: int | None = None) -> dict:
    import datasets
    from transformers import AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    directory = Path(directory)
    workload = Workload(**json.loads((directory / "meta.json").read_text())["workload"])
    meta, tokens = load(directory)
    pairs = [json.loads(line) for line in (directory / "pairs.jsonl").read_text().splitlines()]
    tokenizer = AutoTokenizer.from_pretrained(directory / "tokenizer")
    model = build_model(workload, meta)
    steps = steps or workload.steps

    losses: list[torch.Tensor] = []
    starts: list[float] = []
    ends: list[float] = []
    work, clock = WorkCounter(model), PhaseClock()
    optimizer_start: list[float] = []

    class RecordingDPOTrainer(DPOTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if not model.training:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            loss = clock.timed(clock.forward, super().compute_loss, model, inputs, return_outputs, num_items_in_batch)
            losses.append((loss[0] if return_outputs else loss).detach())
            return loss

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            starts.append(time.perf_counter())
            work.new_step()

        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            optimizer_start.append(time.perf_counter())

        def on_optimizer_step(self, args, state, control, **kwargs):
            clock.optimizer.append(time.perf_counter() - optimizer_start[-1])

        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as out:
        args = DPOConfig(
            output_dir=out,
            report_to="none",
            use_cpu=True,
            bf16=False,
            per_device_train_batch_size=workload.batch_size,
            max_steps=steps,
            learning_rate=workload.learning_rate,
            lr_scheduler_type="constant",
            warmup_steps=0,
            weight_decay=0.0,
            max_grad_norm=workload.max_grad_norm,
            beta=workload.beta,
            loss_type=["sigmoid"],
            precompute_ref_log_probs=True,
            gradient_checkpointing=False,
            train_sampling_strategy="sequential",  # the prepared order, as dpo_ref takes it
            logging_steps=steps,
            save_strategy="no",
            disable_tqdm=True,
            max_length=None,
            seed=workload.seed,
            dataloader_num_workers=0,
        )
        trainer = RecordingDPOTrainer(
            model=model,
            ref_model=None,
            args=args,
            train_dataset=datasets.Dataset.from_list(pairs),
            processing_class=tokenizer,
            callbacks=[Clock()],
        )
        tokens_match = _same_tokens(trainer.train_dataset, tokens, meta["order"])
        trainer.train()
    return {
        "losses": [float(x) for x in losses],
        "step_starts": starts,
        "end": ends[-1],
        "tokens_match": tokens_match,
        "work": work.steps,
        "forward_s": clock.forward,
        "optimizer_s": clock.optimizer,
    }


def _same_tokens(trl_dataset, tokens: dict[str, torch.Tensor], order: list[int]) -> bool:
    """TRL tokenized the text itself: are its ids, row by row in training order, dpo_ref's?"""
    for i, row in enumerate(order):
        example = trl_dataset[i]
        for side in ("chosen", "rejected"):
            n = int(tokens[f"{side}_attention_mask"][row].sum())
            ours = tokens[f"{side}_input_ids"][row, :n].tolist()
            if ours != example["prompt_ids"] + example[f"{side}_ids"]:
                return False
    return True


def main(argv: list[str]) -> int:
    trainer, directory, out, *rest = argv
    steps = int(rest[0]) if rest else None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = time.perf_counter()
    if trainer == "dpo_ref":
        result = run_dpo_ref(directory, steps=steps)
    elif trainer == "dpo_ref_plain":
        result = run_dpo_ref(directory, steps=steps, shared_prompt=False)
    elif trainer == "trl":
        result = run_trl(directory, steps=steps)
    else:
        raise SystemExit(f"unknown trainer {trainer!r}")
    result.update(
        trainer=trainer,
        process_wall_s=time.perf_counter() - started,
        peak_rss_bytes=peak_rss_bytes(),
        torch_threads=torch.get_num_threads(),
    )
    # The machine's matrix-product rate, in this process right after training: under the
    # same load and thread count as the run, at the shapes of its MLP, for its model FLOPs utilisation.
    from benchmarks.flops import matmul_flops_per_s

    workload = Workload(**json.loads((Path(directory) / "meta.json").read_text())["workload"])
    blocks = [block for step in result["work"] for block in step["blocks"]]
    rows = max(1, round(sum(b * t for b, t in blocks) / max(1, len(blocks))))  # positions per forward call
    result["matmul_flops_per_s"] = matmul_flops_per_s(rows, workload.n_embd, 4 * workload.n_embd, seconds=1.0)
    Path(out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
