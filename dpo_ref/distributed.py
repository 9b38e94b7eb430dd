"""Run :class:`dpo_ref.train.Trainer` data-parallel over several processes, with PyTorch's own DDP.

There is no engine here. The launcher (``torchrun`` or ``accelerate launch``) starts one
process per device and sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous
address; ``torch.distributed`` connects them (NCCL on GPUs, gloo on CPUs); and
:class:`torch.nn.parallel.DistributedDataParallel` averages gradients during
``backward()``. This module only fits those pieces around the unchanged trainer:

* :class:`ShardedBatches`: every process builds the *global* batch of step ``s`` (the
  trainer's batch sources are pure functions of ``s``) and keeps its own contiguous
  ``1/world_size`` slice of the rows;
* :class:`GlobalMetricsObjective`: the logged loss and metrics are averaged over the
  processes, so they are those of the global batch, and the gradient is untouched;
* :class:`DistributedTrainer`: wraps the model in DDP after the trainer has moved it to
  its device, writes checkpoints from rank 0 only (in the single-process format, so a
  checkpoint resumes with any number of processes), loads them on every rank, and
  returns the unwrapped model.

Why the result equals a one-process run with the same global batch ``B``: each rank's
loss is the mean over its ``B / N`` rows, DDP averages the ``N`` gradients, and the mean
of equal-sized means is the mean over all ``B`` rows. Every rank then holds the same
averaged gradient, so clipping and the optimizer step are identical everywhere.
``tests/test_distributed.py`` checks this with two CPU processes.

Usage, in a script launched by ``torchrun --nproc_per_node N script.py``::

    context = init_distributed()                     # one process: a no-op
    trainer = DistributedTrainer(model, objective, batches, config, context=context)
    result = trainer.fit()                           # result.model is the plain model
    if context.is_main:
        save_pretrained(result.model, tokenizer, "out")

Scope: offline objectives whose batch source is a function of the step (SFT, the
reward model, the DPO family, SimPO, ORPO). ``config.batch_size`` is the global batch
and must be divisible by the number of processes. A frozen reference model is not
wrapped: each process keeps its own copy on its device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from dpo_ref.train import Batch, Metrics, TrainConfig, Trainer, TrainResult

__all__ = [
    "DistributedContext",
    "init_distributed",
    "shard_batch",
    "ShardedBatches",
    "GlobalMetricsObjective",
    "DistributedTrainer",
    "unwrap",
]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: its rank among ``world_size`` processes, and its local device index."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that prints, writes checkpoints and saves models."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def init_distributed(backend: str | None = None) -> DistributedContext:
    """Join the process group the launcher described in the environment, once.

    Reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (set by ``torchrun`` and
    ``accelerate launch``). Without them, or with ``WORLD_SIZE=1``, nothing is
    initialised and a one-process context is returned, so the same script runs with
    plain ``python``. ``backend`` defaults to ``"nccl"`` when CUDA is available (each
    process then uses GPU ``LOCAL_RANK``) and ``"gloo"`` otherwise.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)  # so that device "cuda" means this process's GPU
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank)


def shard_batch(batch: Batch, rank: int, world_size: int) -> Batch:
    """Rows ``[rank * B/N, (rank + 1) * B/N)`` of every tensor of a batch of ``B`` rows."""
    sizes = {len(v) for v in batch.values()}
    if len(sizes) != 1:
        raise ValueError(f"every tensor of a batch must have the same number of rows, got {sorted(sizes)}")
    (n,) = sizes
    if n % world_size:
        raise ValueError(f"a batch of {n} rows does not split evenly over {world_size} processes")
    per_rank = n // world_size
    return {k: v[rank * per_rank : (rank + 1) * per_rank] for k, v in batch.items()}


class ShardedBatches:
    """This process's share of ``batches(step)``, the global batch that every process builds alike.

    Stateful sources keep working: ``state_dict`` / ``load_state_dict`` are passed through.
    """

    def __init__(self, batches: Callable[[int], Batch], context: DistributedContext):
        self.batches, self.context = batches, context
        if hasattr(batches, "state_dict"):
            self.state_dict = batches.state_dict
            self.load_state_dict = batches.load_state_dict

    def __call__(self, step: int) -> Batch:
        return shard_batch(self.batches(step), self.context.rank, self.context.world_size)


class GlobalMetricsObjective:
    """An objective whose logged loss and metrics are averaged over the processes.

    The returned loss has the *value* of the global-batch loss but the *gradient* of the
    local one (``local + (global - local).detach()``); DDP then averages gradients. A
    metric that only some processes report (KTO logs ``rewards/chosen`` only when its
    shard holds a desirable row) is averaged over the processes that report it.
    """

    def __init__(self, objective, context: DistributedContext):
        self.objective, self.context = objective, context

    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        loss, metrics = self.objective(model, batch)
        if not self.context.enabled:
            return loss, metrics
        local = loss.detach().float().reshape(1)
        global_loss = local.clone()
        dist.all_reduce(global_loss)
        global_loss /= self.context.world_size
        gathered: list[Metrics] = [{} for _ in range(self.context.world_size)]
        dist.all_gather_object(gathered, metrics)
        averaged = {}
        for key in dict.fromkeys(k for m in gathered for k in m):
            values = [m[key] for m in gathered if key in m]
            averaged[key] = sum(values) / len(values)
        return loss + (global_loss - local).to(loss.dtype).reshape(loss.shape), averaged


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside a DDP wrapper (or the model itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


class DistributedTrainer(Trainer):
    """:class:`~dpo_ref.train.Trainer`, data-parallel when launched with several processes.

    With one process it *is* the plain trainer. With ``N``: the batch source is sharded,
    the logged metrics are global, the model is wrapped in DDP, only rank 0 calls
    ``on_step`` (progress bars) and writes checkpoints, and ``eval_fn`` receives the
    unwrapped model. ``config.batch_size`` stays the global batch size.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        objective,
        batches: Callable[[int], Batch],
        config: TrainConfig,
        *,
        context: DistributedContext | None = None,
        eval_fn: Callable[[torch.nn.Module], Metrics] | None = None,
        on_step: Callable[[int, Metrics], None] | None = None,
        find_unused_parameters: bool = False,
    ):
        self.context = context if context is not None else init_distributed()
        if self.context.enabled:
            if config.batch_size % self.context.world_size:
                raise ValueError(
                    f"batch_size {config.batch_size} (the global batch) must be divisible by the "
                    f"{self.context.world_size} processes"
                )
            objective = GlobalMetricsObjective(objective, self.context)
            batches = ShardedBatches(batches, self.context)
        wrapped_eval = None if eval_fn is None else (lambda m: eval_fn(unwrap(m)))
        super().__init__(
            model, objective, batches, config, eval_fn=wrapped_eval, on_step=on_step if self.context.is_main else None
        )
        if self.context.enabled:
            device_ids = [torch.cuda.current_device()] if self.device.type == "cuda" else None
            # DDP broadcasts rank 0's weights, then averages gradients in backward().
            self.model = DistributedDataParallel(
                self.model, device_ids=device_ids, find_unused_parameters=find_unused_parameters
            )

    @contextlib.contextmanager
    def _plain_model(self):
        """Checkpoints hold the plain model's weights: the same files with any number of processes."""
        wrapped = self.model
        self.model = unwrap(wrapped)
        try:
            yield
        finally:
            self.model = wrapped

    def save_checkpoint(self) -> str:
        """Rank 0 writes (atomically, as the plain trainer does); every rank waits for it."""
        path = str(Path(self.config.checkpoint_dir) / f"step-{self.step:06d}")
        if self.context.is_main:
            with self._plain_model():
                path = super().save_checkpoint()
        self.context.barrier()
        self.last_checkpoint = path
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        """Every rank reads the same files (a shared filesystem), so all start identical."""
        with self._plain_model():
            super().load_checkpoint(path)

    def fit(self) -> TrainResult:
        result = super().fit()
        return dataclasses.replace(result, model=unwrap(result.model))
