"""RLHF with PPO: the policy with a value head, sampled rollouts, GAE, clipped losses.

Ziegler et al. 2019 (arXiv 1909.08593) for PPO on language models, Schulman et al.
2017 (arXiv 1707.06347) for the clipped objective, Schulman et al. 2016 (arXiv
1506.02438) for GAE. The trainer runs it like any other objective:
:class:`PPORollouts` is the batch source (it samples a rollout every
``updates_per_rollout`` steps and serves its minibatches) and :class:`PPOObjective` the
objective. The maths of each step is a pure function of tensors
(:func:`kl_penalised_rewards`, :func:`gae`, :func:`whiten`, :func:`clipped_policy_loss`,
:func:`clipped_value_loss`), tested by hand.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dpo_ref.errors import UserError
from dpo_ref.logps import IGNORE_INDEX, token_logps
from dpo_ref.models import position_ids
from dpo_ref.runtime import resolve_device, seeded_generator
from dpo_ref.sampling import sample
from dpo_ref.train.config import TrainConfig
from dpo_ref.train.loop import Batch, Metrics, Trainer, TrainResult
from dpo_ref.validation import check_int, check_number

__all__ = [
    "DIAGNOSTICS",
    "diagnostics",
    "PPOConfig",
    "ValueHeadModel",
    "PPORollouts",
    "PPOObjective",
    "trim_completions",
    "train_ppo",
    "kl_penalised_rewards",
    "gae",
    "whiten",
    "clipped_policy_loss",
    "clipped_value_loss",
]


@dataclass
class PPOConfig:
    """PPO for RLHF (Ziegler et al. 2019, arXiv 1909.08593; Schulman et al. 2017, arXiv 1707.06347)."""

    kl_coef: float = 0.1  # beta of the RLHF objective (DPO paper eq. 3), applied per token
    rollout_batch_size: int = 64  # completions sampled per rollout
    ppo_epochs: int = 4  # passes over each rollout (Ziegler et al. use 4 for their PPO)
    minibatch_size: int = 32  # rows per optimiser update; must divide rollout_batch_size
    clip_range: float = 0.2  # epsilon of the clipped surrogate (Schulman et al. 2017)
    clip_range_value: float = 0.2  # the same clipping for the value prediction (suits rewards of order 1)
    vf_coef: float = 0.1  # weight of the value loss; the critic is a separate network (TRL's default 0.1)
    gamma: float = 1.0  # no discounting inside one completion (Ziegler et al. 2019)
    lam: float = 0.95  # GAE lambda (Schulman et al. 2016, arXiv 1506.02438)
    temperature: float = 1.0  # sampling temperature of the rollouts (1 samples the policy itself)
    max_new_tokens: int = 4  # completion length; generation stops earlier only at eos_token_id
    eos_token_id: int | None = None  # token that ends a completion; None: always max_new_tokens
    whiten_advantages: bool = True  # normalise advantages per rollout, as TRL does

    def __post_init__(self):
        check_number(self, "kl_coef", "a finite number >= 0", lambda v: v >= 0)
        check_int(self, "rollout_batch_size", 1)
        check_int(self, "ppo_epochs", 1)
        check_int(self, "minibatch_size", 1)
        self.updates_per_rollout()  # minibatch_size must divide rollout_batch_size
        check_number(self, "clip_range", "a finite number > 0", lambda v: v > 0)
        check_number(self, "clip_range_value", "a finite number > 0", lambda v: v > 0)
        check_number(self, "vf_coef", "a finite number >= 0", lambda v: v >= 0)
        check_number(self, "gamma", "a number in [0, 1]", lambda v: 0 <= v <= 1)
        check_number(self, "lam", "a number in [0, 1]", lambda v: 0 <= v <= 1)
        check_number(self, "temperature", "a finite number > 0", lambda v: v > 0)
        check_int(self, "max_new_tokens", 1)
        if self.eos_token_id is not None:
            check_int(self, "eos_token_id", 0, wanted="None or a token id >= 0")
        if not isinstance(self.whiten_advantages, bool):
            raise UserError(f"PPOConfig.whiten_advantages must be True or False, got {self.whiten_advantages!r}")

    def updates_per_rollout(self) -> int:
        if self.rollout_batch_size % self.minibatch_size:
            raise UserError(
                f"PPOConfig.minibatch_size ({self.minibatch_size}) must divide rollout_batch_size "
                f"({self.rollout_batch_size})"
            )
        return self.ppo_epochs * (self.rollout_batch_size // self.minibatch_size)


class ValueHeadModel(torch.nn.Module):
    """The policy and its critic: a causal LM, and a separate copy of its transformer with a scalar head.

    ``forward`` returns ``(logits (B, T, V), values (B, T))``; ``values[:, t]`` estimates
    the return of the state after token ``t``. ``.lm`` is the policy itself.

    The critic has its own weights (initialised from the policy's, its head at zero), as
    in TRL's PPO and Ouyang et al. 2022: with one shared backbone the value loss, whose
    scale follows the reward's, pulls on the same features as the policy gradient.
    """

    def __init__(self, lm: torch.nn.Module):
        super().__init__()
        self.lm = lm
        self.critic = copy.deepcopy(lm.base_model).requires_grad_(True)
        self.value_head = torch.nn.Linear(lm.config.hidden_size, 1)
        torch.nn.init.zeros_(self.value_head.weight)  # every value starts at 0; deterministic
        torch.nn.init.zeros_(self.value_head.bias)

    def forward(self, input_ids, attention_mask, position_ids=None):
        logits = self.lm(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
        hidden = self.critic(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)
        return logits, self.value_head(hidden.last_hidden_state).squeeze(-1).float()


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
        self.prompt_attention_mask = (
            prompt_attention_mask if prompt_attention_mask is not None else torch.ones_like(prompts)
        )
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
        return trim_completions({key: value[rows] for key, value in self.buffer.items()})

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
        sampled = sample(
            self.policy.lm,
            ids,
            attention,
            max_new_tokens=cfg.max_new_tokens,
            generator=g,
            temperature=cfg.temperature,
            eos_token_id=cfg.eos_token_id,
        )
        ids, attention = sampled.input_ids, sampled.attention_mask
        labels = ids.masked_fill(attention == 0, IGNORE_INDEX)
        labels[:, :prompt_length] = IGNORE_INDEX
        positions = position_ids(attention)

        logits, values = self.policy(ids, attention, positions)
        old_logps, mask = token_logps(logits / cfg.temperature, labels)  # (B, T-1)
        reference_logits = self.reference(input_ids=ids, attention_mask=attention, position_ids=positions).logits
        reference_logps, _ = token_logps(reference_logits / cfg.temperature, labels)
        values = values[:, :-1] * mask  # value of the state before each scored token
        scores = self.reward_fn(ids, attention).float().to(device)  # (B,)

        kl = (old_logps - reference_logps) * mask  # (B, T-1), per-token log-ratio
        rewards = kl_penalised_rewards(kl, scores, mask, cfg.kl_coef)
        advantages = gae(rewards, values, mask, cfg.gamma, cfg.lam)
        returns = advantages + values
        if cfg.whiten_advantages:
            advantages = whiten(advantages, mask)
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


def trim_completions(batch: Batch) -> Batch:
    """A minibatch cut after its last attended column.

    Completions end at different lengths, and a column where every row has ended is
    masked everywhere: it changes no loss, only the cost (sentiment-world minibatches
    are about 48 columns wide, with their last real token near column 40 on average). The
    ``(B, T)`` columns keep that many positions, the per-token ``(B, T - 1)`` ones one fewer.
    """
    width = batch["input_ids"].shape[1]
    attended = batch["attention_mask"].bool().any(0)  # (T,)
    keep = int(attended.nonzero().max()) + 1
    return {k: v[:, : keep - (width - v.shape[1])] if v.ndim == 2 else v for k, v in batch.items()}


def kl_penalised_rewards(kl: torch.Tensor, scores: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """Per-token rewards ``(B, T)``: minus ``kl_coef`` times each token's log-ratio, plus the
    sequence's score on its last scored token (Ziegler et al. 2019, eq. 2).

    ``kl``: ``(B, T)`` per-token log-ratios (0 where ``mask`` is False); ``scores``: ``(B,)``.
    """
    rewards = -kl_coef * kl
    last = mask.long().cumsum(1).argmax(1)  # index of the last scored token: the EOS, if any
    rewards[torch.arange(len(rewards)), last] += scores
    return rewards


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """Generalised advantage estimation over the scored positions (Schulman et al. 2016, eq. 16).

    .. math:: \\hat A_t = \\sum_l (\\gamma\\lambda)^l \\delta_{t+l},\\quad \\delta_t = r_t + \\gamma V_{t+1} - V_t

    All arguments ``(B, T)``; masked positions (prompt, padding) get advantage 0 and pass
    the values of later tokens through.
    """
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros(rewards.shape[0], device=rewards.device)
    next_advantage = torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[1])):
        m = mask[:, t].float()
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        advantages[:, t] = advantage * m
        next_value = torch.where(m.bool(), values[:, t], next_value)
        next_advantage = torch.where(m.bool(), advantage, next_advantage)
    return advantages


def whiten(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``values`` shifted and scaled to mean 0 and standard deviation 1 over the masked positions (0 elsewhere)."""
    mean = masked_mean(values, mask)
    std = masked_mean((values - mean) ** 2, mask).sqrt()
    return (values - mean) / (std + 1e-8) * mask


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def clipped_policy_loss(
    logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, clip_range: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate (Schulman et al. 2017, eq. 7), as a loss to minimise; and the ratios.

    .. math::

        L^{\\text{CLIP}} = -\\mathbb E_t\\big[\\min(\\rho_t \\hat A_t,\\
        \\text{clip}(\\rho_t, 1-\\epsilon, 1+\\epsilon)\\hat A_t)\\big],
        \\quad \\rho_t = \\frac{\\pi_\\theta(y_t|\\cdot)}{\\pi_{\\text{old}}(y_t|\\cdot)}

    A ratio outside ``[1 - eps, 1 + eps]`` in the direction the advantage favours gives
    the clipped value and no gradient: the update cannot move the policy further there.
    All tensors ``(B, T)``; the mean is over the masked positions.
    """
    ratio = torch.exp(logps - old_logps)
    clipped = ratio.clamp(1 - clip_range, 1 + clip_range)
    # max of the negatives = min of the objectives
    loss = masked_mean(torch.max(-advantages * ratio, -advantages * clipped), mask)
    return loss, ratio


def clipped_value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor, clip_range: float
) -> torch.Tensor:
    """Half the squared error of the value, the larger of the clipped and unclipped one (Schulman et al.'s
    PPO code, as in TRL): a value that moved more than ``clip_range`` from its rollout estimate is judged
    at the clipped prediction, so one update cannot move it much further."""
    values_clipped = old_values + (values - old_values).clamp(-clip_range, clip_range)
    return 0.5 * masked_mean(torch.max((values - returns) ** 2, (values_clipped - returns) ** 2), mask)


class PPOObjective:
    """PPO's clipped surrogate plus a clipped value loss (Schulman et al. 2017, eq. 7 and 9):
    :func:`clipped_policy_loss` + ``vf_coef`` * :func:`clipped_value_loss`.

    The model is a :class:`ValueHeadModel`; batches come from :class:`PPORollouts`. Logs
    what a PPO practitioner watches: ``kl`` (mean summed log-ratio to the reference over
    the rollout rows, a sampled estimate), ``score`` (mean reward), ``objective`` (the
    score minus ``kl_coef`` times the KL: what PPO maximises), ``loss/policy``,
    ``loss/value``, ``policy/clipfrac`` (share of tokens whose ratio left the clip range),
    ``policy/approxkl`` (mean of half the squared log-ratio to the rollout policy) and
    ``policy/entropy`` (mean token entropy, nats).
    """

    def __init__(self, config: PPOConfig):
        self.config = config

    def __call__(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        cfg = self.config
        attention = batch["attention_mask"]
        logits, values = model(batch["input_ids"], attention, position_ids(attention))
        logps, mask = token_logps(logits / cfg.temperature, batch["labels"])  # (B, T-1)
        values = values[:, :-1]
        advantages = batch["advantages"]

        policy_loss, ratio = clipped_policy_loss(logps, batch["old_logps"], advantages, mask, cfg.clip_range)
        value_loss = clipped_value_loss(values, batch["old_values"], batch["returns"], mask, cfg.clip_range_value)
        loss = policy_loss + cfg.vf_coef * value_loss
        with torch.no_grad():
            log_ratio = logps - batch["old_logps"]
            distribution = (logits[:, :-1] / cfg.temperature).float().log_softmax(-1)  # (B, T-1, V)
            token_entropy = -(distribution.exp() * distribution).sum(-1)  # (B, T-1), of the sampling distribution
            metrics = {
                "kl": batch["rollout_kl"].mean().item(),
                "score": batch["rollout_score"].mean().item(),
                # what PPO maximises: the score minus kl_coef times the KL, per completion
                "objective": (batch["rollout_score"] - cfg.kl_coef * batch["rollout_kl"]).mean().item(),
                "loss/policy": policy_loss.item(),
                "loss/value": value_loss.item(),
                "policy/clipfrac": masked_mean(((ratio - 1).abs() > cfg.clip_range).float(), mask).item(),
                "policy/approxkl": masked_mean(0.5 * log_ratio**2, mask).item(),
                "policy/entropy": masked_mean(token_entropy, mask).item(),
            }
        return loss, metrics


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


# what practitioners watch in a PPO run, as it logs them: what the experiments keep of every run's log
DIAGNOSTICS = (
    "policy/approxkl",
    "policy/clipfrac",
    "policy/entropy",
    "loss/value",
    "loss/policy",
    "objective",
    "kl",
    "score",
)


def diagnostics(history: list[dict]) -> list[dict]:
    """The records of a PPO run's log that follow an update, each cut to its step and :data:`DIAGNOSTICS`."""
    return [
        {"step": int(record["step"]), **{k: record[k] for k in DIAGNOSTICS if k in record}}
        for record in history
        if "loss/value" in record
    ]
