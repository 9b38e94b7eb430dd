"""One small trainer, and the objectives it runs: SFT, reward model, the DPO family, PPO.

* :mod:`~dpo_ref.train.config`: :class:`TrainConfig`, how to optimise;
* :mod:`~dpo_ref.train.loop`: :class:`Trainer`, the loop and its resumable checkpoints
  (the contract ``objective(model, batch)`` / ``batches(step)`` is in its docstring);
* :mod:`~dpo_ref.train.objectives`: the offline objectives (SFT, the DPO family, SimPO,
  ORPO, KTO, Unlikelihood) and the reference log-probs they can precompute;
* :mod:`~dpo_ref.train.reward_model`: the Bradley-Terry reward model of RLHF;
* :mod:`~dpo_ref.train.ppo`: PPO, with its maths as pure functions.

Which objective a named method uses is in :mod:`dpo_ref.methods`. Everything public is
importable from here: ``from dpo_ref.train import Trainer, TrainConfig, PairwiseObjective``.
"""

from __future__ import annotations

from dpo_ref.batching import TensorBatches
from dpo_ref.errors import NonFiniteLossError
from dpo_ref.train.config import TrainConfig
from dpo_ref.train.loop import Batch, Metrics, Objective, Trainer, TrainResult, fit_rows
from dpo_ref.train.objectives import (
    KTOObjective,
    PairwiseObjective,
    ReferenceFreeObjective,
    SFTObjective,
    UnlikelihoodObjective,
    precompute_kto_reference_logps,
    precompute_reference_logps,
    train_preference,
    train_sft,
)
from dpo_ref.train.ppo import PPOConfig, PPOObjective, PPORollouts, ValueHeadModel, train_ppo
from dpo_ref.train.reward_model import RewardModel, RewardObjective, train_reward_model

__all__ = [
    "Batch",
    "Metrics",
    "Objective",
    "TrainConfig",
    "PPOConfig",
    "Trainer",
    "TrainResult",
    "NonFiniteLossError",
    "TensorBatches",
    "fit_rows",
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
    "precompute_kto_reference_logps",
]
