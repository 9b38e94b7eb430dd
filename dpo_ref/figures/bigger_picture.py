"""Figures of "The bigger picture" page: each variant's loss and gradient against its margin.

Every curve is a loss function of :mod:`dpo_ref.losses` evaluated on a grid, and every
gradient is its autograd derivative, plotted as :math:`-\\partial\\mathcal L/\\partial x`
for the quantity :math:`x` on the horizontal axis: a positive value means a gradient
step pushes :math:`x` up, zero means the pair no longer teaches anything.
Hyperparameters are the typical values of the comparison table on the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from dpo_ref import losses
from dpo_ref.figures._util import as_list, grid, value_and_slope
from dpo_ref.figures.theme import METHOD_COLOURS, style
from dpo_ref.methods import CDPO, DPO, DPOP, HINGE, IPO, KTO, METHODS, ORPO, SIMPO

# Typical hyperparameters (the page's table gives the sources).
DPO_BETA = 0.1
CDPO_EPSILON = 0.1
HINGE_BETA = 0.1
IPO_TAU = 0.1
KTO_BETA = 0.1
ORPO_LAMBDA = 0.1
ORPO_REJECTED_MEAN_LOGP = -1.5  # ORPO's odds depend on levels, not only the gap: hold y_l fixed
SIMPO_BETA = 2.0
SIMPO_GAMMA = 1.0  # gamma / beta = 0.5
DPOP_LAMBDA = METHODS[DPOP].params()["lam"]  # the registry's default, the DPOP authors' 50
DPOP_REJECTED_LOG_RATIO = -10.0  # the rejected answer held far below the reference, as displacement leaves it

H = grid(-40.0, 60.0, 251)  # log-ratio margin h, nats (summed log-probs)


@dataclass(frozen=True)
class Curve:
    """One loss on the figure: a function of the plotted quantity, shape (N,) -> (N,)."""

    method: str
    label: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    dash: str = "solid"


def loss_and_push(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss along ``x`` and :math:`-\\partial\\mathcal L/\\partial x` by autograd."""
    loss, slope = value_and_slope(fn, x)
    return loss, -slope


def _pair(fn, **kwargs) -> Callable[[torch.Tensor], torch.Tensor]:
    """A DPO-family loss as a function of the log-ratio margin h alone."""

    def of_margin(h: torch.Tensor) -> torch.Tensor:
        zeros = torch.zeros_like(h)
        return fn(h, zeros, zeros, zeros, **kwargs)

    return of_margin


def dpo_curve() -> Curve:
    return Curve(DPO, f"DPO, β = {DPO_BETA}", _pair(losses.dpo_loss, beta=DPO_BETA), dash="dot")


def _figure(
    curves: list[Curve], x: torch.Tensor, x_title: str, *, loss_range=None, push_range=None, height: int = 540
) -> go.Figure:
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for curve in curves:
        loss, push = loss_and_push(curve.fn, x)
        colour = METHOD_COLOURS[curve.method]
        for row, values in ((1, loss), (2, push)):
            fig.add_trace(
                go.Scatter(
                    x=as_list(x),
                    y=as_list(values),
                    mode="lines",
                    name=curve.label,
                    legendgroup=curve.label,
                    showlegend=row == 1,
                    line=dict(color=colour, width=3, dash=curve.dash),
                    hovertemplate="%{x:.2f}: %{y:.4g}<extra>" + curve.label + "</extra>",
                ),
                row=row,
                col=1,
            )
    fig.update_yaxes(title_text="loss", range=loss_range, row=1, col=1)
    fig.update_yaxes(title_text="−∂L/∂x (push)", range=push_range, zeroline=True, row=2, col=1)
    fig.update_xaxes(title_text=x_title, row=2, col=1)
    fig.update_layout(margin=dict(t=16, b=24))
    return style(fig, height=height)


H_TITLE = "x = log-ratio margin h, nats"


def variant_cdpo() -> go.Figure:
    """cDPO (label smoothing 0.1) against DPO: the push turns negative past a finite margin."""
    cdpo = Curve(
        CDPO,
        f"cDPO, β = {DPO_BETA}, ε = {CDPO_EPSILON}",
        _pair(losses.dpo_loss, beta=DPO_BETA, label_smoothing=CDPO_EPSILON),
    )
    return _figure([cdpo, dpo_curve()], H, H_TITLE, loss_range=[0, 4.5])


def variant_hinge() -> go.Figure:
    """Hinge (SLiC) against DPO: no gradient at all once the margin passes 1/beta."""
    curve = Curve(HINGE, f"hinge, β = {HINGE_BETA}", _pair(losses.hinge_loss, beta=HINGE_BETA))
    return _figure([curve, dpo_curve()], H, H_TITLE, loss_range=[0, 5.2])


def variant_ipo() -> go.Figure:
    """IPO: a parabola with its minimum at h = 1/(2 tau), pulled back from both sides."""
    x = grid(-10.0, 20.0, 301)
    curve = Curve(IPO, f"IPO, τ = {IPO_TAU} (target h = {1 / (2 * IPO_TAU):g})", _pair(losses.ipo_loss, beta=IPO_TAU))
    return _figure([curve], x, "x = margin h, per-token mean (TRL)")


def variant_kto() -> go.Figure:
    """KTO on single answers: desirable and undesirable, against the log-ratio minus z0."""
    rho = grid(-60.0, 60.0, 241)

    def kto_curve(desirable: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        def fn(r: torch.Tensor) -> torch.Tensor:
            flags = torch.full(r.shape, desirable, dtype=torch.bool)
            return losses.kto_loss(r, torch.zeros_like(r), flags, 0.0, beta=KTO_BETA)

        return fn

    curves = [
        Curve(KTO, f"KTO desirable y, β = {KTO_BETA}", kto_curve(True)),
        Curve(KTO, f"KTO undesirable y, β = {KTO_BETA}", kto_curve(False), dash="dash"),
    ]
    return _figure(curves, rho, "x = ρ − z₀, nats (reference point z₀ = 0)", loss_range=[0, 1.05])


def variant_dpop() -> go.Figure:
    """DPOP against DPO along the chosen answer's log-ratio, the rejected one held 10 nats below the reference:
    once the chosen answer falls below the reference, DPOP's push on it is (1 + lambda) times DPO's."""
    x = grid(-2.0, 4.0, 241)

    def of_chosen(fn, **kwargs) -> Callable[[torch.Tensor], torch.Tensor]:
        def fn_of_chosen(chosen: torch.Tensor) -> torch.Tensor:
            zeros = torch.zeros_like(chosen)
            return fn(chosen, torch.full_like(chosen, DPOP_REJECTED_LOG_RATIO), zeros, zeros, **kwargs)

        return fn_of_chosen

    curves = [
        Curve(
            DPOP,
            f"DPOP, β = {DPO_BETA}, λ = {DPOP_LAMBDA:g}",
            of_chosen(losses.dpop_loss, beta=DPO_BETA, lam=DPOP_LAMBDA),
        ),
        Curve(DPO, f"DPO, β = {DPO_BETA}", of_chosen(losses.dpo_loss, beta=DPO_BETA), dash="dot"),
    ]
    title = "x = chosen answer's log π/π<sub>ref</sub>, nats"  # the rejected one: in the text
    return _figure(curves, x, title)


def variant_orpo() -> go.Figure:
    """ORPO against the gap in mean log-probs, with the rejected answer held at -1.5 nats per token."""
    gap = grid(-3.0, 1.45, 300)
    rejected = torch.full_like(gap, ORPO_REJECTED_MEAN_LOGP)

    def total(g: torch.Tensor) -> torch.Tensor:
        chosen = rejected + g
        return losses.orpo_loss(chosen, rejected, -chosen, lam=ORPO_LAMBDA)  # NLL = -mean log-prob

    def odds_term(g: torch.Tensor) -> torch.Tensor:
        chosen = rejected + g
        return losses.orpo_loss(chosen, rejected, torch.zeros_like(chosen), lam=ORPO_LAMBDA)

    curves = [
        Curve(ORPO, f"ORPO: SFT + λ·odds term, λ = {ORPO_LAMBDA}", total),
        Curve(ORPO, "its odds-ratio term λ·(−log σ(log odds ratio))", odds_term, dash="dash"),
    ]
    return _figure(curves, gap, "x = mean log π(y<sub>w</sub>) − mean log π(y<sub>l</sub>)")


def variant_simpo() -> go.Figure:
    """SimPO with and without its target margin gamma, against the gap in mean log-probs."""
    gap = grid(-2.0, 3.0, 301)

    def simpo_curve(gamma: float) -> Callable[[torch.Tensor], torch.Tensor]:
        def fn(g: torch.Tensor) -> torch.Tensor:
            return losses.simpo_loss(g, torch.zeros_like(g), beta=SIMPO_BETA, gamma=gamma)

        return fn

    curves = [
        Curve(SIMPO, f"SimPO, β = {SIMPO_BETA:g}, γ = {SIMPO_GAMMA:g}", simpo_curve(SIMPO_GAMMA)),
        Curve(SIMPO, f"SimPO, β = {SIMPO_BETA:g}, γ = 0", simpo_curve(0.0), dash="dash"),
    ]
    return _figure(curves, gap, "x = mean log π(y<sub>w</sub>) − mean log π(y<sub>l</sub>)")


__all__ = [
    "variant_cdpo",
    "variant_hinge",
    "variant_ipo",
    "variant_kto",
    "variant_dpop",
    "variant_orpo",
    "variant_simpo",
    "loss_and_push",
]
