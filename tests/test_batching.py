"""Length-grouped batch orders and the batches they serve."""

import pytest
import torch

from dpo_ref.batching import GROUP_WINDOW, OrderedBatches, TensorBatches, length_grouped_order, trim_padding
from dpo_ref.errors import UserError
from dpo_ref.logps import IGNORE_INDEX
from dpo_ref.packing import pack_shared_prompt


def test_order_is_a_permutation_with_similar_lengths_per_batch():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(5, 200, (103,), generator=g).tolist()
    order = length_grouped_order(lengths, 8, seed=1)
    assert sorted(order) == list(range(103))
    spans = [
        max(lengths[i] for i in order[k : k + 8]) - min(lengths[i] for i in order[k : k + 8]) for k in range(0, 96, 8)
    ]
    random_spans = [max(lengths[k : k + 8]) - min(lengths[k : k + 8]) for k in range(0, 96, 8)]
    assert sum(spans) < sum(random_spans) / 3
    # the 7 leftover rows are the longest and come last
    assert sorted(lengths[i] for i in order[96:]) == sorted(lengths)[96:]


def test_order_is_deterministic_and_the_seed_shuffles_batches():
    lengths = list(range(64, 0, -1))
    a, b, c = (length_grouped_order(lengths, 4, seed=s) for s in (0, 0, 1))
    assert a == b
    assert a != c
    assert {tuple(sorted(a[k : k + 4])) for k in range(0, 64, 4)} == {
        tuple(sorted(c[k : k + 4])) for k in range(0, 64, 4)
    }
    assert [lengths[i] for i in a] != sorted(lengths)  # batches are not in length order


def test_bad_batch_size():
    with pytest.raises(ValueError, match="batch_size"):
        length_grouped_order([1, 2], 0)


def padded(rows, value):
    length = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (length - len(r)) for r in rows])


def pairs():
    chosen = [[5, 6, 7], [5, 6, 7, 8, 9, 10], [5, 7], [5, 6, 7, 8]]
    rejected = [[5, 6, 9, 9], [5, 6, 3], [5, 4, 4, 4, 4, 4, 4], [5, 6, 2]]
    data = {}
    for side, rows in (("chosen", chosen), ("rejected", rejected)):
        data[f"{side}_input_ids"] = padded(rows, 0)
        data[f"{side}_attention_mask"] = padded([[1] * len(r) for r in rows], 0)
        data[f"{side}_labels"] = padded([[IGNORE_INDEX] + r[1:] for r in rows], IGNORE_INDEX)
    data["reference_chosen_logps"] = torch.arange(4.0)
    return data


def test_trim_padding_cuts_each_group_to_its_longest_row():
    batch = {k: v[[0, 2]] for k, v in pairs().items()}
    trimmed = trim_padding(batch)
    assert trimmed["chosen_input_ids"].tolist() == [[5, 6, 7], [5, 7, 0]]
    assert trimmed["rejected_input_ids"].shape == (2, 7)
    assert trimmed["reference_chosen_logps"].tolist() == [0.0, 2.0]
    packed = trim_padding({k: v[[0, 3]] for k, v in pack_shared_prompt(pairs()).items()})
    assert packed["packed_input_ids"].shape == (2, 6)  # 1 + 2 + 3 and 1 + 3 + 2


def test_ordered_batches_follow_the_order_and_wrap():
    data = pairs()
    batches = OrderedBatches(data, [2, 0, 3, 1], 2)
    assert batches(0)["reference_chosen_logps"].tolist() == [2.0, 0.0]
    assert batches(1)["reference_chosen_logps"].tolist() == [3.0, 1.0]
    assert batches(2)["reference_chosen_logps"].tolist() == [2.0, 0.0]  # second epoch, same order
    assert batches(0)["chosen_input_ids"].shape == (2, 3)


def test_ordered_batches_check_their_input():
    with pytest.raises(ValueError, match="permutation"):
        OrderedBatches(pairs(), [0, 1, 2], 2)
    with pytest.raises(ValueError, match="batch_size"):
        OrderedBatches(pairs(), [0, 1, 2, 3], 5)


def _rows_of_random_length(n: int, width: int = 20, seed: int = 0) -> dict[str, torch.Tensor]:
    lengths = torch.randint(1, width + 1, (n,), generator=torch.Generator().manual_seed(seed))
    mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
    return {"input_ids": torch.arange(n)[:, None].repeat(1, width), "attention_mask": mask}


def test_grouped_batches_pad_less_and_still_draw_every_epoch_at_random():
    data = _rows_of_random_length(200)
    batch_size, steps_per_epoch = 8, 200 // 8
    grouped = TensorBatches(data, batch_size, seed=3, group_by_length=True)
    plain = TensorBatches(data, batch_size, seed=3)
    width = {
        name: [source(s)["input_ids"].shape[1] for s in range(2 * steps_per_epoch)]
        for name, source in (("grouped", grouped), ("plain", plain))
    }
    assert sum(width["grouped"]) < 0.75 * sum(width["plain"])
    epochs = [
        [int(r) for s in range(e * steps_per_epoch, (e + 1) * steps_per_epoch) for r in grouped(s)["input_ids"][:, 0]]
        for e in range(2)
    ]
    assert all(len(rows) == len(set(rows)) == steps_per_epoch * batch_size for rows in epochs)
    assert epochs[0] != epochs[1]  # reshuffled every epoch
    again = TensorBatches(data, batch_size, seed=3, group_by_length=True)
    assert all(torch.equal(again(s)["input_ids"], grouped(s)["input_ids"]) for s in range(steps_per_epoch))


def test_grouped_batches_sort_within_windows_of_the_epoch():
    """Each batch's rows are neighbours in length within a window of GROUP_WINDOW batches: sorted, close."""
    data = _rows_of_random_length(GROUP_WINDOW * 8 * 3, seed=1)
    source = TensorBatches(data, 8, seed=0, group_by_length=True)
    lengths = data["attention_mask"].sum(1)
    for step in range(source.steps_per_epoch):
        got = lengths[source(step)["input_ids"][:, 0]]
        assert torch.equal(got, got.sort(descending=True).values)
        assert got[0] - got[-1] <= 8  # neighbours in a window of 64 lengths spread over 1..20


def test_grouping_needs_an_attention_mask():
    with pytest.raises(UserError, match="group_by_length needs \\*attention_mask columns"):
        TensorBatches({"input_ids": torch.zeros(4, 3, dtype=torch.long)}, 2, group_by_length=True)
