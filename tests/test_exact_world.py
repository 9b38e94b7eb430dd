"""The exact world: enumeration against brute force, the closed-form optimum, the data, and
DPO/PPO landing where the theory says."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from dpo_ref.evaluate import entropy, exact_metrics, expected_value, kl_divergence
from dpo_ref.losses import dpo_loss
from dpo_ref.train import (
    PairwiseObjective,
    PPOConfig,
    TrainConfig,
    precompute_reference_logps,
    train_ppo,
    train_preference,
)
from dpo_ref.worlds.exact import ExactWorldConfig, build_exact_world

SMALL = ExactWorldConfig(
    vocab_size=4,
    response_length=3,
    n_prompts=3,
    n_embd=16,
    n_head=2,
    pretrain_samples=2000,
    pretrain_steps=80,
    pretrain_batch_size=64,
    pretrain_learning_rate=1e-2,
)


@pytest.fixture(scope="module")
def world():
    return build_exact_world(SMALL, device="cpu")


def test_sizes_and_rows_round_trip(world):
    assert world.n_responses == 4**3 and world.prompts.shape == (3, 2)
    assert len({tuple(p) for p in world.prompts.tolist()}) == 3  # distinct prompts
    p = torch.tensor([0, 2, 1])
    i = torch.tensor([0, 63, 17])
    rows = world.rows(p, i)
    assert rows["labels"][:, :2].eq(-100).all() and rows["labels"][:, 2:].equal(rows["input_ids"][:, 2:])
    got_p, got_i = world.index_of(rows["input_ids"])
    assert got_p.tolist() == p.tolist() and got_i.tolist() == i.tolist()
    assert world.true_reward_fn(rows["input_ids"]).tolist() == pytest.approx(world.true_rewards[p, i].tolist())


def test_enumerated_logps_match_a_token_by_token_product(world):
    logps = world.policy_logps(world.reference)
    assert torch.allclose(logps.exp().sum(1), torch.ones(3, dtype=torch.float64))
    model = world.reference
    for p, i in [(0, 0), (1, 37), (2, 63)]:
        ids = torch.cat([world.prompts[p], world.responses[i]])
        total = 0.0
        for t in range(2, len(ids)):  # P(token t | tokens before it)
            with torch.no_grad():
                logits = model(input_ids=ids[None, :t]).logits[0, -1]
            total += torch.log_softmax(logits.double(), -1)[ids[t]].item()
        assert logps[p, i].item() == pytest.approx(total, abs=1e-4)


def test_optimal_policy_and_its_kl_match_a_brute_force_sum(world):
    beta = 0.3
    ref, r = world.reference_logps, world.true_rewards
    kls, rewards = [], []
    for p in range(world.n_prompts):
        z = sum(math.exp(ref[p, i].item() + r[p, i].item() / beta) for i in range(world.n_responses))
        kl = reward = 0.0
        for i in range(world.n_responses):
            prob = math.exp(ref[p, i].item() + r[p, i].item() / beta) / z  # DPO paper eq. (4)
            kl += prob * (math.log(prob) - ref[p, i].item())
            reward += prob * r[p, i].item()
        kls.append(kl)
        rewards.append(reward)
        # KL(pi* || pi_ref) = E*[r]/beta - log Z, the identity behind DPO paper eq. (5)
        assert kl == pytest.approx(reward / beta - math.log(z), abs=1e-9)
    point = world.optimal_point(beta)
    assert point["kl"] == pytest.approx(sum(kls) / len(kls), abs=1e-9)
    assert point["reward"] == pytest.approx(sum(rewards) / len(rewards), abs=1e-9)


def test_optimal_policy_maximises_the_rlhf_objective(world):
    beta = 0.5
    best = world.optimal_logps(beta)

    def objective(logps):  # DPO paper eq. (3)
        return expected_value(logps, world.true_rewards) - beta * kl_divergence(logps, world.reference_logps)

    g = torch.Generator().manual_seed(0)
    for scale in (0.01, 0.1, 1.0):
        other = (best + scale * torch.randn(best.shape, generator=g, dtype=torch.float64)).log_softmax(1)
        assert objective(other) < objective(best)


def test_frontier_is_monotone_and_inverted_by_optimal_reward_at_kl(world):
    points = world.frontier([0.01, 0.1, 1.0, 10.0, 100.0])
    kls = [p["kl"] for p in points]
    rewards = [p["reward"] for p in points]
    assert kls == sorted(kls, reverse=True) and rewards == sorted(rewards, reverse=True)
    assert points[-1]["kl"] < 1e-3 and points[0]["reward"] > 0.95 * float(world.true_rewards.max(1).values.mean())
    mid = world.optimal_point(0.7)
    assert world.optimal_reward_at_kl(mid["kl"]) == pytest.approx(mid["reward"], abs=1e-6)


def test_exact_metrics_of_the_reference(world):
    m = exact_metrics(world, world.reference, beta=0.5, scores=world.true_rewards)
    assert m["kl"] == pytest.approx(0.0, abs=1e-9)
    assert m["reward"] == pytest.approx(m["score"])
    assert m["kl_to_optimum"] == pytest.approx(kl_divergence(world.reference_logps, world.optimal_logps(0.5)))
    assert 0 < entropy(world.reference_logps) < math.log(world.n_responses)


def test_preference_pairs_follow_bradley_terry_or_the_argmax(world):
    det = world.preference_pairs(500, seed=0, deterministic=True)
    r = world.true_rewards
    chosen_r, rejected_r = r[det["prompt_index"], det["chosen_index"]], r[det["prompt_index"], det["rejected_index"]]
    assert (chosen_r > rejected_r).all() and (det["chosen_index"] != det["rejected_index"]).all()

    n = 4000
    sto = world.preference_pairs(n, seed=0)
    margin = r[sto["prompt_index"], sto["chosen_index"]] - r[sto["prompt_index"], sto["rejected_index"]]
    # P(higher reward is chosen) = sigma(|margin|): compare the observed share with its expectation
    observed = (margin > 0).double().mean().item()
    expected = torch.sigmoid(margin.abs()).mean().item()
    assert observed == pytest.approx(expected, abs=3 * math.sqrt(0.25 / n))
    assert 0.5 < observed < 1.0  # stochastic: some pairs are labelled against r*
    assert world.preference_pairs(50, seed=3)["chosen_index"].equal(world.preference_pairs(50, seed=3)["chosen_index"])


def test_dpo_on_many_stochastic_pairs_lands_near_its_own_optimum(world):
    """DPO's population optimum is pi*_beta: it moves most of the way there, and to the
    optimum of its own beta rather than of a beta four times smaller or larger."""
    beta = 1.0
    pairs = precompute_reference_logps(
        world.reference, world.preference_pairs(8000, seed=1), batch_size=4096, device="cpu"
    )
    objective = PairwiseObjective(functools.partial(dpo_loss, beta=beta), beta=beta)
    config = TrainConfig(steps=300, batch_size=64, learning_rate=3e-3, device="cpu", log_every=300)
    policy = train_preference(world.new_policy(), objective, pairs, config).model
    logps = world.policy_logps(policy)
    start = kl_divergence(world.reference_logps, world.optimal_logps(beta))
    end = kl_divergence(logps, world.optimal_logps(beta))
    assert end < 0.5 * start, (start, end)
    assert end < kl_divergence(logps, world.optimal_logps(beta / 4))
    assert end < kl_divergence(logps, world.optimal_logps(beta * 4))


def test_ppo_with_the_true_reward_raises_the_exact_reward(world):
    beta = 0.5
    ppo = PPOConfig(kl_coef=beta, rollout_batch_size=32, minibatch_size=16, ppo_epochs=2, max_new_tokens=3)
    config = TrainConfig(steps=60, learning_rate=3e-3, device="cpu", log_every=60)
    result = train_ppo(
        world.new_policy(),
        world.reference,
        world.true_reward_fn,
        world.prompts,
        ppo,
        config,
        eval_fn=lambda m: exact_metrics(world, m.lm, beta=beta),
    )
    start, end = result.history[0], result.history[-1]
    assert end["eval/reward"] > start["eval/reward"] + 0.3
    assert end["eval/kl_to_optimum"] < start["eval/kl_to_optimum"]
    assert {"kl", "score", "loss/policy", "loss/value", "policy/clipfrac"} <= set(end)


def test_a_loaded_reference_is_the_trained_one(world):
    """Seeds after the first load the reference the first one trained (`reproduce --jobs N`): the same world."""
    state = {k: v.clone() for k, v in world.reference.state_dict().items()}
    loaded = build_exact_world(world.config, device="cpu", reference_state=state)
    assert torch.equal(loaded.reference_logps, world.reference_logps)
    assert not any(p.requires_grad for p in loaded.reference.parameters())


def test_enumeration_rejects_a_policy_with_other_tokens(world):
    """The exact quantities sum over the world's K tokens; a model with more would leak mass."""
    from dpo_ref.models import tiny_gpt2

    stranger = tiny_gpt2(SMALL.vocab_size + 1, n_layer=1, n_embd=16, n_head=2, n_positions=8)
    with pytest.raises(ValueError, match="vocabulary must be exactly the world's tokens"):
        world.policy_logps(stranger)
