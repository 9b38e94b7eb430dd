"""How to optimise: :class:`TrainConfig`. Nothing here says what is optimised."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch

from dpo_ref.errors import UserError
from dpo_ref.validation import check_choice, check_int, check_number

__all__ = ["TrainConfig"]


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
    # batches of rows of similar length, less padding to compute (dpo_ref.batching.TensorBatches); rows
    # are still drawn at random each epoch, only grouped within a random window of them
    group_by_length: bool = False
    device: str = "auto"  # "auto" (cuda if available), "cpu" or "cuda"
    checkpoint_dir: str | None = None  # where checkpoints go; None writes none and never resumes
    checkpoint_every: int = 0  # save every this many steps (0: only at the end)
    keep_checkpoints: int = 2  # older checkpoints beyond this many are deleted
    log_every: int = 1  # record metrics every this many steps (and always at the last)
    eval_every: int = 0  # call eval_fn every this many steps (0: only before and after training)

    def __post_init__(self):
        # every field is checked here, so a bad value fails before any work, naming the field
        check_int(self, "steps", 1)
        check_int(self, "batch_size", 1)
        check_number(self, "learning_rate", "a finite learning rate > 0", lambda v: v > 0)
        check_choice(self, "optimizer", ("adamw", "rmsprop"))
        check_number(self, "weight_decay", "a finite number >= 0", lambda v: v >= 0)
        check_int(self, "warmup_steps", 0)
        if self.max_grad_norm is not None:
            check_number(self, "max_grad_norm", "None (no clipping) or a finite number > 0", lambda v: v > 0)
        check_int(self, "seed", None)
        if not isinstance(self.group_by_length, bool):
            raise UserError(f"TrainConfig.group_by_length must be True or False, got {self.group_by_length!r}")
        if isinstance(self.device, torch.device):
            self.device = str(self.device)  # the config is saved as JSON in every checkpoint
        if not isinstance(self.device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise UserError(f"TrainConfig.device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.checkpoint_dir is not None:
            if not isinstance(self.checkpoint_dir, (str, os.PathLike)) or not os.fspath(self.checkpoint_dir):
                raise UserError(
                    f"TrainConfig.checkpoint_dir must be None or a folder path, got {self.checkpoint_dir!r}"
                )
            self.checkpoint_dir = os.fspath(self.checkpoint_dir)
        check_int(self, "checkpoint_every", 0)
        check_int(self, "keep_checkpoints", 1)
        check_int(self, "log_every", 1)
        check_int(self, "eval_every", 0)
