"""FLOPs each trainer performs, and the machine's matrix-product rate, for an honest MFU.

Model FLOPs utilisation here is the FLOPs a trainer *actually performed* per second
against the rate of a float32 matrix product of the same shapes, in the same process,
with the same threads. The FLOPs are counted from the shapes the model really computed
(:class:`benchmarks.trainers.WorkCounter`), so a trainer that pads, or runs a shared
prompt twice, is charged for it, and dpo_ref's shared prompt (run once) is charged once:

* each forward call on ``rows x length`` positions costs ``2 P`` FLOPs per position in
  the blocks' weight matrices (``P = 12 L d^2``: attention 4 d^2, MLP 8 d^2, per layer)
  plus ``4 L d length`` per position for attention's two products (scores, values);
* the LM head costs ``2 V d`` per projected position;
* backward costs twice the forward (Kaplan et al. 2020; PaLM, Chowdhery et al. 2022,
  appendix B), so a training step is 3 times its forward FLOPs.
"""

from __future__ import annotations

import time

import torch


def matmul_flops_per_s(m: int, k: int, n: int, *, seconds: float = 1.0) -> float:
    """Best rate of ``(m x k) @ (k x n)`` float32 products over repeated timings, in this process."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.mm(a, b)  # warm-up
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * m * k * n / (time.perf_counter() - start))
    return best


def block_params(n_layer: int, n_embd: int) -> int:
    """Weights of the transformer blocks' matrix products (biases and layer norms aside)."""
    return 12 * n_layer * n_embd * n_embd


def performed_flops(work: dict, n_layer: int, n_embd: int, vocab_size: int) -> float:
    """Training FLOPs of the forward calls ``work`` recorded (3x their forward FLOPs)."""
    params = block_params(n_layer, n_embd)
    forward = sum(rows * length * (2 * params + 4 * n_layer * n_embd * length) for rows, length in work["blocks"])
    forward += 2 * vocab_size * n_embd * work["head_positions"]
    return 3.0 * forward


def model_params(n_layer: int, n_embd: int, vocab_size: int, n_positions: int) -> int:
    """All parameters of the GPT-2: blocks, token and position embeddings (the head is tied)."""
    per_layer = 12 * n_embd * n_embd + 13 * n_embd  # weights, biases and the two layer norms
    return n_layer * per_layer + (vocab_size + n_positions) * n_embd + 2 * n_embd
