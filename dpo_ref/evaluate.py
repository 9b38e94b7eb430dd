"""Evaluation of policies: exact sums in the exact world.

All functions take log-probabilities over an enumerated response space, ``(P, R)``
tensors (prompt by response, each row summing to one in probability), and average over
prompts uniformly. Nothing here samples.

* :func:`expected_value`: :math:`\\frac{1}{P}\\sum_x \\sum_y \\pi(y|x)\\, f(x, y)`;
* :func:`kl_divergence`: :math:`\\frac{1}{P}\\sum_x \\sum_y \\pi(y|x) \\log\\frac{\\pi(y|x)}{q(y|x)}`
  (:func:`kl_per_row` keeps one value per prompt, as a tensor);
* :func:`optimal_logps`: the closed-form optimum of the KL-regularised objective, eq. (4);
* :func:`exact_metrics`: a policy's true reward, KL to the reference, KL to the optimum
  ``pi*_beta`` and optionally its expected learned-reward score, in one call.
"""

from __future__ import annotations

import torch

__all__ = ["optimal_logps", "expected_value", "kl_per_row", "kl_divergence", "entropy", "exact_metrics"]


def expected_value(logps: torch.Tensor, values: torch.Tensor) -> float:
    """Exact :math:`\\mathbb E_{x}\\mathbb E_{y\\sim\\pi(\\cdot|x)}[f(x,y)]`; ``logps`` and ``values`` are ``(P, R)``."""
    return float((logps.double().exp() * values.double()).sum(1).mean())


def optimal_logps(reference_logps: torch.Tensor, rewards: torch.Tensor, beta: float) -> torch.Tensor:
    """``log pi*_beta(y|x)`` over the last dimension, DPO paper eq. (4): ``pi_ref exp(r/beta) / Z(x)``.

    The maximiser of ``E[r] - beta * KL(pi || pi_ref)``; larger ``beta`` keeps it closer
    to the reference, and as ``beta -> 0`` it puts all its mass on the best responses.
    """
    return (reference_logps + rewards / beta).log_softmax(-1)


def kl_per_row(logps: torch.Tensor, other_logps: torch.Tensor) -> torch.Tensor:
    """:math:`\\mathrm{KL}(\\pi\\,\\|\\,q)` of each row (the last dimension sums over responses), in nats.

    Terms with :math:`\\pi(y|x) = 0` contribute 0 (the limit of :math:`p\\log p`).
    """
    p = logps.exp()
    return torch.where(p > 0, p * (logps - other_logps), torch.zeros_like(p)).sum(-1)


def kl_divergence(logps: torch.Tensor, other_logps: torch.Tensor) -> float:
    """Exact :math:`\\mathbb E_x\\,\\mathrm{KL}(\\pi(\\cdot|x)\\,\\|\\,q(\\cdot|x))` in nats, ``(P, R)`` inputs."""
    return float(kl_per_row(logps.double(), other_logps.double()).mean())


def entropy(logps: torch.Tensor) -> float:
    """Exact mean entropy :math:`-\\mathbb E_x \\sum_y \\pi\\log\\pi` in nats."""
    p = logps.double().exp()
    return float(-torch.where(p > 0, p * logps.double(), torch.zeros_like(p)).sum(1).mean())


def exact_metrics(
    world,
    policy: torch.nn.Module | torch.Tensor,
    *,
    beta: float | None = None,
    scores: torch.Tensor | None = None,
) -> dict[str, float]:
    """Exact metrics of a policy in an :class:`~dpo_ref.worlds.exact.ExactWorld`.

    ``policy`` is a model, or its ``(P, R)`` log-probabilities already computed
    (:meth:`~dpo_ref.worlds.exact.ExactWorld.policy_logps`). Returns ``reward`` (expected
    true reward r*), ``kl`` (KL to the reference), ``entropy``; with ``beta`` also
    ``kl_to_optimum`` = KL(pi || pi*_beta); with ``scores`` (a ``(P, R)`` learned reward)
    also ``score``, its expected value.
    """
    logps = policy if isinstance(policy, torch.Tensor) else world.policy_logps(policy)
    out = {
        "reward": expected_value(logps, world.true_rewards),
        "kl": kl_divergence(logps, world.reference_logps),
        "entropy": entropy(logps),
    }
    if beta is not None:
        out["kl_to_optimum"] = kl_divergence(logps, world.optimal_logps(beta))
    if scores is not None:
        out["score"] = expected_value(logps, scores)
    return out
