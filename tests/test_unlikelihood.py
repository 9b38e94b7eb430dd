"""The unlikelihood loss (dpo_ref.losses.unlikelihood_loss): hand values, checks, and the objective that calls it."""

from __future__ import annotations

import math

import pytest
import torch

from dpo_ref.logps import sequence_logps, token_logps
from dpo_ref.losses import unlikelihood_loss
from dpo_ref.models import tiny_gpt2
from dpo_ref.train import UnlikelihoodObjective


def test_hand_computed_values():
    # row 0: chosen mean log-prob log 0.5; rejected tokens with p = 0.5 and 0.25 (third position masked)
    # row 1: chosen mean log-prob log 0.8; one rejected token with p = 0.9
    chosen = torch.tensor([math.log(0.5), math.log(0.8)], dtype=torch.float64)
    rejected = torch.tensor([[math.log(0.5), math.log(0.25), 0.0], [math.log(0.9), 0.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    losses = unlikelihood_loss(chosen, rejected, mask, alpha=2.0)
    expected = [
        -math.log(0.5) - 2.0 * (math.log(1 - 0.5) + math.log(1 - 0.25)) / 2,  # 0.693 + 0.981 = 1.674
        -math.log(0.8) - 2.0 * math.log(1 - 0.9),  # 0.223 + 4.605 = 4.828
    ]
    assert losses.shape == (2,)
    torch.testing.assert_close(losses, torch.tensor(expected, dtype=torch.float64))
    assert losses[0].item() == pytest.approx(1.6740, abs=1e-4) and losses[1].item() == pytest.approx(4.8283, abs=1e-4)


def test_alpha_zero_is_the_chosen_nll_and_a_certain_token_stays_finite():
    chosen = torch.tensor([-1.5], dtype=torch.float64)
    rejected = torch.tensor([[0.0, -2.0]], dtype=torch.float64)  # the first rejected token has probability 1
    mask = torch.tensor([[True, True]])
    assert unlikelihood_loss(chosen, rejected, mask, alpha=0.0).item() == pytest.approx(1.5)
    clamped = 1.5 - (math.log(1e-6) + math.log(1 - math.exp(-2.0))) / 2  # log(1 - p) floored at log(1e-6)
    assert unlikelihood_loss(chosen, rejected, mask, alpha=1.0).item() == pytest.approx(clamped, rel=1e-6)


def test_masked_positions_are_ignored_even_when_nan():
    chosen = torch.tensor([-1.0], dtype=torch.float64)
    mask = torch.tensor([[True, False]])
    clean = unlikelihood_loss(chosen, torch.tensor([[math.log(0.5), 0.0]], dtype=torch.float64), mask, alpha=1.0)
    noisy = unlikelihood_loss(chosen, torch.tensor([[math.log(0.5), math.nan]], dtype=torch.float64), mask, alpha=1.0)
    assert clean.item() == noisy.item() == pytest.approx(1.0 - math.log(0.5))
    as_float = unlikelihood_loss(
        chosen, torch.tensor([[math.log(0.5), 0.0]], dtype=torch.float64), mask.double(), alpha=1.0
    )
    assert as_float.item() == clean.item()


def test_gradient_matches_the_closed_form():
    # d/dl [-alpha/n * log(1 - e^l)] = alpha/n * p / (1 - p); d/dc [-c] = -1
    chosen = torch.tensor([-0.7], dtype=torch.float64, requires_grad=True)
    rejected = torch.tensor([[math.log(0.3), math.log(0.6)]], dtype=torch.float64, requires_grad=True)
    unlikelihood_loss(chosen, rejected, torch.ones(1, 2, dtype=torch.bool), alpha=0.5).sum().backward()
    assert chosen.grad.item() == pytest.approx(-1.0)
    torch.testing.assert_close(rejected.grad, torch.tensor([[0.25 * 0.3 / 0.7, 0.25 * 0.6 / 0.4]], dtype=torch.float64))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"alpha": -1.0}, "alpha must be a non-negative number, got -1.0"),
        ({"alpha": math.nan}, "alpha must be a non-negative number"),
        ({"chosen": torch.tensor([math.nan, -1.0])}, "policy_chosen_mean_logps contains NaN"),
        ({"rejected": torch.tensor([[math.nan, -1.0], [-1.0, -1.0]])}, "policy_rejected_token_logps contains NaN"),
        (
            {"mask": torch.tensor([[True, True], [False, False]])},
            r"rows \[1\] have no completion token .* rejected_mask",
        ),
        ({"rejected": torch.zeros(3, 2)}, r"policy_rejected_token_logps must be 2-D with shape \(B, T\), B = 2"),
        ({"mask": torch.ones(2, 3, dtype=torch.bool)}, r"rejected_mask has shape \(2, 3\) but"),
        ({"chosen": torch.zeros(2, 1)}, r"policy_chosen_mean_logps must be 1-D"),
    ],
    ids=["alpha<0", "alpha=nan", "nan chosen", "nan rejected", "empty row", "batch size", "mask shape", "2-D chosen"],
)
def test_bad_inputs_are_named(change, message):
    args = {
        "chosen": torch.tensor([-1.0, -2.0]),
        "rejected": torch.full((2, 2), -1.0),
        "mask": torch.ones(2, 2, dtype=torch.bool),
        "alpha": 1.0,
        **change,
    }
    # the value checks (NaN, a row with no token) run in debug mode: torch's anomaly mode
    with torch.autograd.set_detect_anomaly(True), pytest.raises((ValueError, FloatingPointError), match=message):
        unlikelihood_loss(args["chosen"], args["rejected"], args["mask"], alpha=args["alpha"])


def test_the_objective_is_the_mean_of_the_loss():
    torch.manual_seed(0)
    model = tiny_gpt2(10, n_layer=1, n_embd=16, n_head=2, n_positions=16, seed=0)
    g = torch.Generator().manual_seed(0)
    batch = {}
    for side in ("chosen", "rejected"):
        ids = torch.randint(0, 10, (4, 6), generator=g)
        labels = ids.clone()
        labels[:, :2] = -100
        batch.update(
            {f"{side}_input_ids": ids, f"{side}_attention_mask": torch.ones_like(ids), f"{side}_labels": labels}
        )
    loss, _ = UnlikelihoodObjective(alpha=0.5)(model, batch)
    with torch.no_grad():
        chosen = sequence_logps(
            model(input_ids=batch["chosen_input_ids"]).logits, batch["chosen_labels"], reduction="mean"
        )
        tokens, mask = token_logps(model(input_ids=batch["rejected_input_ids"]).logits, batch["rejected_labels"])
    expected = unlikelihood_loss(chosen, tokens, mask, alpha=0.5).mean()
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-5, atol=1e-6)
