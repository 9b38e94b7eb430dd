"""Model FLOPs and the machine's matrix-product rate, for model FLOPs utilisation (MFU).

MFU = (model FLOPs per second of training) / (FLOP/s of a large fp32 matrix product on
the same machine, same thread count, measured in the training process right after it). Model FLOPs per token follow PaLM (Chowdhery et
al. 2022, appendix B): ``6 N + 12 L d T``, with ``N`` the parameters that do matrix
products (the transformer blocks and the tied LM head; not the embedding lookups),
``L`` layers, width ``d`` and ``T`` the mean sequence length. Tokens are the real
tokens of both sequences of a pair, as in the throughput figure; the prompt counts
twice, as it would without prompt sharing, so both trainers are scored on the same
work and prompt sharing shows up as a higher MFU.
"""

from __future__ import annotations

import time

import torch


def matmul_flops_per_s(n: int = 1024, seconds: float = 1.0) -> float:
    """Best rate of ``n x n @ n x n`` float32 products over repeated timings."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def model_flops_per_token(workload, meta: dict, mean_sequence_length: float) -> float:
    d, layers, vocab = workload.n_embd, workload.n_layer, meta["vocab_size"]
    block_params = layers * 12 * d * d  # attention (4 d^2) + MLP (8 d^2), weights only
    matmul_params = block_params + vocab * d  # + the tied LM head
    return 6 * matmul_params + 12 * layers * d * mean_sequence_length
