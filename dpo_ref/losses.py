"""Preference losses, one small pure function each.

Conventions (see the site's conventions page):

* every function takes 1-D tensors of per-example values, shape ``(B,)``, and returns
  per-example losses of shape ``(B,)``; the caller takes the mean;
* ``*_logps`` are sequence log-probs from :func:`dpo_ref.logps.sequence_logps`: sums over
  completion tokens unless the argument name says ``mean``;
* ``y_w`` / ``y_l`` are the chosen / rejected completions; rewards include ``beta``:
  :math:`\\hat r(x, y) = \\beta \\log \\frac{\\pi_\\theta(y|x)}{\\pi_{\\text{ref}}(y|x)}`;
* hyperparameters are keyword-only, and no flag turns one loss into another.

Larger ``beta`` keeps the policy *closer* to the reference: it is the weight of the KL
penalty in the RLHF objective that DPO optimises.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dpo_ref.validation import check_finite, check_rows_scored, debug_checks_on

__all__ = [
    "bradley_terry_loss",
    "dpo_loss",
    "robust_dpo_loss",
    "dpop_loss",
    "hinge_loss",
    "ipo_loss",
    "kto_loss",
    "kto_kl_estimate",
    "orpo_loss",
    "simpo_loss",
    "unlikelihood_loss",
    "implicit_rewards",
    "preference_metrics",
    "reward_metrics",
]


# --------------------------------------------------------------------------- checks


def _check_tensors(**tensors: torch.Tensor) -> None:
    """Every argument is a 1-D tensor of one shared shape; in debug mode, also finite.

    The shapes cost nothing to check. The values are checked only in debug mode
    (:func:`dpo_ref.validation.debug_checks_on`): reading them is a host synchronisation
    on every call, and in training a non-finite input shows up as a non-finite loss or
    gradient, which the trainer checks once per step.
    """
    shape = None
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 1:
            raise ValueError(f"{name} must be 1-D with shape (B,), got shape {tuple(t.shape)}")
        if shape is None:
            shape, first = t.shape, name
        elif t.shape != shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)} but {first} has {tuple(shape)}")
        check_finite(name, t)


def _check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def _check_non_negative(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")


def _check_label_smoothing(value: float) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= value < 0.5:
        raise ValueError(f"label_smoothing must lie in [0, 0.5), got {value!r}")


def _pair_log_ratio(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
) -> torch.Tensor:
    """h = log pi(y_w)/pi_ref(y_w) - log pi(y_l)/pi_ref(y_l), checked, shape (B,), float32 or wider."""
    _check_tensors(
        policy_chosen_logps=policy_chosen_logps,
        policy_rejected_logps=policy_rejected_logps,
        reference_chosen_logps=reference_chosen_logps,
        reference_rejected_logps=reference_rejected_logps,
    )
    # Upcast half precision: float16 tops out at 65504, which IPO's square (h - 1/(2 beta))^2
    # passes once |h| > ~250. Losses built on h are therefore float32 for half inputs.
    policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps = (
        t.float() if t.dtype in (torch.float16, torch.bfloat16) else t
        for t in (policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    )
    return (policy_chosen_logps - reference_chosen_logps) - (policy_rejected_logps - reference_rejected_logps)


# --------------------------------------------------------------------------- reward model


def bradley_terry_loss(
    chosen_rewards: torch.Tensor,
    rejected_rewards: torch.Tensor,
    *,
    margin: float = 0.0,
) -> torch.Tensor:
    """Reward-model loss under the Bradley-Terry preference model.

    .. math::

        \\mathcal L_R = -\\log \\sigma\\big(r(x, y_w) - r(x, y_l) - m\\big)

    DPO paper (arXiv 2305.18290), equations (1) and (2). Only the difference of the two
    rewards enters: adding a constant to both changes nothing.

    Args:
        chosen_rewards: ``(B,)`` scalar rewards of the chosen completions.
        rejected_rewards: ``(B,)`` scalar rewards of the rejected completions.
        margin: ``m``, a required gap (Llama 2's margin loss); 0 is plain Bradley-Terry.
    """
    _check_tensors(chosen_rewards=chosen_rewards, rejected_rewards=rejected_rewards)
    return -F.logsigmoid(chosen_rewards - rejected_rewards - margin)


# --------------------------------------------------------------------------- DPO family


# --8<-- [start:dpo_loss]
def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The DPO loss (sigmoid), optionally conservative.

    .. math::

        \\mathcal L_{\\text{DPO}} = -(1-\\varepsilon)\\log\\sigma(\\beta h) - \\varepsilon \\log\\sigma(-\\beta h),
        \\qquad h = \\log\\frac{\\pi_\\theta(y_w|x)}{\\pi_{\\text{ref}}(y_w|x)} - \\log\\frac{\\pi_\\theta(y_l|x)}{\\pi_{\\text{ref}}(y_l|x)}

    DPO paper (arXiv 2305.18290), equation (7), for ``label_smoothing`` :math:`\\varepsilon = 0`.
    With :math:`\\varepsilon > 0` it is conservative DPO (cDPO): labels are assumed flipped
    with probability :math:`\\varepsilon`, as in the original DPO code's ``label_smoothing``.
    (TRL 1.x's ``"sigmoid"`` ignores label smoothing.) At initialisation, policy ==
    reference, the loss is :math:`\\ln 2`.

    Args:
        policy_chosen_logps, policy_rejected_logps: ``(B,)`` summed log-probs under the policy.
        reference_chosen_logps, reference_rejected_logps: ``(B,)`` the same under the frozen reference.
        beta: strength of the KL penalty; larger keeps the policy closer to the
            reference. 0.1 is the paper's default (0.5 for TL;DR summarization).
        label_smoothing: :math:`\\varepsilon \\in [0, 0.5)`, assumed label-noise rate.
    """
    _check_positive("beta", beta)
    _check_label_smoothing(label_smoothing)
    h = _pair_log_ratio(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    return -(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)


# --8<-- [end:dpo_loss]


def robust_dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
    label_smoothing: float,
) -> torch.Tensor:
    """Robust DPO: an unbiased estimate of the clean DPO loss under label noise.

    .. math::

        \\mathcal L = \\frac{-(1-\\varepsilon)\\log\\sigma(\\beta h) + \\varepsilon\\log\\sigma(-\\beta h)}{1 - 2\\varepsilon}

    Chowdhury et al., "Provably Robust DPO" (arXiv 2403.00409); TRL's ``"robust"``.
    Unlike conservative DPO, the flipped term is *subtracted*, so in expectation over
    label flips at rate :math:`\\varepsilon` it equals the noiseless loss.

    Args:
        beta: KL strength, as in :func:`dpo_loss`.
        label_smoothing: :math:`\\varepsilon \\in [0, 0.5)`, the label-flip rate.
    """
    _check_positive("beta", beta)
    _check_label_smoothing(label_smoothing)
    h = _pair_log_ratio(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    eps = label_smoothing
    return (-(1 - eps) * F.logsigmoid(beta * h) + eps * F.logsigmoid(-beta * h)) / (1 - 2 * eps)


def dpop_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
    lam: float,
) -> torch.Tensor:
    """DPO-Positive (DPOP): DPO, penalised whenever the chosen completion falls below the reference.

    .. math::

        \\mathcal L_{\\text{DPOP}} = -\\log\\sigma\\Big(\\beta\\big(h - \\lambda
        \\max\\big(0, \\log\\tfrac{\\pi_{\\text{ref}}(y_w|x)}{\\pi_\\theta(y_w|x)}\\big)\\big)\\Big)

    with :math:`h` DPO's log-ratio margin (:func:`dpo_loss`). Pal et al. 2024 (arXiv
    2402.13228), equation (3). DPO's loss sees only the margin :math:`h`, so it keeps
    falling while both completions lose probability, as long as the rejected one loses
    more: the likelihood displacement that the DPO loss page measures. The penalty is 0
    while the policy gives :math:`y_w` at least the reference's probability; below that,
    each nat that :math:`\\log\\pi_\\theta(y_w|x)` loses lowers the sigmoid's argument by
    :math:`\\beta(1 + \\lambda)` instead of DPO's :math:`\\beta`. ``lam = 0`` is DPO.

    Args:
        policy_chosen_logps, policy_rejected_logps: ``(B,)`` summed log-probs under the policy.
        reference_chosen_logps, reference_rejected_logps: ``(B,)`` the same under the frozen reference.
        beta: strength of the KL penalty, as in DPO.
        lam: :math:`\\lambda \\ge 0`, the weight of the penalty (50 in the paper's experiments).
    """
    _check_positive("beta", beta)
    _check_non_negative("lam", lam)
    h = _pair_log_ratio(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    chosen_fall = reference_chosen_logps.to(h.dtype) - policy_chosen_logps.to(h.dtype)  # log pi_ref(y_w) / pi(y_w)
    return -F.logsigmoid(beta * (h - lam * chosen_fall.clamp(min=0)))


def hinge_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
) -> torch.Tensor:
    """Hinge loss on the implicit-reward margin (SLiC-style).

    .. math::

        \\mathcal L = \\max(0,\\ 1 - \\beta h)

    Zhao et al., SLiC-HF (arXiv 2305.10425), with the reference log-ratio as in TRL's
    ``hinge`` loss type. Pairs whose margin already exceeds ``1/beta`` give no gradient at all.

    Args:
        beta: scale of the margin; the hinge closes at :math:`h = 1/\\beta`.
    """
    _check_positive("beta", beta)
    h = _pair_log_ratio(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    return torch.relu(1 - beta * h)


def ipo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
) -> torch.Tensor:
    """Identity Preference Optimisation: a squared loss with a finite target margin.

    .. math::

        \\mathcal L_{\\text{IPO}} = \\Big(h - \\frac{1}{2\\beta}\\Big)^2

    Azar et al. (arXiv 2310.12036), equation (17), where ``beta`` is the paper's
    :math:`\\tau`. With deterministic preferences DPO pushes :math:`h \\to \\infty`;
    IPO stops at :math:`h = 1/(2\\beta)`. At initialisation the loss is :math:`1/(4\\beta^2)`.

    Sum or mean? The caller decides. TRL averages the log-ratios per completion token
    (pass ``sequence_logps(..., reduction="mean")`` values); the original DPO code sums.
    The target margin means something different in each case, so tune ``beta`` for the
    convention you use.

    Args:
        beta: regularisation :math:`\\tau`; larger means a smaller target margin.
    """
    _check_positive("beta", beta)
    h = _pair_log_ratio(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    return (h - 1 / (2 * beta)) ** 2


# --------------------------------------------------------------------------- KTO


def kto_kl_estimate(
    policy_mismatched_logps: torch.Tensor,
    reference_mismatched_logps: torch.Tensor,
    *,
    clamp: bool = True,
) -> torch.Tensor:
    """KTO's reference point :math:`z_0`: a batch estimate of :math:`\\mathrm{KL}(\\pi_\\theta \\| \\pi_{\\text{ref}})`.

    .. math::

        z_0 = \\max\\Big(0,\\ \\frac{1}{B}\\sum_i \\log\\frac{\\pi_\\theta(y'_i|x_i)}{\\pi_{\\text{ref}}(y'_i|x_i)}\\Big)

    where :math:`y'_i` is a completion from *another* example of the batch (a mismatched
    pair), as in Ethayarajh et al. (arXiv 2402.01306) and TRL. Detached: no gradient
    flows through the reference point. Returns a 0-d tensor. ``clamp=False`` gives the
    batch mean before :math:`\\max(0, \\cdot)`: how far below 0 the estimate sits when
    :math:`z_0` is 0.
    """
    _check_tensors(
        policy_mismatched_logps=policy_mismatched_logps,
        reference_mismatched_logps=reference_mismatched_logps,
    )
    estimate = (policy_mismatched_logps - reference_mismatched_logps).mean().detach()
    return estimate.clamp(min=0) if clamp else estimate


def kto_loss(
    policy_logps: torch.Tensor,
    reference_logps: torch.Tensor,
    desirable: torch.Tensor,
    kl: torch.Tensor,
    *,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> torch.Tensor:
    """Kahneman-Tversky Optimisation on unpaired desirable / undesirable examples.

    .. math::

        \\mathcal L = \\begin{cases}
        \\lambda_D\\,\\big(1 - \\sigma(\\beta(\\rho - z_0))\\big) & y \\text{ desirable}\\\\
        \\lambda_U\\,\\big(1 - \\sigma(\\beta(z_0 - \\rho))\\big) & y \\text{ undesirable}
        \\end{cases},\\qquad \\rho = \\log\\frac{\\pi_\\theta(y|x)}{\\pi_{\\text{ref}}(y|x)}

    Ethayarajh et al. (arXiv 2402.01306), equation (8); TRL's KTO loss.

    Args:
        policy_logps, reference_logps: ``(B,)`` summed log-probs of each completion.
        desirable: ``(B,)`` bool, True where the completion is desirable.
        kl: the reference point :math:`z_0` (see :func:`kto_kl_estimate`), a 0-d tensor or float.
        beta: KL strength; the paper finds 0.1 close to best.
        desirable_weight, undesirable_weight: :math:`\\lambda_D, \\lambda_U`; the paper
            recommends :math:`\\lambda_D n_D / (\\lambda_U n_U) \\in [1, 4/3]`.
    """
    _check_positive("beta", beta)
    _check_non_negative("desirable_weight", desirable_weight)
    _check_non_negative("undesirable_weight", undesirable_weight)
    _check_tensors(policy_logps=policy_logps, reference_logps=reference_logps)
    if (
        not isinstance(desirable, torch.Tensor)
        or desirable.dtype != torch.bool
        or desirable.shape != policy_logps.shape
    ):
        raise ValueError(f"desirable must be a bool tensor of shape {tuple(policy_logps.shape)}")
    kl = torch.as_tensor(kl, dtype=policy_logps.dtype, device=policy_logps.device).detach()
    if kl.numel() != 1:
        raise ValueError(f"kl must be a single number, got {kl}")
    check_finite("kl", kl)

    log_ratio = policy_logps - reference_logps
    desirable_losses = desirable_weight * (1 - torch.sigmoid(beta * (log_ratio - kl)))
    undesirable_losses = undesirable_weight * (1 - torch.sigmoid(beta * (kl - log_ratio)))
    return torch.where(desirable, desirable_losses, undesirable_losses)


# --------------------------------------------------------------------------- reference-free


def _log1m_exp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, accurate near 0 and for very negative x (Maechler 2012)."""
    # Probabilities of exactly 1 have infinite odds; stay a hair below.
    x = x.clamp(max=-1e-7)
    return torch.where(x > -math.log(2), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def orpo_loss(
    policy_chosen_mean_logps: torch.Tensor,
    policy_rejected_mean_logps: torch.Tensor,
    chosen_nll: torch.Tensor,
    *,
    lam: float,
) -> torch.Tensor:
    """Odds-Ratio Preference Optimisation: SFT plus an odds-ratio penalty, no reference model.

    .. math::

        \\mathcal L_{\\text{ORPO}} = \\mathcal L_{\\text{SFT}} - \\lambda \\log\\sigma\\Big(
        \\log\\frac{\\text{odds}(y_w|x)}{\\text{odds}(y_l|x)}\\Big),\\qquad
        \\text{odds}(y|x) = \\frac{P(y|x)}{1 - P(y|x)}

    Hong et al. (arXiv 2403.07691), equations (6)-(7), where :math:`P` is the
    length-normalised probability :math:`\\exp(\\frac{1}{|y|}\\log\\pi(y|x))`. The log-odds
    use :math:`\\log(1 - e^{x})` computed stably, so very likely or very unlikely completions
    do not overflow in half precision.

    Args:
        policy_chosen_mean_logps, policy_rejected_mean_logps: ``(B,)`` per-token mean log-probs (< 0).
        chosen_nll: ``(B,)`` the SFT negative log-likelihood of the chosen completions.
        lam: :math:`\\lambda`, weight of the odds-ratio term; the paper uses about 0.1
            (TRL calls it ``beta``).
    """
    _check_non_negative("lam", lam)
    _check_tensors(
        policy_chosen_mean_logps=policy_chosen_mean_logps,
        policy_rejected_mean_logps=policy_rejected_mean_logps,
        chosen_nll=chosen_nll,
    )
    chosen = policy_chosen_mean_logps.float()
    rejected = policy_rejected_mean_logps.float()
    log_odds = (chosen - rejected) - (_log1m_exp(chosen) - _log1m_exp(rejected))
    loss = chosen_nll.float() - lam * F.logsigmoid(log_odds)
    return loss.to(policy_chosen_mean_logps.dtype)


def simpo_loss(
    policy_chosen_mean_logps: torch.Tensor,
    policy_rejected_mean_logps: torch.Tensor,
    *,
    beta: float,
    gamma: float,
) -> torch.Tensor:
    """Simple Preference Optimisation: length-normalised reward, target margin, no reference.

    .. math::

        \\mathcal L_{\\text{SimPO}} = -\\log\\sigma\\Big(\\frac{\\beta}{|y_w|}\\log\\pi_\\theta(y_w|x)
        - \\frac{\\beta}{|y_l|}\\log\\pi_\\theta(y_l|x) - \\gamma\\Big)

    Meng, Xia, Chen (arXiv 2405.14734), equation (6). TRL runs it as ``CPOTrainer`` with
    its ``simpo`` loss type and ``cpo_alpha=0``.

    Args:
        policy_chosen_mean_logps, policy_rejected_mean_logps: ``(B,)`` per-token mean log-probs.
        beta: reward scale; the paper uses 2.0 to 2.5.
        gamma: target reward margin; the paper sets :math:`\\gamma/\\beta` around 0.5.
    """
    _check_positive("beta", beta)
    _check_non_negative("gamma", gamma)
    _check_tensors(
        policy_chosen_mean_logps=policy_chosen_mean_logps,
        policy_rejected_mean_logps=policy_rejected_mean_logps,
    )
    return -F.logsigmoid(beta * (policy_chosen_mean_logps - policy_rejected_mean_logps) - gamma)


# --------------------------------------------------------------------------- unlikelihood


def unlikelihood_loss(
    policy_chosen_mean_logps: torch.Tensor,
    policy_rejected_token_logps: torch.Tensor,
    rejected_mask: torch.Tensor,
    *,
    alpha: float,
) -> torch.Tensor:
    """Likelihood on the chosen completion plus token-level unlikelihood on the rejected one.

    .. math::

        \\mathcal L = -\\frac{1}{|y_w|}\\log\\pi_\\theta(y_w|x)
        - \\alpha\\,\\frac{1}{|y_l|}\\sum_{t=1}^{|y_l|} \\log\\big(1 - \\pi_\\theta(y_{l,t}|x, y_{l,<t})\\big)

    Welleck et al., "Neural Text Generation with Unlikelihood Training" (arXiv 1908.04319):
    their unlikelihood loss :math:`-\\sum_{c \\in \\mathcal C^t}\\log(1 - p_\\theta(c|x_{<t}))`
    with the rejected completion's own token at each step as the one negative candidate,
    added to the likelihood of the chosen completion with the paper's weight
    :math:`\\alpha`. Both terms are per-token means, so long and short completions weigh
    the same. This is the "Unlikelihood" baseline of the DPO paper (arXiv 2305.18290,
    section 6). No reference model: nothing stops the policy from drifting away.

    A token probability that rounds to 1 is clamped to :math:`1 - 10^{-6}`, so
    :math:`\\log(1 - p)` stays finite (at most about 13.8 nats per token); at the clamp the
    token gives no gradient.

    Args:
        policy_chosen_mean_logps: ``(B,)`` per-token mean log-probs of the chosen completions.
        policy_rejected_token_logps: ``(B, T)`` log-probs of each rejected completion token
            (:func:`dpo_ref.logps.token_logps`); positions where ``rejected_mask`` is False
            are ignored.
        rejected_mask: ``(B, T)`` True (or 1) on the rejected completion's tokens; every
            row needs at least one.
        alpha: :math:`\\alpha \\ge 0`, weight of the unlikelihood term (1 in
            :class:`dpo_ref.train.UnlikelihoodObjective`); 0 leaves SFT on the chosen
            completions (Preferred-FT).

    Returns:
        ``(B,)`` per-example losses.
    """
    _check_non_negative("alpha", alpha)
    _check_tensors(policy_chosen_mean_logps=policy_chosen_mean_logps)
    for name, t in (("policy_rejected_token_logps", policy_rejected_token_logps), ("rejected_mask", rejected_mask)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 2 or t.shape[0] != policy_chosen_mean_logps.shape[0]:
            raise ValueError(
                f"{name} must be 2-D with shape (B, T), B = {policy_chosen_mean_logps.shape[0]}, "
                f"got shape {tuple(t.shape)}"
            )
    if rejected_mask.shape != policy_rejected_token_logps.shape:
        raise ValueError(
            f"rejected_mask has shape {tuple(rejected_mask.shape)} but policy_rejected_token_logps "
            f"has {tuple(policy_rejected_token_logps.shape)}"
        )
    if not policy_rejected_token_logps.is_floating_point():
        raise ValueError(f"policy_rejected_token_logps must be floating point, got {policy_rejected_token_logps.dtype}")
    mask = rejected_mask.bool()
    n_tokens = mask.sum(dim=1)  # (B,)
    if debug_checks_on():
        # only scored positions count: a masked position may hold anything, NaN included
        check_finite("policy_rejected_token_logps", policy_rejected_token_logps.masked_fill(~mask, 0.0))
        check_rows_scored(n_tokens, "rejected_mask")

    # log(1 - p) for each rejected token, kept finite when p rounds to 1
    log_not = torch.log1p(-policy_rejected_token_logps.exp().clamp(max=1 - 1e-6))  # (B, T)
    unlikely = log_not.masked_fill(~mask, 0.0).sum(dim=1) / n_tokens  # (B,) mean over |y_l|
    return -policy_chosen_mean_logps - alpha * unlikely


# --------------------------------------------------------------------------- metrics


# --8<-- [start:implicit_rewards]
def implicit_rewards(
    policy_logps: torch.Tensor,
    reference_logps: torch.Tensor,
    *,
    beta: float,
) -> torch.Tensor:
    """DPO's implicit reward, detached: :math:`\\hat r(x,y) = \\beta \\log \\frac{\\pi_\\theta(y|x)}{\\pi_{\\text{ref}}(y|x)}`.

    DPO paper (arXiv 2305.18290), section 5. It equals the true reward up to a
    prompt-dependent constant :math:`\\beta \\log Z(x)` (equation 5), so only differences
    between completions of one prompt mean anything.
    """
    _check_positive("beta", beta)
    _check_tensors(policy_logps=policy_logps, reference_logps=reference_logps)
    return (beta * (policy_logps - reference_logps)).detach()


# --8<-- [end:implicit_rewards]


def preference_metrics(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
) -> dict[str, float]:
    """Batch means of the metrics TRL logs for DPO, under TRL's names.

    * ``rewards/chosen``, ``rewards/rejected``: mean implicit reward of each side;
    * ``rewards/margins``: mean of (chosen - rejected) rewards (beta applied once);
    * ``rewards/accuracies``: share of pairs whose chosen reward is strictly higher;
    * ``logps/chosen``, ``logps/rejected``: mean policy log-probs.
    """
    chosen = implicit_rewards(policy_chosen_logps, reference_chosen_logps, beta=beta)
    rejected = implicit_rewards(policy_rejected_logps, reference_rejected_logps, beta=beta)
    return {
        **reward_metrics(chosen, rejected),
        "logps/chosen": policy_chosen_logps.detach().mean().item(),
        "logps/rejected": policy_rejected_logps.detach().mean().item(),
    }


def reward_metrics(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> dict[str, float]:
    """``rewards/chosen``, ``rewards/rejected``, ``rewards/margins``, ``rewards/accuracies`` of
    ``(B,)`` rewards: implicit ones (:func:`preference_metrics`) or a reward model's scores."""
    chosen, rejected = chosen_rewards.detach(), rejected_rewards.detach()
    return {
        "rewards/chosen": chosen.mean().item(),
        "rewards/rejected": rejected.mean().item(),
        "rewards/margins": (chosen - rejected).mean().item(),
        "rewards/accuracies": (chosen > rejected).float().mean().item(),
    }
