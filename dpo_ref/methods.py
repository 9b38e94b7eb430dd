"""The training methods, each named once: what it trains on, what it needs, its paper's defaults.

Every place that turns a method's name into training reads this registry: ``dpo-ref
train --method``, both experimental worlds, the examples, the figures and the docs'
tables. A method's name is spelled one way everywhere, results files included::

    from dpo_ref.methods import METHODS, TrainingData

    method = METHODS["ipo"]
    data = TrainingData(pairs, reference=reference)      # paired tensors (dpo_ref.data.collate_pairs)
    objective = method.objective(reference=reference, beta=0.5)
    result = train_preference(policy, objective, data.rows_for(method), TrainConfig(...))

Adding a variant is one entry in :data:`METHODS` plus its loss in :mod:`dpo_ref.losses`
(and its tests): the CLI, the worlds and the figures pick it up from here.

What each method trains on (:attr:`Method.data`):

``"pairs"``
    chosen/rejected tensors; with ``needs_reference``, plus the reference's log-probs,
    computed once with the method's :attr:`~Method.reduction` (sum for DPO, per-token mean
    for IPO as TRL computes it);
``"unpaired"``
    KTO's rows: every chosen completion desirable, every rejected one undesirable
    (:func:`dpo_ref.data.unpaired_rows`), with the reference's log-probs of each row and
    of its mismatched partner, computed once;
``"sft"``
    the chosen completions as supervised rows (:func:`dpo_ref.data.chosen_as_sft`);
``"rollouts"``
    prompts and a reward function: PPO samples its own data (:func:`dpo_ref.train.train_ppo`).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dpo_ref.errors import UnknownNameError, UserError

if TYPE_CHECKING:  # the registry is read by `dpo-ref train --help`, which should not wait for torch
    import torch

__all__ = [
    "Hyperparameter",
    "Method",
    "METHODS",
    "get_method",
    "TrainingData",
    "OFFLINE_METHODS",
    "LR_SCALE",
    "DPO",
    "CDPO",
    "ROBUST_DPO",
    "DPOP",
    "IPO",
    "HINGE",
    "KTO",
    "ORPO",
    "SIMPO",
    "PREFERRED_FT",
    "UNLIKELIHOOD",
    "PPO",
    "PPO_GT",
]

# the name a grid gives the learning rate's multiple when it sweeps that instead of a hyperparameter
LR_SCALE = "lr_scale"

# what a hyperparameter's value must be: a test and the words for an error message
_CHECKS: dict[str, tuple[Callable[[float], bool], str]] = {
    "positive": (lambda v: v > 0, "a positive number"),
    "non-negative": (lambda v: v >= 0, "a non-negative number"),
    "flip-rate": (lambda v: 0 <= v < 0.5, "a number in [0, 0.5)"),
}


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter of a method, named as its loss function's keyword."""

    name: str  # the keyword of the loss or objective: "beta", "label_smoothing", ...
    default: float
    source: str  # where the default comes from
    meaning: str  # one line, for --help and the docs' tables
    check: str = "positive"  # a key of _CHECKS
    symbol: str = field(kw_only=True)  # how pages and figures write it: "β", "λ" (IPO's beta is its "τ")


@dataclass(frozen=True)
class Method:
    """A training method: how to build its objective, and what it needs."""

    name: str  # canonical name: the CLI's --method, results files, figure colours
    label: str  # how pages and figures write it
    summary: str  # one line
    citation: str  # the paper (arXiv id) it comes from
    data: str  # "pairs", "unpaired", "sft" or "rollouts" (see the module docstring)
    needs_reference: bool  # a frozen reference model (or its precomputed log-probs)
    hyperparameters: tuple[Hyperparameter, ...] = ()
    reduction: str = "sum"  # the log-prob reduction its reference pass uses: "sum" or "mean"
    build: Callable[..., object] | None = None  # build(reference, **params) -> objective; None for PPO
    # what an experiment's grid sweeps: one of its hyperparameters, or LR_SCALE (the shared learning rate's
    # multiple, for a method with no hyperparameter of its own)
    swept: str = "beta"
    # hyperparameters set from the swept one, so that a grid moves them together (SimPO's gamma)
    derived: Callable[[float], dict[str, float]] | None = None
    # how figures draw it, the same on every page and in both of the site's palettes: a colour that keeps a
    # contrast of 2:1 against Material's white and slate backgrounds (colour-blind-safe palettes: Okabe & Ito,
    # Paul Tol's "muted" and "vibrant"), and a Plotly marker symbol no other method uses
    colour: str = field(kw_only=True)
    marker: str = field(kw_only=True)

    @property
    def rows_per_pair(self) -> int:
        """Training rows one preference pair gives. KTO's unpaired rows are two per pair: its batches hold
        twice the rows, so that every method sees the same number of pairs per update."""
        return 2 if self.data == "unpaired" else 1

    def grid_point(self, value: float) -> tuple[dict[str, float], float]:
        """One value of an experiment's grid as ``(hyperparameters, learning-rate scale)``: the swept
        hyperparameter and those derived from it, or no hyperparameter and ``value`` as the scale."""
        if self.swept == LR_SCALE:
            return {}, float(value)
        return {self.swept: float(value), **(self.derived(value) if self.derived else {})}, 1.0

    def setting(self, value: float) -> dict[str, float]:
        """One value of a grid as a run's record names its setting: every hyperparameter (the paper defaults
        filled in) and, where the grid sweeps the learning rate's multiple, that multiple."""
        params, lr_scale = self.grid_point(value)
        return {**self.params(**params), **({LR_SCALE: lr_scale} if self.swept == LR_SCALE else {})}

    def params(self, **overrides: float | None) -> dict[str, float]:
        """The paper defaults, with ``overrides`` (None keeps the default), each checked.

        An unknown name or a value out of range is a :class:`~dpo_ref.errors.UserError`
        naming the method and the hyperparameter.
        """
        known = {h.name: h for h in self.hyperparameters}
        unknown = sorted(k for k, v in overrides.items() if k not in known and v is not None)
        if unknown:
            takes = ", ".join(known) or "none"
            raise UserError(f"{self.name} has no hyperparameter {unknown[0]!r} (it takes: {takes})")
        values = {}
        for name, h in known.items():
            value = overrides.get(name)
            value = h.default if value is None else value
            test, wanted = _CHECKS[h.check]
            real = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
            if not (real and test(value)):
                raise UserError(f"{self.name}: {name} must be {wanted}, got {value!r}")
            values[name] = float(value)
        return values

    def objective(self, reference: torch.nn.Module | None = None, **params: float | None):
        """The objective that :class:`dpo_ref.train.Trainer` minimises, with checked hyperparameters.

        ``reference`` is needed only when the training rows lack precomputed reference
        log-probs (:meth:`TrainingData.rows_for` adds them when it has the reference).
        """
        if self.build is None:
            raise UserError(f"{self.name} samples its own data: train it with dpo_ref.train.train_ppo")
        return self.build(reference, **self.params(**params))


def get_method(name: str) -> Method:
    """The registered method ``name``; an :class:`~dpo_ref.errors.UnknownNameError` listing them otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownNameError(f"unknown method {name!r}; the methods are {', '.join(METHODS)}") from None


class TrainingData:
    """Paired tensors, shaped for each method on demand (and cached: reference passes run once).

    Args:
        pairs: right-padded ``chosen_``/``rejected_`` ``input_ids``, ``attention_mask`` and
            ``labels`` (:func:`dpo_ref.data.collate_pairs`).
        reference: the frozen reference model, for the methods that need its log-probs.
        pad_token_id: the id that pads rows (KTO's rows are re-padded).
        device: where the reference pass runs.
        batch_size: rows per reference forward pass.
    """

    def __init__(
        self,
        pairs: dict[str, torch.Tensor],
        *,
        reference: torch.nn.Module | None = None,
        pad_token_id: int = 0,
        device: str | torch.device = "auto",
        batch_size: int = 64,
    ):
        self.pairs, self.reference, self.pad_token_id = pairs, reference, pad_token_id
        self.device, self.batch_size = device, batch_size
        self._cache: dict[tuple[str, str], dict[str, torch.Tensor]] = {}

    def rows_for(self, method: Method | str) -> dict[str, torch.Tensor]:
        """The rows ``method`` trains on (see the module docstring)."""
        from dpo_ref.data import chosen_as_sft, unpaired_rows

        method = get_method(method) if isinstance(method, str) else method
        if method.data == "rollouts":
            raise UserError(f"{method.name} samples its own data: it trains on prompts, not on pairs")
        if method.data == "sft":
            return chosen_as_sft(self.pairs)
        if method.data == "unpaired":
            key = ("unpaired", "")
            if key not in self._cache:
                rows = unpaired_rows(self.pairs, self.pad_token_id)
                if self.reference is not None:  # KTO's reference pass over its rows and their partners, once
                    from dpo_ref.train.objectives import precompute_kto_reference_logps

                    rows = precompute_kto_reference_logps(
                        self.reference, rows, batch_size=self.batch_size, device=self.device
                    )
                self._cache[key] = rows
            return self._cache[key]
        if not method.needs_reference:
            return self.pairs
        key = ("pairs", method.reduction)
        if key not in self._cache:
            if self.reference is None:
                raise UserError(f"{method.name} needs the reference model's log-probs: pass reference=")
            from dpo_ref.train.objectives import precompute_reference_logps

            self._cache[key] = precompute_reference_logps(
                self.reference, self.pairs, batch_size=self.batch_size, reduction=method.reduction, device=self.device
            )
        return self._cache[key]


# --------------------------------------------------------------------------- objective builders
# The losses and objectives are imported inside each builder: a registry lookup
# (`dpo-ref train --help`) should not wait for torch.


def _pairwise(loss_name: str, *, reduction: str = "sum"):
    """A builder of :class:`~dpo_ref.train.objectives.PairwiseObjective` around ``dpo_ref.losses.<loss_name>``."""

    def build(reference, *, beta: float, **params: float):
        from dpo_ref import losses
        from dpo_ref.train.objectives import PairwiseObjective

        loss = functools.partial(getattr(losses, loss_name), beta=beta, **params)
        return PairwiseObjective(loss, beta=beta, reference=reference, reduction=reduction)

    return build


def _orpo_with_chosen_nll(chosen_mean_logps, rejected_mean_logps, *, lam: float):
    # ORPO's SFT term is the chosen completions' per-token negative log-likelihood
    from dpo_ref.losses import orpo_loss

    return orpo_loss(chosen_mean_logps, rejected_mean_logps, -chosen_mean_logps, lam=lam)


def _orpo(reference, *, lam: float):
    from dpo_ref.train.objectives import ReferenceFreeObjective

    return ReferenceFreeObjective(functools.partial(_orpo_with_chosen_nll, lam=lam), beta=lam)


def _simpo(reference, *, beta: float, gamma: float):
    from dpo_ref.losses import simpo_loss
    from dpo_ref.train.objectives import ReferenceFreeObjective

    return ReferenceFreeObjective(functools.partial(simpo_loss, beta=beta, gamma=gamma), beta=beta)


def _kto(reference, *, beta: float, desirable_weight: float, undesirable_weight: float):
    from dpo_ref.train.objectives import KTOObjective

    return KTOObjective(
        beta=beta, reference=reference, desirable_weight=desirable_weight, undesirable_weight=undesirable_weight
    )


def _preferred_ft(reference):
    from dpo_ref.train.objectives import SFTObjective

    return SFTObjective()


def _unlikelihood(reference, *, alpha: float):
    from dpo_ref.train.objectives import UnlikelihoodObjective

    return UnlikelihoodObjective(alpha=alpha)


# --------------------------------------------------------------------------- the registry

_DPO_PAPER = "Rafailov et al. 2023, arXiv 2305.18290"
_BETA = Hyperparameter(
    "beta",
    0.1,
    "DPO paper, Appendix B (0.5 for TL;DR summarisation)",
    "KL strength: larger keeps the policy closer to the reference",
    symbol="β",
)
_FLIP_RATE = Hyperparameter(
    "label_smoothing",
    0.1,
    "an assumed 10% of flipped labels (this project's choice)",
    "the rate at which preference labels are assumed flipped",
    check="flip-rate",
    symbol="ε",
)
_KL_COEF = Hyperparameter(
    "kl_coef",
    0.1,
    "the DPO paper's beta of eq. (3), Appendix B",
    "weight of the per-token KL penalty against the reference",
    symbol="β",
)

# Each method's name, spelled here once. Code that singles out one method (DPO as the baseline others are compared
# with, PPO's two rewards) imports these, so a misspelt name fails at import and a rename is one line.
DPO = "dpo"
CDPO = "cdpo"
ROBUST_DPO = "robust-dpo"
DPOP = "dpop"
IPO = "ipo"
HINGE = "hinge"
KTO = "kto"
ORPO = "orpo"
SIMPO = "simpo"
PREFERRED_FT = "preferred-ft"
UNLIKELIHOOD = "unlikelihood"
PPO = "ppo"
PPO_GT = "ppo-gt"

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            DPO,
            "DPO",
            "the sigmoid loss on the implicit-reward margin, eq. (7)",
            _DPO_PAPER,
            "pairs",
            True,
            (_BETA,),
            build=_pairwise("dpo_loss"),
            colour="#0072B2",  # Okabe-Ito blue
            marker="circle",
        ),
        Method(
            CDPO,
            "cDPO",
            "conservative DPO: DPO with label smoothing for noisy labels",
            "Mitchell 2023, a note on DPO with noisy preferences",
            "pairs",
            True,
            (_BETA, _FLIP_RATE),
            build=_pairwise("dpo_loss"),
            colour="#AA4499",  # Tol purple
            marker="circle-open",
        ),
        Method(
            ROBUST_DPO,
            "robust DPO",
            "DPO corrected to be unbiased under a known label-flip rate",
            "Chowdhury et al. 2024, arXiv 2403.00409",
            "pairs",
            True,
            (_BETA, _FLIP_RATE),
            build=_pairwise("robust_dpo_loss"),
            colour="#BB5566",  # Tol red
            marker="square-open",
        ),
        Method(
            DPOP,
            "DPOP",
            "DPO-Positive: DPO plus a penalty when the chosen completion falls below the reference",
            "Pal et al. 2024, arXiv 2402.13228",
            "pairs",
            True,
            (
                _BETA,
                Hyperparameter(
                    "lam",
                    50.0,
                    "50, as in the DPOP authors' runs; they report results insensitive to it "
                    "over [5, 500] (github.com/abacusai/smaug, issue 2)",
                    "weight of the penalty on the chosen completion's fall",
                    check="non-negative",
                    symbol="λ",
                ),
            ),
            build=_pairwise("dpop_loss"),
            colour="#CC3311",  # Tol vibrant red
            marker="triangle-left",
        ),
        Method(
            IPO,
            "IPO",
            "a squared loss with target margin 1/(2 beta); per-token mean log-ratios, as TRL",
            "Azar et al. 2023, arXiv 2310.12036",
            "pairs",
            True,
            (
                Hyperparameter(
                    "beta",
                    0.1,
                    "TRL's default; the paper's tau, with no single value for LLMs",
                    "the paper's tau: larger means a smaller target margin",
                    symbol="τ",
                ),
            ),
            reduction="mean",
            build=_pairwise("ipo_loss", reduction="mean"),
            colour="#009E73",  # Okabe-Ito bluish green
            marker="diamond",
        ),
        Method(
            HINGE,
            "hinge",
            "the hinge loss on the implicit-reward margin (RSO's normalised hinge)",
            "Liu et al. 2023, arXiv 2309.06657",
            "pairs",
            True,
            (Hyperparameter("beta", 0.1, "TRL's default", "the hinge closes at margin 1/beta", symbol="β"),),
            build=_pairwise("hinge_loss"),
            colour="#44AA99",  # Tol teal
            marker="triangle-up",
        ),
        Method(
            KTO,
            "KTO",
            "unpaired desirable and undesirable completions, against a KL reference point",
            "Ethayarajh et al. 2024, arXiv 2402.01306",
            "unpaired",
            True,
            (
                Hyperparameter("beta", 0.1, "KTO paper: 0.1 is close to best", "KL strength", symbol="β"),
                Hyperparameter(
                    "desirable_weight",
                    1.0,
                    "KTO paper: lambda_D n_D / (lambda_U n_U) in [1, 4/3]",
                    "lambda_D, the weight of desirable completions",
                    check="non-negative",
                    symbol="λ<sub>D</sub>",
                ),
                Hyperparameter(
                    "undesirable_weight",
                    1.0,
                    "KTO paper: lambda_D n_D / (lambda_U n_U) in [1, 4/3]",
                    "lambda_U, the weight of undesirable completions",
                    check="non-negative",
                    symbol="λ<sub>U</sub>",
                ),
            ),
            build=_kto,
            colour="#CC79A7",  # Okabe-Ito reddish purple
            marker="square",
        ),
        Method(
            ORPO,
            "ORPO",
            "SFT plus an odds-ratio penalty, no reference model",
            "Hong et al. 2024, arXiv 2403.07691",
            "pairs",
            False,
            (
                Hyperparameter(
                    "lam",
                    0.1,
                    "ORPO paper: lambda around 0.1",
                    "weight of the odds-ratio term",
                    check="non-negative",
                    symbol="λ",
                ),
            ),
            reduction="mean",
            build=_orpo,
            swept="lam",
            colour="#56B4E9",  # Okabe-Ito sky blue
            marker="star",
        ),
        Method(
            SIMPO,
            "SimPO",
            "a length-normalised reward with a target margin, no reference model",
            "Meng, Xia, Chen 2024, arXiv 2405.14734",
            "pairs",
            False,
            (
                Hyperparameter("beta", 2.0, "SimPO paper: 2.0 to 2.5", "reward scale", symbol="β"),
                Hyperparameter(
                    "gamma",
                    1.0,
                    "SimPO paper: gamma / beta around 0.5",
                    "target reward margin",
                    check="non-negative",
                    symbol="γ",
                ),
            ),
            reduction="mean",
            build=_simpo,
            derived=lambda beta: {"gamma": beta / 2},  # the paper's gamma/beta
            colour="#999933",  # Tol olive
            marker="triangle-down",
        ),
        Method(
            PREFERRED_FT,
            "Preferred-FT",
            "supervised fine-tuning on the chosen completions",
            f"{_DPO_PAPER}, section 6",
            "sft",
            False,
            build=_preferred_ft,
            swept=LR_SCALE,
            colour="#997700",  # Tol dark yellow
            marker="x",
        ),
        Method(
            UNLIKELIHOOD,
            "Unlikelihood",
            "likelihood on the chosen completion, unlikelihood on the rejected one",
            "Welleck et al. 2019, arXiv 1908.04319",
            "pairs",
            False,
            (
                Hyperparameter(
                    "alpha",
                    1.0,
                    "Welleck et al. weigh the two terms equally",
                    "weight of the unlikelihood term",
                    check="non-negative",
                    symbol="α",
                ),
            ),
            build=_unlikelihood,
            swept="alpha",
            colour="#EE3377",  # Tol magenta
            marker="cross",
        ),
        Method(
            PPO,
            "PPO",
            "RLHF: a Bradley-Terry reward model on the pairs, then PPO against it",
            "Ziegler et al. 2019, arXiv 1909.08593",
            "rollouts",
            True,
            (_KL_COEF,),
            swept="kl_coef",
            colour="#D55E00",  # Okabe-Ito vermillion
            marker="hexagon",
        ),
        Method(
            PPO_GT,
            "PPO-GT",
            "PPO against the ground-truth reward instead of a learned one",
            f"{_DPO_PAPER}, section 6",
            "rollouts",
            True,
            (_KL_COEF,),
            swept="kl_coef",
            colour="#E69F00",  # Okabe-Ito orange
            marker="pentagon",
        ),
    )
}

# the methods that train on a fixed dataset (everything but PPO)
OFFLINE_METHODS = tuple(name for name, m in METHODS.items() if m.data != "rollouts")
