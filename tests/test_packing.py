"""shared_prompt_logps gives what concatenated_logps gives, with each prompt run once."""

import pytest
import torch

from dpo_ref.batching import trim_padding
from dpo_ref.logps import IGNORE_INDEX, concatenated_logps
from dpo_ref.models import tiny_gpt2
from dpo_ref.packing import (
    CHOSEN,
    PADDING,
    PROMPT,
    REJECTED,
    pack_shared_prompt,
    shared_prompt_attention_mask,
    shared_prompt_logps,
)

VOCAB = 50


def make_batch(prompt_lengths, chosen_lengths, rejected_lengths, *, seed=0, pad_id=1):
    """Right-padded pair batch with shared prompts, as tokenize_pairs + collate_pairs make it."""
    g = torch.Generator().manual_seed(seed)
    sides = {"chosen": [], "rejected": []}
    for p, c, r in zip(prompt_lengths, chosen_lengths, rejected_lengths):
        prompt = torch.randint(2, VOCAB, (p,), generator=g).tolist()
        for side, n in (("chosen", c), ("rejected", r)):
            completion = torch.randint(2, VOCAB, (n,), generator=g).tolist()
            sides[side].append((prompt + completion, [IGNORE_INDEX] * p + completion))
    batch = {}
    for side, rows in sides.items():
        length = max(len(ids) for ids, _ in rows)
        batch[f"{side}_input_ids"] = torch.tensor([ids + [pad_id] * (length - len(ids)) for ids, _ in rows])
        batch[f"{side}_labels"] = torch.tensor([lab + [IGNORE_INDEX] * (length - len(lab)) for _, lab in rows])
        batch[f"{side}_attention_mask"] = torch.tensor([[1] * len(ids) + [0] * (length - len(ids)) for ids, _ in rows])
    return batch


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = tiny_gpt2(VOCAB, n_layer=2, n_embd=32, n_head=4, n_positions=64, seed=3)
    with torch.no_grad():  # break the initialisation's symmetry so every position matters
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m.eval()


LENGTHS = ([1, 5, 9, 3, 12], [4, 1, 7, 10, 2], [6, 8, 1, 3, 11])


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_equals_concatenated_logps(model, reduction):
    batch = make_batch(*LENGTHS)
    with torch.no_grad():
        expected = concatenated_logps(model, batch, reduction=reduction)
        got = shared_prompt_logps(model, batch, reduction=reduction)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-5)


def test_gradients_equal_concatenated_logps(model):
    batch = make_batch(*LENGTHS, seed=1)
    grads = []
    for fn in (concatenated_logps, shared_prompt_logps):
        model.zero_grad()
        chosen, rejected = fn(model, batch)
        (chosen.sum() - 2 * rejected.sum()).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_packed_once_then_trimmed_batches_agree(model):
    """Packing the whole dataset once and trimming each batch gives the same values as packing per batch."""
    data = make_batch([2, 14, 3, 7], [3, 9, 1, 2], [1, 12, 5, 2], seed=2)
    packed = pack_shared_prompt(data)
    with torch.no_grad():
        for rows in ([0, 2], [1, 3], [3]):
            batch = {k: v[rows] for k, v in data.items()}
            expected = concatenated_logps(model, batch)
            got = shared_prompt_logps(model, trim_padding({k: v[rows] for k, v in packed.items()}))
            for e, g in zip(expected, got):
                torch.testing.assert_close(g, e, rtol=0, atol=1e-5)


def test_eager_attention_mask_agrees(model):
    batch = make_batch(*LENGTHS, seed=4)
    with torch.no_grad():
        expected = concatenated_logps(model, batch)
        eager = tiny_gpt2(VOCAB, n_layer=2, n_embd=32, n_head=4, n_positions=64, seed=3)
        eager.load_state_dict(model.state_dict())
        eager.config._attn_implementation = "eager"
        got = shared_prompt_logps(eager.eval(), batch)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-5)


def test_layout_of_a_packed_row():
    batch = make_batch([3], [2], [4])
    packed = pack_shared_prompt(batch)
    segments = packed["packed_segments"][0].tolist()
    assert segments == [PROMPT] * 3 + [CHOSEN] * 2 + [REJECTED] * 4
    assert packed["packed_position_ids"][0].tolist() == [0, 1, 2, 3, 4, 3, 4, 5, 6]
    # the first rejected token is scored by the last prompt token, the others by their predecessor
    assert packed["packed_sources"][0].tolist()[3:] == [2, 3, 2, 5, 6, 7]
    ids = packed["packed_input_ids"][0].tolist()
    assert ids[:5] == batch["chosen_input_ids"][0, :5].tolist()
    assert ids[5:] == batch["rejected_input_ids"][0, 3:7].tolist()

    mask = shared_prompt_attention_mask(packed["packed_segments"])[0, 0]  # (L, L)
    assert not mask[5:, 3:5].any()  # rejected never sees chosen
    assert mask[5:, :3].all()  # ... but sees the whole prompt
    assert not mask.triu(1).any()  # causal


def test_padding_keys_are_masked():
    packed = pack_shared_prompt(make_batch([2, 5], [1, 3], [1, 4]))
    assert packed["packed_segments"][0].tolist()[4:] == [PADDING] * 8
    mask = shared_prompt_attention_mask(packed["packed_segments"])
    assert not mask[0, 0, :, 4:].any()


def test_rows_that_do_not_share_a_prompt_are_rejected(model):
    batch = make_batch([3, 4], [2, 2], [2, 2])
    batch["rejected_input_ids"][1, 0] += 1  # the prompts of row 1 now differ
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        shared_prompt_logps(model, batch)
    batch = make_batch([3, 4], [2, 2], [2, 2])
    batch["rejected_labels"][0, 3] = IGNORE_INDEX  # the rejected prompt of row 0 is one token longer
    with pytest.raises(ValueError, match=r"rows \[0\]"):
        shared_prompt_logps(model, batch)


def test_unknown_reduction(model):
    with pytest.raises(ValueError, match="reduction"):
        shared_prompt_logps(model, make_batch([2], [2], [2]), reduction="max")


def test_models_that_transform_logits_use_their_own_forward(model):
    """A config with a logit transform (softcapping, scaling) takes the full forward, not the bare head."""
    from dpo_ref.packing import _plain_lm_head

    assert _plain_lm_head(model) is model.lm_head
    scaled = tiny_gpt2(VOCAB, n_layer=2, n_embd=32, n_head=4, n_positions=64, seed=3)
    scaled.load_state_dict(model.state_dict())
    scaled.config.logit_scale = 2.0  # GPT-2 ignores it, so the values must not change either
    assert _plain_lm_head(scaled) is None
    batch = make_batch(*LENGTHS, seed=5)
    with torch.no_grad():
        expected = concatenated_logps(model, batch)
        got = shared_prompt_logps(scaled.eval(), batch)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-5)


def test_trainer_with_shared_prompt_logps_trains_like_concatenated():
    """PairwiseObjective(pair_logps=shared_prompt_logps): same losses and weights, step by step."""
    import copy
    import functools

    from dpo_ref.losses import dpo_loss
    from dpo_ref.train import PairwiseObjective, TrainConfig, Trainer

    batch = make_batch([3, 5, 2, 4], [4, 2, 5, 3], [2, 5, 3, 4], seed=3)
    reference = tiny_gpt2(VOCAB, n_layer=1, n_embd=32, n_head=2, seed=0)
    results = []
    for pair_logps in (concatenated_logps, shared_prompt_logps):
        model = copy.deepcopy(reference)
        objective = PairwiseObjective(
            functools.partial(dpo_loss, beta=0.1), beta=0.1, reference=reference, pair_logps=pair_logps
        )
        config = TrainConfig(steps=4, batch_size=4, learning_rate=1e-3, log_every=1, device="cpu")
        results.append(Trainer(model, objective, lambda step: batch, config).fit())
    plain, shared = results
    for a, b in zip(plain.history, shared.history):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    for (name, p), q in zip(plain.model.named_parameters(), shared.model.parameters()):
        assert (p - q).abs().max() < 1e-5, (name, (p - q).abs().max())
