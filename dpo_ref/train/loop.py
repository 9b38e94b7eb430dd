"""The training loop: minimise ``objective(model, batches(step))``, with resumable checkpoints.

The trainer knows nothing about losses (ARCHITECTURE.md, "Layers"). It needs three things:

``model``
    any ``torch.nn.Module``; its parameters are the ones optimised and checkpointed.
``objective``
    a callable ``objective(model, batch) -> (loss, metrics)``: ``loss`` a 0-d tensor to
    minimise, ``metrics`` a ``dict[str, float]`` to log (detached numbers). Frozen models
    the objective needs (a reference policy) are held by the objective itself.
``batches``
    a callable ``batches(step) -> dict[str, Tensor]`` that returns the batch of optimiser
    step ``step``. It must depend only on ``step`` (and on the model, for on-policy data),
    never on how many times it was called: that is what makes a resumed run identical to
    an uninterrupted one. A source with internal state (PPO's rollout buffer) also
    exposes ``state_dict() -> dict[str, Tensor]`` and ``load_state_dict(d)``; the trainer
    saves that state in every checkpoint.

Usage::

    trainer = Trainer(model, objective, batches, TrainConfig(steps=200, learning_rate=1e-3))
    result = trainer.fit()          # resumes from config.checkpoint_dir if it holds a checkpoint
    result.history                  # one dict per logged step: {"step", "loss", metric..., "eval/..."}

``eval_fn(model) -> dict[str, float]`` (optional) runs under ``torch.no_grad()`` before
training, every ``config.eval_every`` steps and at the end; its values are logged with
an ``eval/`` prefix. ``on_step(step, record)`` (optional) sees every logged record, for
progress bars.

Checkpoints (``config.checkpoint_dir/step-000123/``): ``model.safetensors``,
``optimizer.pt`` (optimizer state, loaded with ``weights_only=True``), ``data.safetensors``
(the batch source's state, if any), ``rng.safetensors`` and ``trainer_state.json`` (step,
history, config). Each is written into a temporary folder that is renamed into place, so
a killed run never leaves a half-written checkpoint; :meth:`Trainer.fit` resumes from the
newest complete one; a checkpoint that cannot be loaded is a one-line error naming it
and the file. A non-finite loss or gradient norm (the trainer's own checks, every
step), or a :class:`~dpo_ref.errors.NonFiniteError` raised inside the objective (the
losses' value checks, in debug mode), stops training with
:class:`~dpo_ref.errors.NonFiniteLossError` naming the step and the last good
checkpoint; no checkpoint is written after it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from dpo_ref.batching import TensorBatches
from dpo_ref.errors import MissingFileError, NonFiniteError, NonFiniteLossError, UserError
from dpo_ref.runtime import resolve_device
from dpo_ref.train.config import TrainConfig

__all__ = ["Batch", "Metrics", "Objective", "Trainer", "TrainResult", "fit_rows"]

Batch = dict[str, torch.Tensor]
Metrics = dict[str, float]


class Objective(Protocol):
    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]: ...


def to_device(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device) for k, v in batch.items()}


@dataclass
class TrainResult:
    model: torch.nn.Module  # the trained model (on the training device)
    history: list[dict[str, float]]  # logged records: {"step", "loss", metrics..., "eval/<name>"...}
    step: int  # the number of optimiser updates done
    checkpoint: str | None  # path of the last checkpoint written, if any


class Trainer:
    """Minimise ``objective(model, batches(step))`` for ``config.steps`` steps. See the module docstring."""

    def __init__(
        self,
        model: torch.nn.Module,
        objective: Objective,
        batches: Callable[[int], Batch],
        config: TrainConfig,
        *,
        eval_fn: Callable[[torch.nn.Module], Metrics] | None = None,
        on_step: Callable[[int, Metrics], None] | None = None,
    ):
        self.config = config
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        self.objective, self.batches = objective, batches
        self.eval_fn, self.on_step = eval_fn, on_step
        params = [p for p in self.model.parameters() if p.requires_grad]
        if config.optimizer == "adamw":
            # the fused kernel: one pass over all parameters per step instead of one per tensor
            # (what TRL uses too); the same algorithm, rounded slightly differently
            self.optimizer = torch.optim.AdamW(
                params,
                lr=config.learning_rate,
                weight_decay=config.weight_decay,
                fused=self.device.type in ("cpu", "cuda"),
            )
        else:
            self.optimizer = torch.optim.RMSprop(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.last_checkpoint: str | None = None

    # ---------------------------------------------------------------- loop

    def fit(self) -> TrainResult:
        cfg = self.config
        if self.last_checkpoint is None:
            self._resume()
        if self.step == 0 and self.eval_fn is not None:
            self.history.append({"step": 0, **self._evaluate()})
        while self.step < cfg.steps:
            step = self.step
            self.model.train()
            batch = to_device(self.batches(step), self.device)
            self._set_learning_rate(step)
            try:
                loss, metrics = self.objective(self.model, batch)
            except NonFiniteError as error:  # a debug-mode check inside the objective named a tensor
                self._diverged(step, f"the loss got non-finite inputs ({error})")
            if not bool(torch.isfinite(loss)):  # the trainer's own check, before any gradient is computed
                self._diverged(step, f"loss is {loss.item()}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = self._clip_gradients()
            if not math.isfinite(grad_norm):
                self._diverged(step, f"gradient norm is {grad_norm}")
            self.optimizer.step()
            self.step = step + 1

            record: dict[str, float] | None = None
            if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                record = {"step": self.step, "loss": loss.item(), "grad_norm": grad_norm, **metrics}
            if self.eval_fn is not None and (
                self.step == cfg.steps or (cfg.eval_every and self.step % cfg.eval_every == 0)
            ):
                record = {**(record or {"step": self.step}), **self._evaluate()}
            if record is not None:
                self.history.append(record)
                if self.on_step is not None:
                    self.on_step(self.step, record)
            if cfg.checkpoint_dir and (
                self.step == cfg.steps or (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0)
            ):
                self.save_checkpoint()
        return TrainResult(self.model, self.history, self.step, self.last_checkpoint)

    def _set_learning_rate(self, step: int) -> None:
        warm = self.config.warmup_steps
        factor = min(1.0, (step + 1) / warm) if warm else 1.0
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.learning_rate * factor

    def _clip_gradients(self) -> float:
        params = [p for p in self.model.parameters() if p.grad is not None]
        max_norm = self.config.max_grad_norm if self.config.max_grad_norm is not None else float("inf")
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    def _evaluate(self) -> Metrics:
        self.model.eval()
        with torch.no_grad():
            return {f"eval/{k}": v for k, v in self.eval_fn(self.model).items()}

    def _diverged(self, step: int, what: str) -> None:
        where = self.last_checkpoint or "none written"
        raise NonFiniteLossError(
            f"training stopped at step {step}: {what}. The model was not updated; "
            f"last good checkpoint: {where}. Lower the learning rate, check the data for "
            "extreme values, or train in float32."
        )

    # ---------------------------------------------------------------- checkpoints

    def save_checkpoint(self) -> str:
        """Write ``step-XXXXXX/`` atomically (temporary folder, then rename); prune old ones."""
        root = Path(self.config.checkpoint_dir)
        root.mkdir(parents=True, exist_ok=True)
        final = root / f"step-{self.step:06d}"
        tmp = root / f".tmp-step-{self.step:06d}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        save_model(self.model, str(tmp / "model.safetensors"))
        torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
        state_dict = getattr(self.batches, "state_dict", None)
        if state_dict is not None:
            save_file({k: v.contiguous().cpu() for k, v in state_dict().items()}, str(tmp / "data.safetensors"))
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state()
        save_file(rng, str(tmp / "rng.safetensors"))
        state = {"step": self.step, "history": self.history, "config": dataclasses.asdict(self.config)}
        (tmp / "trainer_state.json").write_text(json.dumps(state, indent=1))
        for f in tmp.iterdir():  # the rename below must not overtake the file contents
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        self.last_checkpoint = str(final)
        for old in _complete_checkpoints(root)[: -self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return str(final)

    def _resume(self) -> None:
        if not self.config.checkpoint_dir or not Path(self.config.checkpoint_dir).is_dir():
            return
        root = Path(self.config.checkpoint_dir)
        for stale in root.glob(".tmp-step-*"):  # left by a run killed while saving
            shutil.rmtree(stale, ignore_errors=True)
        done = _complete_checkpoints(root)
        if done:
            self.load_checkpoint(done[-1])

    def load_checkpoint(self, path: str | Path) -> None:
        """Restore model, optimizer, batch source, RNG and step from a ``step-XXXXXX/`` folder.

        A missing file is a ``FileNotFoundError`` and any other failure a one-line
        ``ValueError``; both name the checkpoint and the file.
        """
        path = Path(path)

        def load(name: str, read: Callable[[Path], object]):
            file = path / name
            if not file.is_file():
                raise MissingFileError(f"checkpoint file {file} is missing; {_CHECKPOINT_ADVICE}")
            try:
                return read(file)
            except Exception as error:  # noqa: BLE001 - safetensors, torch and json errors alike
                raise UserError(
                    f"checkpoint {path}: {name} cannot be loaded ({_summary(error)}); {_CHECKPOINT_ADVICE}"
                ) from None

        load("model.safetensors", lambda f: load_model(self.model, str(f), device=str(self.device)))
        optimizer_state = load("optimizer.pt", lambda f: torch.load(f, weights_only=True, map_location=self.device))
        load("optimizer.pt", lambda f: self.optimizer.load_state_dict(optimizer_state))
        if (path / "data.safetensors").exists():
            load("data.safetensors", lambda f: self.batches.load_state_dict(load_file(str(f))))
        rng = load("rng.safetensors", lambda f: load_file(str(f)))
        load("rng.safetensors", lambda f: torch.set_rng_state(rng["cpu"]))
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])
        state = load("trainer_state.json", lambda f: json.loads(f.read_text()))
        self.step, self.history = load("trainer_state.json", lambda f: (int(state["step"]), list(state["history"])))
        self.last_checkpoint = str(path)


_CHECKPOINT_ADVICE = "delete this checkpoint folder to resume from the one before, or use another checkpoint_dir"


def _summary(error: BaseException) -> str:
    """An exception as one line: its first line, plus the first detail when that line ends in ':'."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    summary = lines[0] if len(lines) == 1 or not lines[0].endswith(":") else f"{lines[0]} {lines[1]}"
    return f"{type(error).__name__}: {summary.rstrip('.')}"


def _complete_checkpoints(root: Path) -> list[Path]:
    found = [p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"step-\d{6}", p.name)]
    return sorted(found, key=lambda p: int(p.name[5:]))


def fit_rows(
    model: torch.nn.Module,
    objective: Objective,
    rows: Batch,
    config: TrainConfig,
    *,
    eval_fn: Callable[[torch.nn.Module], Metrics] | None = None,
    on_step: Callable[[int, Metrics], None] | None = None,
) -> TrainResult:
    """Train on a dict of equal-length tensors (one row per example), reshuffled every epoch."""
    batches = TensorBatches(rows, config.batch_size, config.seed, group_by_length=config.group_by_length)
    return Trainer(model, objective, batches, config, eval_fn=eval_fn, on_step=on_step).fit()
