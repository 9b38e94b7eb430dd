"""Small helpers shared by the figure modules."""

from __future__ import annotations

import plotly.graph_objects as go
import torch


def as_list(t: torch.Tensor, digits: int = 6) -> list[float]:
    """A tensor as a plain list of floats, rounded so that figure JSON is stable across platforms."""
    return [round(float(v), digits) for v in t.detach().flatten().tolist()]


def grid(start: float, stop: float, n: int) -> torch.Tensor:
    """``n`` evenly spaced float64 points from ``start`` to ``stop`` inclusive."""
    return torch.linspace(start, stop, n, dtype=torch.float64)


def value_and_slope(fn, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``fn(x)`` and its derivative ``d fn / dx`` at every point of ``x``, by autograd.

    ``fn`` maps a ``(N,)`` tensor to per-example values ``(N,)``; each output depends only
    on its own input, so the gradient of the sum is the elementwise derivative.
    """
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    (slope,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), slope.detach()


def fmt(value: float, digits: int = 2) -> str:
    """Format a number for a label, with a true minus sign and no negative zero."""
    text = f"{value:.{digits}f}"
    if float(text) == 0:
        text = f"{0:.{digits}f}"
    return text.replace("-", "−")


def readout(state: dict, i: int, *, position: str, name: str = "readout", size: int = 14) -> go.Scatter:
    """Trace ``i`` of a slider's state drawn as a text readout: no legend entry, no hover."""
    return go.Scatter(
        x=state["x"][i],
        y=state["y"][i],
        text=state["text"][i],
        mode="text",
        textposition=position,
        textfont=dict(size=size),
        name=name,
        showlegend=False,
        hoverinfo="skip",
    )
