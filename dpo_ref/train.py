"""One small trainer, and the objectives it runs: SFT, reward model, the DPO family, PPO.

The trainer knows nothing about losses (STYLE habit 7). It needs three things:

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

Objectives defined here, each a small class with a ``__call__(model, batch)``:

* :class:`SFTObjective`: mean negative log-likelihood of the completion tokens
  (Preferred-FT is SFT on the chosen completions, :func:`chosen_as_sft`);
* :class:`RewardObjective`: Bradley-Terry loss of a :class:`RewardModel`;
* :class:`PairwiseObjective`: any loss of four log-prob tensors (DPO, conservative DPO,
  robust DPO, IPO, hinge) given as ``functools.partial(dpo_loss, beta=0.1)``;
* :class:`ReferenceFreeObjective`: a loss of per-token mean log-probs (SimPO, ORPO);
* :class:`KTOObjective`: unpaired desirable/undesirable rows with KTO's KL reference point;
* :class:`UnlikelihoodObjective`: likelihood on chosen, token unlikelihood on rejected;
* :class:`PPOObjective` with :class:`PPORollouts` as its batch source: sampled rollouts,
  per-token KL penalty against the reference, GAE, clipped policy and value losses.

Batch keys follow :mod:`dpo_ref.logps`: paired data has ``chosen_input_ids``,
``chosen_attention_mask``, ``chosen_labels`` and the same for ``rejected_`` (labels are
-100 on prompt and padding); single sequences have ``input_ids``, ``attention_mask``,
``labels``. Precomputed reference log-probs (:func:`precompute_reference_logps`) are the
columns ``reference_chosen_logps`` / ``reference_rejected_logps``; when a batch has them
the objective uses them instead of running the reference model.

Checkpoints (``config.checkpoint_dir/step-000123/``): ``model.safetensors``,
``optimizer.pt`` (optimizer state, loaded with ``weights_only=True``), ``data.safetensors``
(the batch source's state, if any), ``rng.safetensors`` and ``trainer_state.json`` (step,
history, config). Each is written into a temporary folder that is renamed into place, so
a killed run never leaves a half-written checkpoint; :meth:`Trainer.fit` resumes from the
newest complete one; a checkpoint that cannot be loaded is a one-line error naming it
and the file. A non-finite loss or gradient, or NaN log-probs caught by a loss's input
check, stops training with :class:`NonFiniteLossError` naming the step and the last
good checkpoint; no checkpoint is written after it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from dpo_ref.errors import UserError
from dpo_ref.logps import IGNORE_INDEX, concatenate_pairs, concatenated_logps, sequence_logps, token_logps
from dpo_ref.losses import bradley_terry_loss, kto_kl_estimate, kto_loss, preference_metrics, unlikelihood_loss

__all__ = [
    "TrainConfig",
    "PPOConfig",
    "Trainer",
    "TrainResult",
    "NonFiniteLossError",
    "TensorBatches",
    "SFTObjective",
    "RewardModel",
    "RewardObjective",
    "PairwiseObjective",
    "ReferenceFreeObjective",
    "KTOObjective",
    "UnlikelihoodObjective",
    "ValueHeadModel",
    "PPORollouts",
    "PPOObjective",
    "train_sft",
    "train_reward_model",
    "train_preference",
    "train_ppo",
    "precompute_reference_logps",
    "chosen_as_sft",
    "kto_rows_from_pairs",
    "token_logps",
    "resolve_device",
    "seeded_generator",
]

Batch = dict[str, torch.Tensor]
Metrics = dict[str, float]


class Objective(Protocol):
    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]: ...


# --------------------------------------------------------------------------- configuration


@dataclass
class TrainConfig:
    """How to optimise; nothing here says what is optimised."""

    steps: int = 100  # optimiser updates in total (a resumed run continues up to this number)
    batch_size: int = 64  # rows per update; the DPO paper uses 64 (Appendix B)
    learning_rate: float = 1e-3  # peak rate; the DPO paper's 1e-6 is for billion-parameter models
    optimizer: str = "adamw"  # "adamw" or "rmsprop" (the DPO paper's choice, Appendix B)
    weight_decay: float = 0.0  # AdamW decoupled weight decay; 0 keeps the policy near its start
    warmup_steps: int = 0  # linear warm-up; the DPO paper warms up over 150 steps
    max_grad_norm: float | None = 1.0  # clip the global gradient norm; None turns clipping off
    seed: int = 0  # seeds the batch order (and PPO's sampling); same seed -> same run
    device: str = "auto"  # "auto" (cuda if available), "cpu" or "cuda"
    checkpoint_dir: str | None = None  # where checkpoints go; None writes none and never resumes
    checkpoint_every: int = 0  # save every this many steps (0: only at the end)
    keep_checkpoints: int = 2  # older checkpoints beyond this many are deleted
    log_every: int = 1  # record metrics every this many steps (and always at the last)
    eval_every: int = 0  # call eval_fn every this many steps (0: only before and after training)

    def __post_init__(self):
        # every field is checked here, so a bad value fails before any work, naming the field
        _check_int(self, "steps", 1)
        _check_int(self, "batch_size", 1)
        _check_number(self, "learning_rate", "a finite learning rate > 0", lambda v: v > 0)
        if self.optimizer not in ("adamw", "rmsprop"):
            raise UserError(f"TrainConfig.optimizer must be 'adamw' or 'rmsprop', got {self.optimizer!r}")
        _check_number(self, "weight_decay", "a finite number >= 0", lambda v: v >= 0)
        _check_int(self, "warmup_steps", 0)
        if self.max_grad_norm is not None:
            _check_number(self, "max_grad_norm", "None (no clipping) or a finite number > 0", lambda v: v > 0)
        _check_int(self, "seed", None)
        if isinstance(self.device, torch.device):
            self.device = str(self.device)  # the config is saved as JSON in every checkpoint
        if not isinstance(self.device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise UserError(f"TrainConfig.device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.checkpoint_dir is not None:
            if not isinstance(self.checkpoint_dir, (str, os.PathLike)) or not os.fspath(self.checkpoint_dir):
                raise UserError(f"TrainConfig.checkpoint_dir must be None or a folder path, got {self.checkpoint_dir!r}")
            self.checkpoint_dir = os.fspath(self.checkpoint_dir)
        _check_int(self, "checkpoint_every", 0)
        _check_int(self, "keep_checkpoints", 1)
        _check_int(self, "log_every", 1)
        _check_int(self, "eval_every", 0)


@dataclass
class PPOConfig:
    """PPO for RLHF (Ziegler et al. 2019, arXiv 1909.08593; Schulman et al. 2017, arXiv 1707.06347)."""

    kl_coef: float = 0.1  # beta of the RLHF objective (DPO paper eq. 3), applied per token
    rollout_batch_size: int = 64  # completions sampled per rollout
    ppo_epochs: int = 4  # passes over each rollout (Ziegler et al. use 4 for their PPO)
    minibatch_size: int = 32  # rows per optimiser update; must divide rollout_batch_size
    clip_range: float = 0.2  # epsilon of the clipped surrogate (Schulman et al. 2017)
    clip_range_value: float = 0.2  # the same clipping for the value prediction
    vf_coef: float = 0.1  # weight of the value loss in the shared-backbone loss
    gamma: float = 1.0  # no discounting inside one completion (Ziegler et al. 2019)
    lam: float = 0.95  # GAE lambda (Schulman et al. 2016, arXiv 1506.02438)
    temperature: float = 1.0  # sampling temperature of the rollouts (1 samples the policy itself)
    max_new_tokens: int = 4  # completion length; generation stops earlier only at eos_token_id
    eos_token_id: int | None = None  # token that ends a completion; None: always max_new_tokens
    whiten_advantages: bool = True  # normalise advantages per rollout, as TRL does

    def __post_init__(self):
        _check_number(self, "kl_coef", "a finite number >= 0", lambda v: v >= 0)
        _check_int(self, "rollout_batch_size", 1)
        _check_int(self, "ppo_epochs", 1)
        _check_int(self, "minibatch_size", 1)
        self.updates_per_rollout()  # minibatch_size must divide rollout_batch_size
        _check_number(self, "clip_range", "a finite number > 0", lambda v: v > 0)
        _check_number(self, "clip_range_value", "a finite number > 0", lambda v: v > 0)
        _check_number(self, "vf_coef", "a finite number >= 0", lambda v: v >= 0)
        _check_number(self, "gamma", "a number in [0, 1]", lambda v: 0 <= v <= 1)
        _check_number(self, "lam", "a number in [0, 1]", lambda v: 0 <= v <= 1)
        _check_number(self, "temperature", "a finite number > 0", lambda v: v > 0)
        _check_int(self, "max_new_tokens", 1)
        if self.eos_token_id is not None:
            _check_int(self, "eos_token_id", 0, wanted="None or a token id >= 0")
        if not isinstance(self.whiten_advantages, bool):
            raise UserError(f"PPOConfig.whiten_advantages must be True or False, got {self.whiten_advantages!r}")

    def updates_per_rollout(self) -> int:
        if self.rollout_batch_size % self.minibatch_size:
            raise UserError(
                f"PPOConfig.minibatch_size ({self.minibatch_size}) must divide rollout_batch_size "
                f"({self.rollout_batch_size})"
            )
        return self.ppo_epochs * (self.rollout_batch_size // self.minibatch_size)


def _check_int(config, name: str, minimum: int | None, *, wanted: str | None = None) -> None:
    """``config.<name>`` is an integer (not a bool) >= ``minimum``; numpy integers become ints."""
    value = getattr(config, name)
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if ok and (minimum is None or value >= minimum):
        setattr(config, name, int(value))  # json.dumps, in every checkpoint, rejects numpy ints
        return
    wanted = wanted or ("an integer" if minimum is None else f"an integer >= {minimum}")
    raise UserError(f"{type(config).__name__}.{name} must be {wanted}, got {value!r}")


def _check_number(config, name: str, wanted: str, ok: Callable[[float], bool]) -> None:
    """``config.<name>`` is a finite real number (not a bool) for which ``ok`` holds."""
    value = getattr(config, name)
    real = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not (real and ok(value)):
        raise UserError(f"{type(config).__name__}.{name} must be {wanted}, got {value!r}")


# --------------------------------------------------------------------------- small helpers


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available; asking for CUDA without one is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but torch sees no CUDA device; use --device cpu or auto")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return torch.device(device)


def seeded_generator(*seeds: int) -> torch.Generator:
    """A CPU generator seeded from several integers (the same integers give the same stream).

    Sampling always draws on the CPU from such a generator, so a run gives the same
    samples on CPU and GPU and never depends on the global RNG.
    """
    g = torch.Generator()
    g.manual_seed(hash_seeds(*seeds))
    return g


def hash_seeds(*seeds: int) -> int:
    """Combine integers into one seed, stably across processes (Python's hash() is salted)."""
    value = 0x9E3779B97F4A7C15
    for s in seeds:
        value = (value * 6364136223846793005 + int(s) + 1442695040888963407) % (1 << 63)
    return value


def _to(batch: Batch, device: torch.device) -> Batch:
    return {k: v.to(device) for k, v in batch.items()}


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


# --------------------------------------------------------------------------- data


class TensorBatches:
    """Batches drawn from a dict of equal-length tensors, reshuffled every epoch.

    The batch of step ``s`` is a pure function of ``(seed, s)``: epoch ``s // n`` uses the
    permutation seeded by ``(seed, epoch)``. The last incomplete batch of an epoch is
    dropped, so every batch has ``batch_size`` rows.
    """

    def __init__(self, data: Batch, batch_size: int, seed: int = 0):
        if not data:
            raise UserError("TensorBatches got an empty dict: data must map column names to tensors, one row per example")
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise UserError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        lengths = {k: len(v) for k, v in data.items()}
        n = next(iter(lengths.values()))
        if any(m != n for m in lengths.values()):
            raise ValueError(f"all columns must have the same number of rows, got {lengths}")
        if batch_size > n:
            raise ValueError(f"batch_size {batch_size} is larger than the dataset ({n} rows)")
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.steps_per_epoch = n // batch_size
        self._epoch, self._order = -1, None

    def __call__(self, step: int) -> Batch:
        epoch, i = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            n = len(next(iter(self.data.values())))
            self._epoch, self._order = epoch, torch.randperm(n, generator=seeded_generator(self.seed, epoch))
        rows = self._order[i * self.batch_size : (i + 1) * self.batch_size]
        return {k: v[rows] for k, v in self.data.items()}


def chosen_as_sft(pairs: Batch) -> Batch:
    """The chosen side of a preference dataset as SFT rows (Preferred-FT's data)."""
    return {
        "input_ids": pairs["chosen_input_ids"],
        "attention_mask": pairs["chosen_attention_mask"],
        "labels": pairs["chosen_labels"],
    }


# --------------------------------------------------------------------------- the trainer


class NonFiniteLossError(FloatingPointError):
    """Training met NaN or infinity; the message names the step and the last good checkpoint."""


# what the losses' input checks say about NaN/inf tensors (dpo_ref.losses._check_tensors)
_NON_FINITE_INPUT = re.compile(r"\bcontains (NaN|inf)")


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
            self.optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        elif config.optimizer == "rmsprop":
            self.optimizer = torch.optim.RMSprop(params, lr=config.learning_rate, weight_decay=config.weight_decay)
        else:
            raise ValueError(f"optimizer must be 'adamw' or 'rmsprop', got {config.optimizer!r}")
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
            batch = _to(self.batches(step), self.device)
            self._set_learning_rate(step)
            try:
                loss, metrics = self.objective(self.model, batch)
            except ValueError as error:
                # a loss's input check saw NaN/inf log-probs: the same failure as a NaN loss, one step earlier
                if not _NON_FINITE_INPUT.search(str(error)):
                    raise
                self._diverged(step, f"the loss got non-finite inputs ({error})")
            if not bool(torch.isfinite(loss)):
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
                raise FileNotFoundError(f"checkpoint file {file} is missing; {_CHECKPOINT_ADVICE}")
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


# --------------------------------------------------------------------------- SFT


class SFTObjective:
    """Negative log-likelihood of the completion tokens, averaged per token then over rows.

    Batch: ``input_ids``, ``attention_mask``, ``labels``. Preferred-FT (DPO paper,
    section 6) is this objective on the chosen completions.
    """

    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        logps = sequence_logps(logits, batch["labels"], reduction="mean")  # (B,)
        loss = -logps.mean()
        return loss, {"nll": loss.item()}


# --------------------------------------------------------------------------- reward model


class RewardModel(torch.nn.Module):
    """A transformer backbone and a linear scalar head read at the last attended token.

    ``RewardModel.from_causal_lm(lm)`` reuses a causal LM's backbone (a deep copy), the
    usual start for a reward model (DPO paper section 3: initialised from the SFT model).
    """

    def __init__(self, backbone: torch.nn.Module, hidden_size: int):
        super().__init__()
        self.backbone = backbone
        self.head = torch.nn.Linear(hidden_size, 1)
        torch.nn.init.zeros_(self.head.weight)  # every reward starts at 0: the BT loss at ln 2
        torch.nn.init.zeros_(self.head.bias)

    @classmethod
    def from_causal_lm(cls, lm: torch.nn.Module) -> RewardModel:
        import copy

        backbone = copy.deepcopy(lm.base_model)
        for p in backbone.parameters():  # the LM may be a frozen reference; its copy trains
            p.requires_grad_(True)
        return cls(backbone, lm.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=_position_ids(attention_mask)
        ).last_hidden_state  # (B, T, H)
        # the last attended position of each row, whichever side is padded
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        last = (attention_mask.bool() * positions).argmax(dim=1)  # (B,)
        picked = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (B, H)
        return self.head(picked).squeeze(-1).float()  # (B,)


class RewardObjective:
    """Bradley-Terry loss (DPO paper eq. 2) of a :class:`RewardModel` on paired batches."""

    def __init__(self, *, margin: float = 0.0):
        self.margin = margin

    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        input_ids, attention_mask, _ = concatenate_pairs(batch)  # (2B, T): chosen over rejected
        rewards = model(input_ids, attention_mask)  # (2B,)
        n = batch["chosen_input_ids"].shape[0]
        chosen, rejected = rewards[:n], rewards[n:]
        loss = bradley_terry_loss(chosen, rejected, margin=self.margin).mean()
        chosen, rejected = chosen.detach(), rejected.detach()
        return loss, {
            "rewards/chosen": chosen.mean().item(),
            "rewards/rejected": rejected.mean().item(),
            "rewards/margins": (chosen - rejected).mean().item(),
            "rewards/accuracies": (chosen > rejected).float().mean().item(),
        }


# --------------------------------------------------------------------------- DPO family


def _reference_pair_logps(
    reference: torch.nn.Module | None, batch: Batch, reduction: str, pair_logps=concatenated_logps
) -> tuple[torch.Tensor, torch.Tensor]:
    if "reference_chosen_logps" in batch:
        return batch["reference_chosen_logps"], batch["reference_rejected_logps"]
    if reference is None:
        raise ValueError("the batch has no reference_chosen_logps and no reference model was given")
    reference.eval()
    with torch.no_grad():
        return pair_logps(reference, batch, reduction=reduction)


class PairwiseObjective:
    """Any loss of the four log-prob tensors: DPO, conservative DPO, robust DPO, IPO, hinge.

    ``loss`` is called as ``loss(policy_chosen_logps, policy_rejected_logps,
    reference_chosen_logps, reference_rejected_logps)`` and returns per-example losses,
    e.g. ``functools.partial(dpo_loss, beta=0.1)``. ``beta`` only scales the logged
    implicit rewards. ``reduction`` is ``"sum"`` (DPO) or ``"mean"`` (IPO as TRL computes
    it); precomputed reference log-probs must use the same reduction. ``pair_logps``
    computes chosen and rejected log-probs: :func:`dpo_ref.logps.concatenated_logps`, or
    :func:`dpo_ref.logps.shared_prompt_logps`, which runs each prompt once and gives the
    same numbers faster (the performance page measures it).
    """

    def __init__(
        self,
        loss: Callable[..., torch.Tensor],
        *,
        beta: float,
        reference: torch.nn.Module | None = None,
        reduction: str = "sum",
        pair_logps: Callable[..., tuple[torch.Tensor, torch.Tensor]] = concatenated_logps,
    ):
        self.loss, self.beta, self.reference, self.reduction = loss, beta, reference, reduction
        self.pair_logps = pair_logps

    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        policy_chosen_logps, policy_rejected_logps = self.pair_logps(model, batch, reduction=self.reduction)
        reference_chosen_logps, reference_rejected_logps = _reference_pair_logps(
            self.reference, batch, self.reduction, self.pair_logps
        )
        losses = self.loss(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
        metrics = preference_metrics(
            policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps, beta=self.beta
        )
        return losses.mean(), metrics


class ReferenceFreeObjective:
    """A loss of per-token mean log-probs of chosen and rejected, with no reference model.

    ``loss(policy_chosen_mean_logps, policy_rejected_mean_logps)`` returns per-example
    losses: ``partial(simpo_loss, beta=2.0, gamma=1.0)``, or for ORPO
    ``lambda c, r: orpo_loss(c, r, -c, lam=0.1)`` (its SFT term is the chosen NLL).
    Logged rewards are ``beta * mean log-prob`` (SimPO's reward; TRL's CPO logs the same).
    """

    def __init__(self, loss: Callable[..., torch.Tensor], *, beta: float):
        self.loss, self.beta = loss, beta

    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        chosen, rejected = concatenated_logps(model, batch, reduction="mean")
        losses = self.loss(chosen, rejected)
        zero = torch.zeros_like(chosen)
        return losses.mean(), preference_metrics(chosen, rejected, zero, zero, beta=self.beta)


class KTOObjective:
    """KTO (Ethayarajh et al., arXiv 2402.01306) on unpaired rows.

    Batch: ``input_ids``, ``attention_mask``, ``labels``, ``desirable`` (bool), and the
    mismatched completions ``kl_input_ids``, ``kl_attention_mask``, ``kl_labels`` from
    which the reference point :math:`z_0` is estimated (see :func:`kto_rows_from_pairs`).
    Optional precomputed ``reference_logps`` / ``reference_kl_logps``.
    """

    def __init__(
        self,
        *,
        beta: float,
        reference: torch.nn.Module | None = None,
        desirable_weight: float = 1.0,
        undesirable_weight: float = 1.0,
    ):
        self.beta, self.reference = beta, reference
        self.desirable_weight, self.undesirable_weight = desirable_weight, undesirable_weight

    @staticmethod
    def _logps(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        # one pass over the rows and their mismatched partners, as a chosen/rejected pair
        pair = {
            "chosen_input_ids": batch["input_ids"],
            "chosen_attention_mask": batch["attention_mask"],
            "chosen_labels": batch["labels"],
            "rejected_input_ids": batch["kl_input_ids"],
            "rejected_attention_mask": batch["kl_attention_mask"],
            "rejected_labels": batch["kl_labels"],
        }
        return concatenated_logps(model, pair)

    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        policy_logps, policy_kl_logps = self._logps(model, batch)
        if "reference_logps" in batch:
            reference_logps, reference_kl_logps = batch["reference_logps"], batch["reference_kl_logps"]
        else:
            if self.reference is None:
                raise ValueError("the batch has no reference_logps and no reference model was given")
            self.reference.eval()
            with torch.no_grad():
                reference_logps, reference_kl_logps = self._logps(self.reference, batch)
        kl = kto_kl_estimate(policy_kl_logps, reference_kl_logps)
        desirable = batch["desirable"].bool()
        losses = kto_loss(
            policy_logps,
            reference_logps,
            desirable,
            kl,
            beta=self.beta,
            desirable_weight=self.desirable_weight,
            undesirable_weight=self.undesirable_weight,
        )
        rewards = (self.beta * (policy_logps - reference_logps)).detach()
        metrics = {"kl": kl.item()}
        for name, rows in (("chosen", desirable), ("rejected", ~desirable)):
            if bool(rows.any()):
                metrics[f"rewards/{name}"] = rewards[rows].mean().item()
                metrics[f"logps/{name}"] = policy_logps[rows].detach().mean().item()
        return losses.mean(), metrics


def kto_rows_from_pairs(pairs: Batch, *, shift: int = 1) -> Batch:
    """Unpaired KTO rows from paired data: each chosen is desirable, each rejected not.

    The mismatched completion of row ``i`` (for KTO's KL estimate) is the completion of
    row ``i + shift`` glued to the prompt of row ``i``. This needs prompt and completion
    at fixed positions: every row's prompt has the same length and no padding, as in the
    exact world. Rows are interleaved chosen/rejected so a batch holds both kinds.
    """
    ids = torch.stack([pairs["chosen_input_ids"], pairs["rejected_input_ids"]], 1).flatten(0, 1)
    mask = torch.stack([pairs["chosen_attention_mask"], pairs["rejected_attention_mask"]], 1).flatten(0, 1)
    labels = torch.stack([pairs["chosen_labels"], pairs["rejected_labels"]], 1).flatten(0, 1)
    n = ids.shape[0]
    desirable = torch.arange(n) % 2 == 0
    prompt = labels == IGNORE_INDEX  # (2N, T) prompt positions (no padding assumed)
    if not bool((prompt == prompt[:1]).all()):
        raise ValueError("kto_rows_from_pairs needs every prompt to have the same length and no padding")
    other = torch.roll(ids, -shift, 0)
    kl_ids = torch.where(prompt, ids, other)
    kl_labels = torch.where(prompt, labels, other)
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "labels": labels,
        "desirable": desirable,
        "kl_input_ids": kl_ids,
        "kl_attention_mask": mask.clone(),
        "kl_labels": kl_labels,
    }


class UnlikelihoodObjective:
    """Likelihood on the chosen completion, token-level unlikelihood on the rejected one.

    The loss is :func:`dpo_ref.losses.unlikelihood_loss` (equation and source there); the
    "Unlikelihood" baseline of the DPO paper (section 6), which "simply optimizes the
    policy to maximize the probability of y_w and minimize the probability of y_l".
    """

    def __init__(self, *, alpha: float = 1.0):
        self.alpha = alpha

    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        input_ids, attention_mask, labels = concatenate_pairs(batch)
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        n = batch["chosen_input_ids"].shape[0]
        chosen_logps = sequence_logps(logits[:n], labels[:n], reduction="mean")  # (B,)
        rejected_tokens, rejected_mask = token_logps(logits[n:], labels[n:])  # (B, T-1)
        loss = unlikelihood_loss(chosen_logps, rejected_tokens, rejected_mask, alpha=self.alpha).mean()
        rejected_logps = (rejected_tokens * rejected_mask).sum(1)
        return loss, {
            "logps/chosen": (chosen_logps.detach() * (labels[:n, 1:] != IGNORE_INDEX).sum(1)).mean().item(),
            "logps/rejected": rejected_logps.detach().mean().item(),
        }


# --------------------------------------------------------------------------- PPO


class ValueHeadModel(torch.nn.Module):
    """A causal LM and a scalar value head on its last hidden state (shared backbone).

    ``forward`` returns ``(logits (B, T, V), values (B, T))``; ``values[:, t]`` estimates
    the return of the state after token ``t``. ``.lm`` is the policy itself.
    """

    def __init__(self, lm: torch.nn.Module):
        super().__init__()
        self.lm = lm
        self.value_head = torch.nn.Linear(lm.config.hidden_size, 1)
        torch.nn.init.zeros_(self.value_head.weight)  # deterministic start; learns fast anyway
        torch.nn.init.zeros_(self.value_head.bias)

    def forward(self, input_ids, attention_mask, position_ids=None):
        out = self.lm(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, output_hidden_states=True
        )
        return out.logits, self.value_head(out.hidden_states[-1]).squeeze(-1).float()


def _position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    # left-padded prompts: positions count attended tokens only
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class PPORollouts:
    """PPO's batch source: samples a rollout every ``updates_per_rollout`` steps, serves minibatches.

    A rollout: ``rollout_batch_size`` prompts (rows of ``prompts``, left-padded, with
    ``prompt_attention_mask``), completions sampled from the current policy, their
    ``reward_fn(input_ids, attention_mask) -> (B,)`` scores, per-token log-probs of policy
    and reference, values, and GAE advantages with the per-token KL penalty

    .. math::

        r_t = -\\beta\\,\\big(\\log\\pi(y_t|\\cdot) - \\log\\pi_{\\text{ref}}(y_t|\\cdot)\\big)
        + [t = \\text{last}]\\; r_\\phi(x, y)

    (Ziegler et al. 2019). Sampling uses a generator seeded by ``(seed, rollout index)``,
    and the buffer is part of every checkpoint, so a resumed run continues identically.
    """

    def __init__(
        self,
        policy: ValueHeadModel,
        reference: torch.nn.Module,
        reward_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        prompts: torch.Tensor,
        config: PPOConfig,
        *,
        prompt_attention_mask: torch.Tensor | None = None,
        seed: int = 0,
    ):
        self.policy, self.reference, self.reward_fn, self.config, self.seed = policy, reference, reward_fn, config, seed
        self.prompts = prompts
        self.prompt_attention_mask = prompt_attention_mask if prompt_attention_mask is not None else torch.ones_like(prompts)
        self.updates = config.updates_per_rollout()
        self.buffer: Batch = {}
        self.rollout_index = -1

    def __call__(self, step: int) -> Batch:
        index, j = divmod(step, self.updates)
        if index != self.rollout_index:
            self.buffer = self._rollout(index)
            self.rollout_index = index
        n_minibatches = self.config.rollout_batch_size // self.config.minibatch_size
        epoch, k = divmod(j, n_minibatches)
        order = torch.randperm(self.config.rollout_batch_size, generator=seeded_generator(self.seed, index, epoch, 1))
        rows = order[k * self.config.minibatch_size : (k + 1) * self.config.minibatch_size]
        return {key: value[rows] for key, value in self.buffer.items()}

    def state_dict(self) -> Batch:
        return {**self.buffer, "_rollout_index": torch.tensor(self.rollout_index)}

    def load_state_dict(self, state: Batch) -> None:
        state = dict(state)
        self.rollout_index = int(state.pop("_rollout_index"))
        self.buffer = state

    @torch.no_grad()
    def _rollout(self, index: int) -> Batch:
        cfg = self.config
        device = next(self.policy.parameters()).device
        g = seeded_generator(self.seed, index, 0)
        rows = torch.randint(len(self.prompts), (cfg.rollout_batch_size,), generator=g)
        ids = self.prompts[rows].to(device)
        attention = self.prompt_attention_mask[rows].to(device)
        prompt_length = ids.shape[1]
        self.policy.eval()
        finished = torch.zeros(len(ids), dtype=torch.bool, device=device)
        for _ in range(cfg.max_new_tokens):
            logits, _ = self.policy(ids, attention, _position_ids(attention))
            probs = torch.softmax(logits[:, -1].float() / cfg.temperature, dim=-1).cpu()
            token = torch.multinomial(probs, 1, generator=g).squeeze(1).to(device)  # (B,)
            ids = torch.cat([ids, token[:, None]], 1)
            attention = torch.cat([attention, (~finished).long()[:, None]], 1)
            if cfg.eos_token_id is not None:
                finished |= token == cfg.eos_token_id
        labels = ids.masked_fill(attention == 0, IGNORE_INDEX)
        labels[:, :prompt_length] = IGNORE_INDEX
        position_ids = _position_ids(attention)

        logits, values = self.policy(ids, attention, position_ids)
        old_logps, mask = token_logps(logits / cfg.temperature, labels)  # (B, T-1)
        reference_logits = self.reference(input_ids=ids, attention_mask=attention, position_ids=position_ids).logits
        reference_logps, _ = token_logps(reference_logits / cfg.temperature, labels)
        values = values[:, :-1] * mask  # value of the state before each scored token
        scores = self.reward_fn(ids, attention).float().to(device)  # (B,)

        kl = (old_logps - reference_logps) * mask  # (B, T-1), per-token log-ratio
        rewards = -cfg.kl_coef * kl
        last = mask.long().cumsum(1).argmax(1)  # index of the last scored token
        rewards[torch.arange(len(ids)), last] += scores
        advantages = _gae(rewards, values, mask, cfg.gamma, cfg.lam)
        returns = advantages + values
        if cfg.whiten_advantages:
            mean = _masked_mean(advantages, mask)
            std = _masked_mean((advantages - mean) ** 2, mask).sqrt()
            advantages = (advantages - mean) / (std + 1e-8) * mask
        return {
            "input_ids": ids,
            "attention_mask": attention,
            "labels": labels,
            "old_logps": old_logps,
            "old_values": values,
            "advantages": advantages,
            "returns": returns,
            "rollout_score": scores,
            "rollout_kl": kl.sum(1),
        }


def _gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """Generalised advantage estimation over the scored positions (Schulman et al. 2016, eq. 16).

    .. math:: \\hat A_t = \\sum_l (\\gamma\\lambda)^l \\delta_{t+l},\\quad \\delta_t = r_t + \\gamma V_{t+1} - V_t
    """
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros(rewards.shape[0], device=rewards.device)
    next_advantage = torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[1])):
        m = mask[:, t].float()
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = advantage * m
        # masked positions (prompt, padding) pass the values of later tokens through
        next_value = torch.where(m.bool(), values[:, t], next_value)
        next_advantage = torch.where(m.bool(), advantage, next_advantage)
    return advantages


class PPOObjective:
    """PPO's clipped surrogate plus a clipped value loss (Schulman et al. 2017, eq. 7 and 9).

    .. math::

        L^{\\text{CLIP}} = -\\mathbb E_t\\big[\\min(\\rho_t \\hat A_t,\\ \\text{clip}(\\rho_t, 1-\\epsilon, 1+\\epsilon)\\hat A_t)\\big],
        \\quad \\rho_t = \\frac{\\pi_\\theta(y_t|\\cdot)}{\\pi_{\\text{old}}(y_t|\\cdot)}

    The model is a :class:`ValueHeadModel`; batches come from :class:`PPORollouts`.
    Logs ``kl`` (mean summed log-ratio to the reference over the rollout rows, a sampled
    estimate), ``score`` (mean reward-model score) and ``rlhf_reward`` (score - beta * kl).
    """

    def __init__(self, config: PPOConfig):
        self.config = config

    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        cfg = self.config
        attention = batch["attention_mask"]
        logits, values = model(batch["input_ids"], attention, _position_ids(attention))
        logps, mask = token_logps(logits / cfg.temperature, batch["labels"])  # (B, T-1)
        values = values[:, :-1]
        advantages = batch["advantages"]

        ratio = torch.exp(logps - batch["old_logps"])
        clipped = ratio.clamp(1 - cfg.clip_range, 1 + cfg.clip_range)
        policy_loss = _masked_mean(torch.max(-advantages * ratio, -advantages * clipped), mask)

        old_values = batch["old_values"]
        values_clipped = old_values + (values - old_values).clamp(-cfg.clip_range_value, cfg.clip_range_value)
        value_loss = 0.5 * _masked_mean(
            torch.max((values - batch["returns"]) ** 2, (values_clipped - batch["returns"]) ** 2), mask
        )
        loss = policy_loss + cfg.vf_coef * value_loss
        with torch.no_grad():
            log_ratio = logps - batch["old_logps"]
            metrics = {
                "kl": batch["rollout_kl"].mean().item(),
                "score": batch["rollout_score"].mean().item(),
                "rlhf_reward": (batch["rollout_score"] - cfg.kl_coef * batch["rollout_kl"]).mean().item(),
                "loss/policy": policy_loss.item(),
                "loss/value": value_loss.item(),
                "policy/clipfrac": _masked_mean(((ratio - 1).abs() > cfg.clip_range).float(), mask).item(),
                "policy/approxkl": _masked_mean(0.5 * log_ratio**2, mask).item(),
            }
        return loss, metrics


# --------------------------------------------------------------------------- recipes


def precompute_reference_logps(
    reference: torch.nn.Module,
    pairs: Batch,
    *,
    batch_size: int = 64,
    reduction: str = "sum",
    device: str | torch.device = "auto",
) -> Batch:
    """``pairs`` plus ``reference_chosen_logps`` / ``reference_rejected_logps`` columns.

    One pass of the frozen reference over the data; afterwards the reference model can
    leave memory. The values equal what the objective would compute live.
    """
    device = resolve_device(device)
    reference = reference.to(device).eval()
    chosen, rejected = [], []
    n = len(pairs["chosen_input_ids"])
    with torch.no_grad():
        for start in range(0, n, batch_size):
            part = _to({k: v[start : start + batch_size] for k, v in pairs.items()}, device)
            c, r = concatenated_logps(reference, part, reduction=reduction)
            chosen.append(c.cpu())
            rejected.append(r.cpu())
    return {**pairs, "reference_chosen_logps": torch.cat(chosen), "reference_rejected_logps": torch.cat(rejected)}


def _train(model, objective, data, config, eval_fn, on_step) -> TrainResult:
    batches = TensorBatches(data, config.batch_size, config.seed)
    return Trainer(model, objective, batches, config, eval_fn=eval_fn, on_step=on_step).fit()


def train_sft(model, data: Batch, config: TrainConfig, *, eval_fn=None, on_step=None) -> TrainResult:
    """SFT on ``input_ids``/``attention_mask``/``labels`` rows (Preferred-FT: ``chosen_as_sft(pairs)``)."""
    return _train(model, SFTObjective(), data, config, eval_fn, on_step)


def train_reward_model(model: RewardModel, pairs: Batch, config: TrainConfig, *, on_step=None) -> TrainResult:
    """Bradley-Terry reward model on paired rows."""
    return _train(model, RewardObjective(), pairs, config, None, on_step)


def train_preference(
    policy: torch.nn.Module, objective: Objective, data: Batch, config: TrainConfig, *, eval_fn=None, on_step=None
) -> TrainResult:
    """Any offline preference objective (DPO family, SimPO, ORPO, KTO, Unlikelihood) on tensor rows."""
    return _train(policy, objective, data, config, eval_fn, on_step)


def train_ppo(
    policy_lm: torch.nn.Module,
    reference: torch.nn.Module,
    reward_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    prompts: torch.Tensor,
    ppo_config: PPOConfig,
    config: TrainConfig,
    *,
    prompt_attention_mask: torch.Tensor | None = None,
    eval_fn: Callable[[torch.nn.Module], Metrics] | None = None,
    on_step=None,
) -> TrainResult:
    """RLHF with PPO. ``config.steps`` counts minibatch updates (``ppo_config.updates_per_rollout()`` per rollout).

    ``config.batch_size`` is unused (PPO's sizes are in ``ppo_config``). ``eval_fn``
    receives the :class:`ValueHeadModel`; its ``.lm`` is the policy.
    """
    device = resolve_device(config.device)
    model = ValueHeadModel(policy_lm).to(device)
    reference = reference.to(device).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    rollouts = PPORollouts(
        model, reference, reward_fn, prompts, ppo_config, prompt_attention_mask=prompt_attention_mask, seed=config.seed
    )
    return Trainer(model, PPOObjective(ppo_config), rollouts, config, eval_fn=eval_fn, on_step=on_step).fit()

