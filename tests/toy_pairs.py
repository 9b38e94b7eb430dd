"""Tiny models and random preference pairs that several test files train on."""

from __future__ import annotations

import torch

from dpo_ref.models import tiny_gpt2

V = 10  # vocabulary of the toy models


def toy_model(seed: int = 0):
    return tiny_gpt2(V, n_layer=1, n_embd=16, n_head=2, n_positions=16, seed=seed)


def random_pairs(n: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random pairs, 3 prompt tokens and 4 completion tokens a side, reference log-probs precomputed as 0."""
    g = torch.Generator().manual_seed(seed)
    prompts = torch.randint(0, V, (n, 3), generator=g)
    out = {}
    for side in ("chosen", "rejected"):
        ids = torch.cat([prompts, torch.randint(0, V, (n, 4), generator=g)], 1)
        labels = ids.clone()
        labels[:, :3] = -100
        out.update({f"{side}_input_ids": ids, f"{side}_attention_mask": torch.ones_like(ids), f"{side}_labels": labels})
    out["reference_chosen_logps"] = torch.zeros(n)
    out["reference_rejected_logps"] = torch.zeros(n)
    return out
