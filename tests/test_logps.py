"""Pin dpo_ref.logps against a per-token brute-force loop, and two forward passes."""

import math

import pytest
import torch

from dpo_ref.logps import IGNORE_INDEX, concatenate_pairs, concatenated_logps, sequence_logps
from dpo_ref.models import tiny_gpt2

VOCAB = 11
EOS = PAD = 10  # the pad == eos case: GPT-2 and TRL's fallback


def brute_force_logps(logits, completion_positions, input_ids, reduction="sum"):
    """Sum (or mean) over the listed positions t of log softmax(logits[t - 1])[input_ids[t]], in float64 Python.

    ``completion_positions`` is a list per row of the *input* positions that belong to
    the completion, written down by hand rather than derived from token ids.
    """
    out = []
    for row, positions in enumerate(completion_positions):
        total = 0.0
        for t in positions:
            scores = logits[row, t - 1].double().tolist()  # the logits at t - 1 predict the token at t
            log_z = math.log(sum(math.exp(s) for s in scores))
            total += scores[int(input_ids[row, t])] - log_z
        out.append(total / len(positions) if reduction == "mean" else total)
    return torch.tensor(out, dtype=torch.float64)


def labels_for(input_ids, completion_positions):
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    for row, positions in enumerate(completion_positions):
        labels[row, positions] = input_ids[row, positions]
    return labels


def random_logits(batch, length, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return 3 * torch.randn(batch, length, VOCAB, generator=gen)


def random_ids(batch, length, seed=0):
    gen = torch.Generator().manual_seed(seed + 1)
    return torch.randint(0, VOCAB - 1, (batch, length), generator=gen)  # never EOS by chance


def check(logits, input_ids, positions, reduction="sum"):
    labels = labels_for(input_ids, positions)
    got = sequence_logps(logits, labels, reduction=reduction)
    assert got.dtype == torch.float32 and got.shape == (input_ids.shape[0],)
    expected = brute_force_logps(logits, positions, input_ids, reduction)
    torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=1e-5)
    return got


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_right_padding(reduction):
    # rows: prompt 3 + completion 5; prompt 2 + completion 3 then padding; prompt 4 + completion 4
    input_ids = random_ids(3, 8)
    positions = [[3, 4, 5, 6, 7], [2, 3, 4], [4, 5, 6, 7]]
    input_ids[1, 5:] = PAD
    check(random_logits(3, 8), input_ids, positions, reduction)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_left_padding(reduction):
    # rows: 3 pads, prompt 2, completion 3; no pad, prompt 4, completion 4
    input_ids = random_ids(2, 8, seed=3)
    input_ids[0, :3] = PAD
    positions = [[5, 6, 7], [4, 5, 6, 7]]
    check(random_logits(2, 8, seed=3), input_ids, positions, reduction)


def test_eos_that_ends_the_completion_counts_when_pad_is_eos():
    # prompt 2, completion "a b EOS", then padding with the same id.
    input_ids = random_ids(2, 9, seed=5)
    input_ids[0, 4] = EOS
    input_ids[0, 5:] = PAD
    input_ids[1, 8] = EOS
    positions = [[2, 3, 4], [3, 4, 5, 6, 7, 8]]
    logits = random_logits(2, 9, seed=5)
    got = check(logits, input_ids, positions)

    # Dropping the EOS term (what masking by `input_ids != pad_id` would do) gives another number.
    without_eos = brute_force_logps(logits, [[2, 3], [3, 4, 5, 6, 7]], input_ids)
    eos_terms = got.double() - without_eos
    assert bool((eos_terms < -1e-3).all()), "the EOS log-prob must be part of the completion's log-prob"


def test_one_token_completion_counts_its_token():
    # The first (and only) completion token is scored by the logits of the last prompt token.
    input_ids = random_ids(2, 6, seed=7)
    positions = [[5], [3]]  # row 1: prompt 3 tokens, 1 completion token, then 2 pads
    input_ids[1, 4:] = PAD
    logits = random_logits(2, 6, seed=7)
    got = check(logits, input_ids, positions)
    by_hand = torch.log_softmax(logits[1, 2].double(), -1)[input_ids[1, 3]]
    assert float(got[1]) == pytest.approx(float(by_hand), abs=1e-5)
    torch.testing.assert_close(check(logits, input_ids, positions, "mean"), got)  # mean of one token


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_logits_give_float32_logps(dtype):
    logits = random_logits(2, 7, seed=9).to(dtype)
    input_ids = random_ids(2, 7, seed=9)
    positions = [[3, 4, 5, 6], [2, 3]]
    got = sequence_logps(logits, labels_for(input_ids, positions))
    expected = brute_force_logps(logits.float(), positions, input_ids)  # the same half logits, upcast
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), expected, rtol=1e-6, atol=1e-5)


def test_masks_by_label_not_by_attention():
    # Only labels decide what is scored: -100 everywhere but position 4.
    logits, input_ids = random_logits(1, 6), random_ids(1, 6)
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[0, 4] = input_ids[0, 4]
    expected = torch.log_softmax(logits[0, 3].double(), -1)[input_ids[0, 4]]
    assert float(sequence_logps(logits, labels)) == pytest.approx(float(expected), abs=1e-5)


# --------------------------------------------------------------------------- concatenated_logps


def _pair_batch(seed=0):
    """Chosen (B, 9) and rejected (B, 6), right-padded, prompt tokens labelled -100."""
    gen = torch.Generator().manual_seed(seed)
    batch = {}
    for side, length, completion_lengths in (("chosen", 9, [6, 3, 1]), ("rejected", 6, [2, 3, 1])):
        ids = torch.randint(0, VOCAB - 1, (3, length), generator=gen)
        prompt_lengths = [3, 2, 3]
        positions = [list(range(p, p + c)) for p, c in zip(prompt_lengths, completion_lengths, strict=True)]
        mask = torch.zeros_like(ids)
        for row, (p, c) in enumerate(zip(prompt_lengths, completion_lengths, strict=True)):
            ids[row, p + c - 1] = EOS  # each completion ends with EOS ...
            ids[row, p + c :] = PAD  # ... and is padded with the same id
            mask[row, : p + c] = 1
        batch[f"{side}_input_ids"] = ids
        batch[f"{side}_attention_mask"] = mask
        batch[f"{side}_labels"] = labels_for(ids, positions)
    return batch


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_concatenated_logps_equals_two_forward_passes(reduction):
    model = tiny_gpt2(VOCAB, n_layer=2, n_embd=32, n_head=2, seed=0).eval()
    batch = _pair_batch()
    chosen, rejected = concatenated_logps(model, batch, reduction=reduction)
    with torch.no_grad():
        for side, got in (("chosen", chosen), ("rejected", rejected)):
            logits = model(input_ids=batch[f"{side}_input_ids"], attention_mask=batch[f"{side}_attention_mask"]).logits
            separate = sequence_logps(logits, batch[f"{side}_labels"], reduction=reduction)
            torch.testing.assert_close(got.detach(), separate, rtol=1e-5, atol=1e-5)


def test_concatenate_pairs_stacks_chosen_over_rejected():
    batch = _pair_batch()
    input_ids, attention_mask, labels = concatenate_pairs(batch)
    assert input_ids.shape == attention_mask.shape == labels.shape == (6, 9)
    torch.testing.assert_close(input_ids[:3], batch["chosen_input_ids"])
    torch.testing.assert_close(labels[3:, :6], batch["rejected_labels"])
    assert bool((labels[3:, 6:] == IGNORE_INDEX).all()) and bool((attention_mask[3:, 6:] == 0).all())


# --------------------------------------------------------------------------- errors


def test_rows_without_completion_tokens_are_an_error_in_debug_mode():
    """Checked on every call only in torch's anomaly mode (training checks its rows once, up front)."""
    logits, input_ids = random_logits(3, 5), random_ids(3, 5)
    labels = labels_for(input_ids, [[2, 3], [], [4]])
    with (
        torch.autograd.set_detect_anomaly(True),
        pytest.raises(ValueError, match=r"rows \[1\] have no completion token"),
    ):
        sequence_logps(logits, labels)
    # A label on position 0 is never scored (nothing predicts it), so it does not count.
    labels = labels_for(input_ids, [[2], [0], [4]])
    with (
        torch.autograd.set_detect_anomaly(True),
        pytest.raises(ValueError, match=r"rows \[1\] have no completion token"),
    ):
        sequence_logps(logits, labels)
    assert sequence_logps(logits, labels)[1].item() == 0.0  # outside debug mode: no check, no host sync


@pytest.mark.parametrize(
    "logits_shape, labels_shape",
    [((2, 5, VOCAB), (2, 4)), ((2, 5, VOCAB), (3, 5)), ((2, 5), (2, 5)), ((2, 5, VOCAB), (2, 5, 1))],
)
def test_shape_mismatch_is_an_error(logits_shape, labels_shape):
    with pytest.raises(ValueError, match=r"logits must be \(B, T, V\) and labels \(B, T\)"):
        sequence_logps(torch.zeros(logits_shape), torch.zeros(labels_shape, dtype=torch.long))


def test_unknown_reduction_is_an_error():
    logits, input_ids = random_logits(1, 4), random_ids(1, 4)
    with pytest.raises(ValueError, match="reduction must be 'sum' or 'mean'"):
        sequence_logps(logits, labels_for(input_ids, [[2, 3]]), reduction="max")


def test_nan_logits_at_masked_positions_do_not_leak():
    """A fully masked position (e.g. left padding) may hold NaN logits; they must not count."""
    logits = torch.randn(1, 4, 5)
    logits[0, 0] = float("nan")  # predicts position 1, which is prompt/padding
    labels = torch.tensor([[-100, -100, 2, 3]])
    assert torch.isfinite(sequence_logps(logits, labels)).all()
