"""PPO pinned by hand: the clipped losses, whitening, the KL-penalised rewards, GAE, the
objective's total loss, and a rollout that stops at EOS.

Each maths function of dpo_ref.train.ppo is checked on tensors small enough to work out
on paper, value and gradient. Three deliberate breakages of ppo.py (no ratio clipping,
``min`` for ``max`` in the surrogate, the value loss dropped from the objective) each
fail a test here.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch

from dpo_ref.logps import IGNORE_INDEX
from dpo_ref.models import tiny_gpt2
from dpo_ref.train.ppo import (
    PPOConfig,
    PPOObjective,
    PPORollouts,
    ValueHeadModel,
    clipped_policy_loss,
    clipped_value_loss,
    gae,
    kl_penalised_rewards,
    trim_completions,
    whiten,
)

EPS = 0.2  # clip range of every hand case


def _leaf(value: float) -> torch.Tensor:
    return torch.tensor([[value]], dtype=torch.float64, requires_grad=True)


def _one(value: float) -> torch.Tensor:
    return torch.tensor([[value]], dtype=torch.float64)


# --------------------------------------------------------------------------- clipped surrogate

# (advantage A, ratio rho, loss, d loss / d log pi). The loss is -min(rho A, clip(rho) A):
# past the clip in the direction A favours, the clipped value and no gradient; otherwise
# -rho A, whose gradient through log pi is -rho A.
POLICY_CASES = [
    pytest.param(2.0, 1.5, -(1 + EPS) * 2.0, 0.0, id="A>0, ratio 1.5: clipped at 1+eps, no gradient"),
    pytest.param(2.0, 0.5, -0.5 * 2.0, -0.5 * 2.0, id="A>0, ratio 0.5: unclipped, with gradient"),
    pytest.param(-2.0, 0.5, -(1 - EPS) * -2.0, 0.0, id="A<0, ratio 0.5: clipped at 1-eps, no gradient"),
    pytest.param(-2.0, 1.5, -1.5 * -2.0, -1.5 * -2.0, id="A<0, ratio 1.5: unclipped, with gradient"),
    pytest.param(2.0, 1.1, -1.1 * 2.0, -1.1 * 2.0, id="inside the clip range: the plain surrogate"),
]


@pytest.mark.parametrize(("advantage", "ratio", "loss", "gradient"), POLICY_CASES)
def test_clipped_policy_loss_by_hand(advantage, ratio, loss, gradient):
    old_logps = _one(-1.0)
    logps = _leaf(-1.0 + math.log(ratio))
    got, ratios = clipped_policy_loss(logps, old_logps, _one(advantage), _one(1.0), EPS)
    got.backward()
    assert ratios.item() == pytest.approx(ratio)
    assert got.item() == pytest.approx(loss), "loss"
    assert logps.grad.item() == pytest.approx(gradient, abs=1e-12), "gradient through the ratio"


def test_clipped_policy_loss_averages_over_the_mask_only():
    """All four hand cases in one row, plus a masked position holding a huge ratio."""
    advantages = torch.tensor([[2.0, 2.0, -2.0, -2.0, 5.0]], dtype=torch.float64)
    ratios = torch.tensor([[1.5, 0.5, 0.5, 1.5, 100.0]], dtype=torch.float64)
    mask = torch.tensor([[True, True, True, True, False]])
    logps = ratios.log().requires_grad_()
    loss, _ = clipped_policy_loss(logps, torch.zeros_like(logps), advantages, mask, EPS)
    loss.backward()
    assert loss.item() == pytest.approx((-2.4 - 1.0 + 1.6 + 3.0) / 4)
    assert logps.grad[0].tolist() == pytest.approx([0.0, -1.0 / 4, 0.0, 3.0 / 4, 0.0])


# --------------------------------------------------------------------------- clipped value loss

# (value, old value, return, loss, d loss / d value) with clip range EPS: the larger of the
# squared errors of the value and of the value clipped to old +- EPS, halved.
VALUE_CASES = [
    pytest.param(0.5, 0.0, 1.0, 0.5 * (0.2 - 1.0) ** 2, 0.0, id="moved 0.5 towards the return: clipped, no gradient"),
    pytest.param(1.5, 0.0, 1.0, 0.5 * (0.2 - 1.0) ** 2, 0.0, id="overshot the return: clipped, no gradient"),
    pytest.param(0.1, 0.0, 1.0, 0.5 * (0.1 - 1.0) ** 2, 0.1 - 1.0, id="inside the clip range: plain, with gradient"),
    pytest.param(-0.5, 0.0, 1.0, 0.5 * (-0.5 - 1.0) ** 2, -0.5 - 1.0, id="moved away: unclipped, with gradient"),
]


@pytest.mark.parametrize(("value", "old", "ret", "loss", "gradient"), VALUE_CASES)
def test_clipped_value_loss_by_hand(value, old, ret, loss, gradient):
    values = _leaf(value)
    got = clipped_value_loss(values, _one(old), _one(ret), _one(1.0), EPS)
    got.backward()
    assert got.item() == pytest.approx(loss), "loss"
    assert values.grad.item() == pytest.approx(gradient, abs=1e-12), "gradient"


# --------------------------------------------------------------------------- whitening, rewards, GAE


def test_whiten_gives_mean_0_and_std_1_over_the_mask_and_0_off_it():
    g = torch.Generator().manual_seed(0)
    values = 3.0 + 5.0 * torch.randn(3, 7, generator=g, dtype=torch.float64)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[:, :2] = False  # prompt
    mask[1, 5:] = False  # padding after a short completion
    values[~mask] = 1e6  # whatever sits off the mask must not count
    out = whiten(values, mask)
    kept = out[mask]
    assert kept.mean().item() == pytest.approx(0.0, abs=1e-9)
    assert kept.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-6)
    assert out[~mask].eq(0).all()
    raw = values[mask]
    assert torch.allclose(kept, (raw - raw.mean()) / raw.std(unbiased=False), atol=1e-6)


def test_kl_penalised_rewards_by_hand():
    # row 0 scores positions 1..3; row 1 stopped at EOS on position 2 (position 3 is padding)
    mask = torch.tensor([[False, True, True, True], [False, True, True, False]])
    kl = torch.tensor([[0.0, 0.5, -0.2, 0.3], [0.0, 1.0, 2.0, 0.0]])
    scores = torch.tensor([10.0, -4.0])
    got = kl_penalised_rewards(kl, scores, mask, 0.1)
    expected = torch.tensor([[0.0, -0.05, 0.02, -0.03 + 10.0], [0.0, -0.1, -0.2 - 4.0, 0.0]])
    assert torch.allclose(got, expected), got


def test_gae_by_hand():
    gamma, lam = 0.5, 0.5
    mask = torch.tensor([[False, True, True, True], [False, True, True, False]])
    rewards = torch.tensor([[0.0, 1.0, 0.0, 2.0], [0.0, 0.0, 4.0, 0.0]])
    values = torch.tensor([[0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 1.0, 0.0]])
    # row 0: delta_3 = 2 - 3 = -1; delta_2 = 0 + 0.5 * 3 - 2 = -0.5; delta_1 = 1 + 0.5 * 2 - 1 = 1
    #        A_3 = -1; A_2 = -0.5 + 0.25 * -1 = -0.75; A_1 = 1 + 0.25 * -0.75 = 0.8125
    # row 1: padding passes nothing back: delta_2 = 4 - 1 = 3; delta_1 = 0 + 0.5 * 1 - 1 = -0.5
    #        A_2 = 3; A_1 = -0.5 + 0.25 * 3 = 0.25
    expected = torch.tensor([[0.0, 0.8125, -0.75, -1.0], [0.0, 0.25, 3.0, 0.0]])
    assert torch.allclose(gae(rewards, values, mask, gamma, lam), expected)


def test_gae_matches_the_discounted_sum_of_td_errors():
    g = torch.Generator().manual_seed(0)
    rewards, values = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    mask = torch.ones(4, 6, dtype=torch.bool)
    mask[:, 0] = False  # a prompt position
    mask[2, 4:] = False  # a shorter completion
    gamma, lam = 0.9, 0.8
    got = gae(rewards * mask, values * mask, mask, gamma, lam)
    for b in range(4):
        ts = [t for t in range(6) if mask[b, t]]
        for i, t in enumerate(ts):
            expected = 0.0
            for j, u in enumerate(ts[i:]):
                next_value = values[b, ts[i + j + 1]] if i + j + 1 < len(ts) else 0.0
                delta = rewards[b, u] + gamma * next_value - values[b, u]
                expected += (gamma * lam) ** j * float(delta)
            assert got[b, t].item() == pytest.approx(expected, abs=1e-5)


# --------------------------------------------------------------------------- the objective and a rollout

V, EOS = 6, 5  # vocabulary of the toy policy, and its end-of-sequence token


def _policy(eos_bias: float = 1.0) -> torch.nn.Module:
    """A tiny GPT-2 whose untied LM head puts about a third of the mass on EOS at every step."""
    lm = tiny_gpt2(V, n_layer=1, n_embd=16, n_head=2, n_positions=16, seed=0, eos_token_id=EOS)
    head = torch.nn.Linear(16, V, bias=True)
    with torch.no_grad():
        head.weight.copy_(lm.lm_head.weight)
        head.bias.zero_()
        head.bias[EOS] = eos_bias
    lm.lm_head = head
    return lm.eval()


def _rollout(config: PPOConfig, reward_fn, seed: int = 0):
    lm = _policy()
    prompts = torch.tensor([[1, 2], [3, 4], [2, 2]])
    rollouts = PPORollouts(ValueHeadModel(lm), copy.deepcopy(lm), reward_fn, prompts, config, seed=seed)
    return rollouts, rollouts(0)  # step 0 samples the first rollout


def _score(ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """A score that differs between rows: the sum of the attended completion tokens, plus 1."""
    return 1.0 + (ids[:, 2:] * attention[:, 2:]).sum(1).float()


def test_rollout_masks_everything_after_eos_and_scores_the_eos_token():
    gamma = 0.5
    config = PPOConfig(
        kl_coef=0.0,
        rollout_batch_size=24,
        minibatch_size=24,
        ppo_epochs=1,
        max_new_tokens=4,
        eos_token_id=EOS,
        gamma=gamma,
        lam=1.0,
        whiten_advantages=False,
    )
    seen = []

    def reward_fn(ids, attention):
        seen.append((ids.clone(), attention.clone()))
        return _score(ids, attention)

    rollouts, _ = _rollout(config, reward_fn)
    buf = rollouts.buffer
    ids, attention, labels = buf["input_ids"], buf["attention_mask"], buf["labels"]
    assert ids.shape == (24, 2 + 4)
    assert torch.equal(seen[0][1], attention)  # the reward model reads the completion up to EOS only
    ends = []
    for row in range(24):
        completion = ids[row, 2:].tolist()
        end = 2 + completion.index(EOS) if EOS in completion else ids.shape[1] - 1  # last scored token
        ends.append(end - 2)
        assert attention[row, : end + 1].eq(1).all() and attention[row, end + 1 :].eq(0).all(), row
        assert torch.equal(labels[row, 2 : end + 1], ids[row, 2 : end + 1])
        assert labels[row, :2].eq(IGNORE_INDEX).all() and labels[row, end + 1 :].eq(IGNORE_INDEX).all()
        # position t-1 of the (B, T-1) tensors scores token t
        scored = torch.zeros(ids.shape[1] - 1, dtype=torch.bool)
        scored[1:end] = True
        for key in ("old_logps", "old_values", "advantages", "returns"):
            assert buf[key][row, ~scored].eq(0).all(), (key, row)
        assert buf["old_logps"][row, scored].lt(0).all()
        # values start at 0 (zero value head) and the KL penalty is off, so the return of
        # each scored token is the score discounted from where it sits: the EOS (or last) token
        score = _score(ids[row : row + 1], attention[row : row + 1]).item()
        assert buf["rollout_score"][row].item() == score
        expected = [score * gamma ** (end - 1 - t) for t in range(1, end)]
        assert buf["returns"][row, 1:end].tolist() == pytest.approx(expected), row
    # the sampled rollout holds each case: EOS first, EOS in the middle, no EOS at all
    assert {0, 1, 3} <= set(ends), ends
    assert any(EOS not in ids[row, 2:].tolist() for row in range(24))


def test_objective_loss_is_policy_plus_weighted_value_loss_and_trains_the_value_head():
    config = PPOConfig(
        kl_coef=0.1,
        rollout_batch_size=8,
        minibatch_size=8,
        ppo_epochs=1,
        max_new_tokens=3,
        eos_token_id=EOS,
        vf_coef=0.5,
    )
    rollouts, batch = _rollout(config, _score)
    model = rollouts.policy.train()
    batch = {**batch, "returns": batch["returns"] + 1.0}  # values at their rollout estimate still miss
    loss, metrics = PPOObjective(config)(model, batch)
    assert metrics["loss/value"] > 0
    assert loss.item() == pytest.approx(metrics["loss/policy"] + 0.5 * metrics["loss/value"], rel=1e-6)
    loss.backward()
    # only the value loss reaches the value head: the policy loss does not read the values
    grad = model.value_head.weight.grad
    assert grad is not None and grad.abs().sum() > 0, "the value head gets no gradient from the loss"


def test_a_minibatch_cut_after_its_last_attended_column_gives_the_same_loss():
    """Columns masked in every row change no loss: the minibatch is cut there, per-token columns one shorter."""
    config = PPOConfig(
        kl_coef=0.1, rollout_batch_size=8, minibatch_size=8, ppo_epochs=1, max_new_tokens=3, eos_token_id=EOS
    )
    rollouts, batch = _rollout(config, _score)
    extra = 3  # columns after every row's end, as a rollout whose longest row ended early has

    def pad(key: str, value: torch.Tensor) -> torch.Tensor:
        if value.ndim != 2:
            return value
        fill = {"input_ids": EOS, "labels": IGNORE_INDEX}.get(key, 0)
        return torch.nn.functional.pad(value, (0, extra), value=fill)

    padded = {key: pad(key, value) for key, value in batch.items()}
    trimmed = trim_completions(padded)
    for key, value in batch.items():
        assert torch.equal(trimmed[key], value), key
    model = rollouts.policy.train()
    loss, metrics = PPOObjective(config)(model, batch)
    padded_loss, padded_metrics = PPOObjective(config)(model, padded)
    assert padded_loss.item() == pytest.approx(loss.item(), abs=1e-6)
    assert padded_metrics == pytest.approx(metrics, abs=1e-6)
