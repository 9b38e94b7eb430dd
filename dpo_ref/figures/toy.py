"""A one-prompt example small enough to solve exactly, and the closed form of equation (4).

The prompt has eight possible answers. Each has a probability under the reference
policy, a true reward ``r*`` (what people want), and a reward-model score ``r_phi``
that agrees with ``r*`` on the common answers but overrates two rare ones (flattery,
copying the article). Because the answer set is finite, every expectation below is an
exact sum, no sampling anywhere.

The functions are the maths of the KL-regularised objective, DPO paper
(arXiv 2305.18290) equations (3)-(5):

.. math::

    \\pi^*_\\beta(y|x) = \\frac{\\pi_{\\text{ref}}(y|x)\\, e^{r(x,y)/\\beta}}{Z(x)},\\qquad
    Z(x) = \\sum_y \\pi_{\\text{ref}}(y|x)\\, e^{r(x,y)/\\beta}
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dpo_ref.evaluate import kl_per_row, optimal_logps

__all__ = [
    "ToyPrompt",
    "SUMMARY_PROMPT",
    "BETA_GRID",
    "optimal_policy",
    "log_partition",
    "kl_divergence",
    "expected_reward",
]


@dataclass(frozen=True)
class ToyPrompt:
    """One prompt, its finite set of answers, and what we know about each answer."""

    prompt: str
    answers: tuple[str, ...]
    reference_probs: tuple[float, ...]  # pi_ref(y|x), sums to 1
    true_rewards: tuple[float, ...]  # r*(x, y): what people actually prefer
    proxy_rewards: tuple[float, ...]  # r_phi(x, y): a learned reward model's score

    def __post_init__(self) -> None:
        n = len(self.answers)
        if not (len(self.reference_probs) == len(self.true_rewards) == len(self.proxy_rewards) == n):
            raise ValueError("every field of a ToyPrompt needs one value per answer")
        if abs(sum(self.reference_probs) - 1.0) > 1e-9 or min(self.reference_probs) <= 0:
            raise ValueError("reference_probs must be positive and sum to 1")

    def tensor(self, field: str) -> torch.Tensor:
        """A field as a float64 tensor of shape ``(n_answers,)``."""
        return torch.tensor(getattr(self, field), dtype=torch.float64)


SUMMARY_PROMPT = ToyPrompt(
    prompt="Summarise this news article in one sentence.",
    answers=(
        "accurate, concise",
        "accurate, long",
        "mostly accurate",
        "vague",
        "one factual error",
        "off-topic",
        "flatters reader",
        "copies article",
    ),
    reference_probs=(0.10, 0.15, 0.25, 0.25, 0.10, 0.10, 0.04, 0.01),
    true_rewards=(2.0, 1.2, 0.8, 0.0, -0.5, -1.5, -1.0, -2.0),
    # The reward model was fitted on a few thousand comparisons: it is close on the
    # answers it saw often and wrong on two rare ones, which is all reward hacking needs.
    proxy_rewards=(1.8, 1.6, 0.7, 0.1, 0.3, -1.2, 2.6, 3.5),
)

# beta values the sliders step through: a log grid from "ignore the reference" to
# "stay with the reference". The paper's values, 0.1 and 0.5, are on it.
BETA_GRID: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


def _check(reference_probs: torch.Tensor, rewards: torch.Tensor, beta: float) -> None:
    if not beta > 0:
        raise ValueError(f"beta must be positive, got {beta!r}")
    if reference_probs.shape != rewards.shape or reference_probs.ndim != 1:
        raise ValueError("reference_probs and rewards must be 1-D tensors of one shape")


def log_partition(reference_probs: torch.Tensor, rewards: torch.Tensor, beta: float) -> torch.Tensor:
    """:math:`\\log Z(x) = \\log \\sum_y \\pi_{\\text{ref}}(y|x) e^{r(x,y)/\\beta}`, a 0-d tensor."""
    _check(reference_probs, rewards, beta)
    return torch.logsumexp(reference_probs.log() + rewards / beta, dim=-1)


def optimal_policy(reference_probs: torch.Tensor, rewards: torch.Tensor, beta: float) -> torch.Tensor:
    """The maximiser of ``E[r] - beta * KL(pi || pi_ref)``, equation (4), as probabilities ``(n,)``."""
    _check(reference_probs, rewards, beta)
    return optimal_logps(reference_probs.log(), rewards, beta).exp()


def kl_divergence(policy_probs: torch.Tensor, reference_probs: torch.Tensor) -> torch.Tensor:
    """:math:`\\mathrm{KL}(\\pi \\| \\pi_{\\text{ref}})` in nats, from probabilities."""
    return kl_per_row(policy_probs.log(), reference_probs.log())


def expected_reward(policy_probs: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    """:math:`\\mathbb E_{y \\sim \\pi}[r(x, y)]`, an exact sum."""
    return (policy_probs * rewards).sum(dim=-1)
