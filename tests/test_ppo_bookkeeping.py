"""PPO's bookkeeping pinned by hand: whitening, GAE advantages and returns, the logged objective.

The numbers a PPO run logs (and the results pages quote: its objective, KL and score)
and the targets its updates chase (advantages, returns) are worked out here on paper
for a completion of three tokens, with gamma, lambda and a value head that is not zero,
and compared with what :mod:`dpo_ref.train.ppo` computes. The returns are checked
against the lambda-return recursion (a different formula from GAE's sum of TD errors):

    G_last = r_last,    G_t = r_t + gamma * ((1 - lambda) * V_{t+1} + lambda * G_{t+1}),

and an advantage is G_t - V_t.
"""

from __future__ import annotations

import math

import pytest
import torch

from dpo_ref.logps import IGNORE_INDEX
from dpo_ref.models import tiny_gpt2
from dpo_ref.train.ppo import PPOConfig, PPOObjective, PPORollouts, gae, kl_penalised_rewards, whiten

F64 = torch.float64


def _t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=F64)


# --------------------------------------------------------------------------- whitening


def test_whiten_by_hand():
    # 1, 2, 3 scored (99 is padding): mean 2, population variance (1 + 0 + 1) / 3 = 2/3,
    # so (x - 2) / sqrt(2/3): -sqrt(1.5), 0, sqrt(1.5); the padding stays 0
    got = whiten(_t([[1.0, 2.0, 3.0, 99.0]]), torch.tensor([[True, True, True, False]]))
    assert got[0].tolist() == pytest.approx([-math.sqrt(1.5), 0.0, math.sqrt(1.5), 0.0], rel=1e-7)


def test_whiten_pools_the_whole_rollout_not_each_row():
    # 1, 2 and 3, 4: mean 2.5, population variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25
    got = whiten(_t([[1.0, 2.0], [3.0, 4.0]]), torch.ones(2, 2, dtype=torch.bool))
    s = math.sqrt(1.25)
    assert got.flatten().tolist() == pytest.approx([-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s], rel=1e-7)


def test_whiten_adds_1e_8_to_the_standard_deviation():
    # 0 and 1e-8: mean 5e-9, standard deviation 5e-9; (+-5e-9) / (5e-9 + 1e-8) = +-1/3
    got = whiten(_t([[0.0, 1e-8]]), torch.ones(1, 2, dtype=torch.bool))
    assert got[0].tolist() == pytest.approx([-1 / 3, 1 / 3], rel=1e-6)
    # equal advantages: 0 (up to the rounding of their mean), not 0/0
    assert whiten(_t([[0.5, 0.5, 0.5]]), torch.ones(1, 3, dtype=torch.bool)).eq(0).all()
    flat = whiten(_t([[0.7, 0.7, 0.7]]), torch.ones(1, 3, dtype=torch.bool))
    assert flat.abs().max().item() < 1e-7


# --------------------------------------------------------------------------- rewards, GAE, returns

GAMMA, LAM = 0.9, 0.8
# three scored tokens after one prompt position: per-token log-ratios to pi_ref, the critic's values
KL = [0.0, 0.1, -0.2, 0.3]
VALUES = [0.0, 0.5, 1.0, 1.5]
SCORE, KL_COEF = 2.0, 0.5
MASK = torch.tensor([[False, True, True, True]])
# rewards: -0.5 * log-ratio, plus the score on the last token: -0.05, 0.1, -0.15 + 2 = 1.85
REWARDS = [0.0, -0.05, 0.1, 1.85]
# TD errors: delta_3 = 1.85 - 1.5 = 0.35; delta_2 = 0.1 + 0.9 * 1.5 - 1.0 = 0.45;
#            delta_1 = -0.05 + 0.9 * 1.0 - 0.5 = 0.35
# advantages (gamma * lambda = 0.72): A_3 = 0.35; A_2 = 0.45 + 0.72 * 0.35 = 0.702;
#            A_1 = 0.35 + 0.72 * 0.702 = 0.85544
ADVANTAGES = [0.0, 0.85544, 0.702, 0.35]
# returns by the lambda-return recursion: G_3 = 1.85; G_2 = 0.1 + 0.9 * (0.2 * 1.5 + 0.8 * 1.85) = 1.702;
#            G_1 = -0.05 + 0.9 * (0.2 * 1.0 + 0.8 * 1.702) = 1.35544 (= A + V: 0.85544 + 0.5)
RETURNS = [0.0, 1.35544, 1.702, 1.85]


def test_kl_penalised_rewards_for_three_tokens():
    got = kl_penalised_rewards(_t([KL]), _t([SCORE]), MASK, KL_COEF)
    assert got[0].tolist() == pytest.approx(REWARDS, abs=1e-12)


def test_gae_advantages_for_three_tokens_by_hand():
    got = gae(_t([REWARDS]), _t([VALUES]), MASK, GAMMA, LAM)
    assert got[0].tolist() == pytest.approx(ADVANTAGES, abs=1e-12)
    # advantage + value is the lambda-return
    assert (got + _t([VALUES]) * MASK)[0].tolist() == pytest.approx(RETURNS, abs=1e-12)


@pytest.mark.parametrize(
    ("gamma", "lam", "expected"),
    [
        # lambda 0: one-step TD errors, 0.35, 0.45, 0.35
        (0.9, 0.0, [0.0, 0.35, 0.45, 0.35]),
        # gamma = lambda = 1: Monte Carlo, the rewards still to come minus the value:
        # 1.9 - 0.5, 1.95 - 1.0, 1.85 - 1.5
        (1.0, 1.0, [0.0, 1.4, 0.95, 0.35]),
        # gamma 0: each token's own reward minus its value: -0.55, -0.9, 0.35
        (0.0, 0.95, [0.0, -0.55, -0.9, 0.35]),
    ],
)
def test_gae_at_the_ends_of_gamma_and_lambda(gamma, lam, expected):
    got = gae(_t([REWARDS]), _t([VALUES]), MASK, gamma, lam)
    assert got[0].tolist() == pytest.approx(expected, abs=1e-12)


# --------------------------------------------------------------------------- a rollout with a non-zero critic

V = 6  # the toy vocabulary
VALUE_TABLE = [0.3, -0.2, 0.5, 1.0, 0.7]  # the critic's value at each position, plus 0.1 * the first prompt token


class KnownCritic(torch.nn.Module):
    """A policy with a critic whose values are known: ``VALUE_TABLE[t] + 0.1 * ids[:, 0]`` at position ``t``."""

    def __init__(self, lm: torch.nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids, attention_mask, position_ids=None):
        logits = self.lm(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
        table = torch.tensor(VALUE_TABLE[: input_ids.shape[1]])
        return logits, (table[None, :] + 0.1 * input_ids[:, :1].float()).float()


def _score(ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    return 1.0 + 0.5 * ids[:, -1].float()


def _token_logps(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """log p(ids[:, t + 1] | ids[:, :t + 1]) for every t: plain log-softmax and gather."""
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.double()
    return logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)


@pytest.mark.parametrize("whiten_advantages", [False, True])
def test_rollout_returns_are_advantages_plus_a_non_zero_value_head(whiten_advantages):
    beta = 0.3
    config = PPOConfig(
        kl_coef=beta,
        rollout_batch_size=4,
        minibatch_size=4,
        ppo_epochs=1,
        max_new_tokens=3,
        gamma=GAMMA,
        lam=LAM,
        whiten_advantages=whiten_advantages,
    )
    policy = tiny_gpt2(V, n_layer=1, n_embd=16, n_head=2, n_positions=16, seed=0).eval()
    reference = tiny_gpt2(V, n_layer=1, n_embd=16, n_head=2, n_positions=16, seed=1).eval()  # a different pi_ref
    prompts = torch.tensor([[1, 2], [3, 4]])
    rollouts = PPORollouts(KnownCritic(policy), reference, _score, prompts, config, seed=0)
    rollouts(0)
    buf = rollouts.buffer
    ids = buf["input_ids"]
    assert ids.shape == (4, 5) and buf["attention_mask"].eq(1).all()  # no EOS: three tokens each

    logp, ref_logp = _token_logps(policy, ids), _token_logps(reference, ids)
    all_advantages = []
    for b in range(4):
        # per-token position t (1, 2, 3) scores token t + 1; the critic's value there is the state after token t
        values = {t: VALUE_TABLE[t] + 0.1 * int(ids[b, 0]) for t in (1, 2, 3)}
        kl = {t: float(logp[b, t] - ref_logp[b, t]) for t in (1, 2, 3)}
        score = 1.0 + 0.5 * int(ids[b, 4])
        rewards = {t: -beta * kl[t] + (score if t == 3 else 0.0) for t in (1, 2, 3)}
        returns = {3: rewards[3]}
        for t in (2, 1):
            returns[t] = rewards[t] + GAMMA * ((1 - LAM) * values[t + 1] + LAM * returns[t + 1])
        advantages = {t: returns[t] - values[t] for t in (1, 2, 3)}
        all_advantages += [advantages[t] for t in (1, 2, 3)]

        assert buf["old_logps"][b, 1:].tolist() == pytest.approx([float(logp[b, t]) for t in (1, 2, 3)], abs=1e-5)
        assert buf["old_values"][b].tolist() == pytest.approx([0.0, values[1], values[2], values[3]], abs=1e-6)
        assert buf["returns"][b].tolist() == pytest.approx([0.0, returns[1], returns[2], returns[3]], abs=1e-5)
        assert buf["rollout_score"][b].item() == pytest.approx(score)
        assert buf["rollout_kl"][b].item() == pytest.approx(sum(kl.values()), abs=1e-5)
        assert buf["advantages"][b, 0].item() == 0.0  # the prompt's last position scores nothing
        if not whiten_advantages:
            assert buf["advantages"][b, 1:].tolist() == pytest.approx([advantages[t] for t in (1, 2, 3)], abs=1e-5)
    if whiten_advantages:  # over all 12 scored tokens of the rollout together
        mean = sum(all_advantages) / 12
        sd = math.sqrt(sum((a - mean) ** 2 for a in all_advantages) / 12)
        expected = [(a - mean) / sd for a in all_advantages]
        assert buf["advantages"][:, 1:].flatten().tolist() == pytest.approx(expected, abs=1e-4)


# --------------------------------------------------------------------------- the logged objective


def test_the_objective_and_diagnostics_logged_by_hand():
    """Two rows, a two-token prompt and two completion tokens, a model whose logits are uniform over 4 tokens."""
    vocab = 4
    values = _t([[0.0, 0.5, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0]])

    def model(input_ids, attention_mask, position_ids):
        return torch.zeros(*input_ids.shape, vocab, dtype=F64), values  # log p = -log 4 for every token

    ids = torch.tensor([[1, 2, 3, 0], [2, 1, 0, 3]])
    labels = ids.clone()
    labels[:, :2] = IGNORE_INDEX
    # per-token positions 1 and 2 score the completion; log-ratios to the rollout policy 0.1, -0.3 and 0.25, 0
    log_ratio = _t([[0.0, 0.1, -0.3], [0.0, 0.25, 0.0]])
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": labels,
        "old_logps": (-math.log(vocab) - log_ratio) * _t([[0, 1, 1], [0, 1, 1]]),
        "old_values": _t([[0.0, 0.4, 0.8], [0.0, 0.5, 0.0]]),
        "advantages": _t([[0.0, 1.0, -2.0], [0.0, 0.5, 3.0]]),
        "returns": _t([[0.0, 1.0, 0.0], [0.0, 2.0, -1.0]]),
        "rollout_score": _t([1.0, 3.0]),
        "rollout_kl": _t([0.5, 1.5]),
    }
    config = PPOConfig(kl_coef=0.2, clip_range=0.2, clip_range_value=0.2, vf_coef=0.5)
    loss, metrics = PPOObjective(config)(model, batch)
    # what PPO maximises, per completion: 1 - 0.2 * 0.5 = 0.9 and 3 - 0.2 * 1.5 = 2.7; mean 1.8
    assert metrics["objective"] == pytest.approx(1.8)
    assert metrics["kl"] == pytest.approx(1.0) and metrics["score"] == pytest.approx(2.0)
    # clipped surrogate, -min(rho A, clip(rho) A) per token, rho = exp(log-ratio), clip to [0.8, 1.2]:
    # rho 1.10517, A 1: -1.10517; rho 0.74082, A -2: clipped, 1.6; rho 1.28403, A 0.5: clipped, -0.6; rho 1, A 3: -3
    policy = (-math.exp(0.1) + 1.6 - 0.6 - 3.0) / 4
    assert metrics["loss/policy"] == pytest.approx(policy, abs=1e-12)
    # value: half the larger squared error of the value and of the value clipped to old +- 0.2:
    # (0.5 vs 1; clipped 0.5): 0.25; (0.5 vs 0; clipped 0.6): 0.36; (1.0 vs 2; clipped 0.7): 1.69; (0 vs -1): 1
    value = 0.5 * (0.25 + 0.36 + 1.69 + 1.0) / 4
    assert metrics["loss/value"] == pytest.approx(value, abs=1e-12)
    assert loss.item() == pytest.approx(policy + 0.5 * value, abs=1e-12)
    # two of the four ratios (0.74, 1.28) left [0.8, 1.2]
    assert metrics["policy/clipfrac"] == pytest.approx(0.5)
    # mean of half the squared log-ratio: (0.01 + 0.09 + 0.0625 + 0) / 8
    assert metrics["policy/approxkl"] == pytest.approx(0.1625 / 8, abs=1e-12)
    assert metrics["policy/entropy"] == pytest.approx(math.log(4), abs=1e-6)  # computed in float32
