"""The reward model of RLHF: a transformer with a scalar head, trained with Bradley-Terry.

DPO paper (arXiv 2305.18290), section 3: the reward model :math:`r_\\phi(x, y)` is
initialised from the SFT model and trained on preference pairs with the loss (2),
:func:`dpo_ref.losses.bradley_terry_loss`.
"""

from __future__ import annotations

import copy

import torch

from dpo_ref.logps import concatenate_pairs
from dpo_ref.losses import bradley_terry_loss, reward_metrics
from dpo_ref.models import position_ids
from dpo_ref.train.config import TrainConfig
from dpo_ref.train.loop import Batch, Metrics, TrainResult, fit_rows

__all__ = ["RewardModel", "RewardObjective", "train_reward_model"]


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
        backbone = copy.deepcopy(lm.base_model)
        for p in backbone.parameters():  # the LM may be a frozen reference; its copy trains
            p.requires_grad_(True)
        return cls(backbone, lm.config.hidden_size)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask)
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
        return loss, reward_metrics(chosen, rejected)


def train_reward_model(model: RewardModel, pairs: Batch, config: TrainConfig, *, on_step=None) -> TrainResult:
    """Bradley-Terry reward model on paired rows."""
    return fit_rows(model, RewardObjective(), pairs, config, on_step=on_step)
