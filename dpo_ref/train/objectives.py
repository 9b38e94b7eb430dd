"""The offline objectives the trainer runs: each a small class with ``__call__(model, batch)``.

* :class:`SFTObjective`: mean negative log-likelihood of the completion tokens
  (Preferred-FT is SFT on the chosen completions, :func:`dpo_ref.data.chosen_as_sft`);
* :class:`PairwiseObjective`: any loss of four log-prob tensors (DPO, conservative DPO,
  robust DPO, IPO, hinge), given as ``functools.partial(dpo_loss, beta=0.1)``;
* :class:`ReferenceFreeObjective`: a loss of per-token mean log-probs (SimPO, ORPO);
* :class:`KTOObjective`: unpaired desirable/undesirable rows with KTO's KL reference point;
* :class:`UnlikelihoodObjective`: likelihood on chosen, token unlikelihood on rejected.

Which objective a named method uses, with which hyperparameters, is in
:mod:`dpo_ref.methods`. Batch keys follow :mod:`dpo_ref.logps`: paired data has
``chosen_input_ids``, ``chosen_attention_mask``, ``chosen_labels`` and the same for
``rejected_`` (labels are -100 on prompt and padding); single sequences have
``input_ids``, ``attention_mask``, ``labels``. Precomputed reference log-probs
(:func:`precompute_reference_logps`) are the columns ``reference_chosen_logps`` /
``reference_rejected_logps``; when a batch has them the objective uses them instead of
running the reference model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dpo_ref.logps import IGNORE_INDEX, concatenate_pairs, concatenated_logps, sequence_logps, token_logps
from dpo_ref.losses import implicit_rewards, kto_kl_estimate, kto_loss, preference_metrics, unlikelihood_loss
from dpo_ref.runtime import resolve_device
from dpo_ref.train.config import TrainConfig
from dpo_ref.train.loop import Batch, Metrics, Objective, TrainResult, fit_rows, to_device

__all__ = [
    "SFTObjective",
    "PairwiseObjective",
    "ReferenceFreeObjective",
    "KTOObjective",
    "UnlikelihoodObjective",
    "precompute_reference_logps",
    "train_sft",
    "train_preference",
]


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
    :func:`dpo_ref.packing.shared_prompt_logps` (:mod:`dpo_ref.packing`), which runs each prompt once and gives the
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
    which the reference point :math:`z_0` is estimated (see :func:`dpo_ref.data.unpaired_rows`).
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
        # the frozen reference: one pass over the rows and their mismatched partners, as a
        # chosen/rejected pair (the policy takes two, since only its own rows need a graph)
        return concatenated_logps(model, _rows_with_mismatched_as_pairs(batch))

    @staticmethod
    def _row_logps(model: torch.nn.Module, batch: Batch, prefix: str = "") -> torch.Tensor:
        logits = model(input_ids=batch[f"{prefix}input_ids"], attention_mask=batch[f"{prefix}attention_mask"]).logits
        return sequence_logps(logits, batch[f"{prefix}labels"])

    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        policy_logps = self._row_logps(model, batch)
        with torch.no_grad():  # z0 is detached, so the mismatched rows need no graph (half the backward pass)
            policy_kl_logps = self._row_logps(model, batch, "kl_")
        if "reference_logps" in batch:
            reference_logps, reference_kl_logps = batch["reference_logps"], batch["reference_kl_logps"]
        else:
            if self.reference is None:
                raise ValueError("the batch has no reference_logps and no reference model was given")
            self.reference.eval()
            with torch.no_grad():
                reference_logps, reference_kl_logps = self._logps(self.reference, batch)
        kl = kto_kl_estimate(policy_kl_logps, reference_kl_logps)
        unclamped = kto_kl_estimate(policy_kl_logps, reference_kl_logps, clamp=False)
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
        rewards = implicit_rewards(policy_logps, reference_logps, beta=self.beta)
        metrics = {"kl": kl.item(), "kl/unclamped": unclamped.item()}  # z0, and the batch mean before max(0, .)
        for name, rows in (("chosen", desirable), ("rejected", ~desirable)):
            if bool(rows.any()):
                metrics[f"rewards/{name}"] = rewards[rows].mean().item()
                metrics[f"logps/{name}"] = policy_logps[rows].detach().mean().item()
        return losses.mean(), metrics


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
            part = to_device({k: v[start : start + batch_size] for k, v in pairs.items()}, device)
            c, r = concatenated_logps(reference, part, reduction=reduction)
            chosen.append(c.cpu())
            rejected.append(r.cpu())
    return {**pairs, "reference_chosen_logps": torch.cat(chosen), "reference_rejected_logps": torch.cat(rejected)}


def precompute_kto_reference_logps(
    reference: torch.nn.Module, rows: Batch, *, batch_size: int = 64, device: str | torch.device = "auto"
) -> Batch:
    """KTO's ``rows`` (:func:`dpo_ref.data.unpaired_rows`) plus ``reference_logps`` / ``reference_kl_logps``.

    Each row's mismatched partner is fixed when the rows are made, so the reference's
    log-probs of both are the same at every step: one pass here instead of one per step.
    """
    pairs = precompute_reference_logps(
        reference, _rows_with_mismatched_as_pairs(rows), batch_size=batch_size, device=device
    )
    return {
        **rows,
        "reference_logps": pairs["reference_chosen_logps"],
        "reference_kl_logps": pairs["reference_rejected_logps"],
    }


def _rows_with_mismatched_as_pairs(rows: Batch) -> Batch:
    """KTO's rows as the chosen side and their mismatched partners as the rejected side of pairs."""
    keys = ("input_ids", "attention_mask", "labels")
    return {**{f"chosen_{k}": rows[k] for k in keys}, **{f"rejected_{k}": rows[f"kl_{k}"] for k in keys}}


def train_sft(model, data: Batch, config: TrainConfig, *, eval_fn=None, on_step=None) -> TrainResult:
    """SFT on ``input_ids``/``attention_mask``/``labels`` rows (Preferred-FT: ``chosen_as_sft(pairs)``)."""
    return fit_rows(model, SFTObjective(), data, config, eval_fn=eval_fn, on_step=on_step)


def train_preference(
    policy: torch.nn.Module, objective: Objective, data: Batch, config: TrainConfig, *, eval_fn=None, on_step=None
) -> TrainResult:
    """Any offline preference objective (DPO family, SimPO, ORPO, KTO, Unlikelihood) on tensor rows."""
    return fit_rows(policy, objective, data, config, eval_fn=eval_fn, on_step=on_step)
