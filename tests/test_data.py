"""Preference data: every file format loads, bad rows get one-line errors naming the row
and field, and tokenization masks, ends and truncates exactly as documented."""

from __future__ import annotations

import json
import math
import warnings

import datasets
import pytest
import torch
from tokenizers import Tokenizer, decoders, pre_tokenizers, trainers
from tokenizers.models import BPE
from transformers import PreTrainedTokenizerFast

from dpo_ref import data
from dpo_ref.errors import UserError
from dpo_ref.logps import IGNORE_INDEX, concatenated_logps, sequence_logps
from dpo_ref.models import tiny_gpt2

EOS = "<|endoftext|>"
PAD = "<|pad|>"
CHAT_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
CORPUS = [
    "The sky is blue.",
    "The sky is green.",
    "The sun is in the sky.",
    "What color is the sky? It is blue. It is green.",
    "Water is wet and fire is hot.",
] * 10

PAIRS = [
    {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."},
    {"prompt": "Water is", "chosen": " wet.", "rejected": " hot and the sun is in the sky."},
    {"prompt": "The sun is", "chosen": " in the sky.", "rejected": " green."},
]
CONVERSATIONS = [
    {
        "prompt": [{"role": "user", "content": "What color is the sky?"}],
        "chosen": [{"role": "assistant", "content": "It is blue."}],
        "rejected": [{"role": "assistant", "content": "It is green."}],
    },
    {
        "prompt": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Is water wet?"},
            {"role": "assistant", "content": "Yes."},
            {"role": "user", "content": "Is fire hot?"},
        ],
        "chosen": [{"role": "assistant", "content": "It is hot."}],
        "rejected": [{"role": "assistant", "content": "It is wet."}],
    },
]


def make_tokenizer(*, pad: bool = True, chat: bool = False) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained here in milliseconds; pad=False leaves it
    without a pad token (GPT-2's situation)."""
    tokenizer = Tokenizer(BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = [EOS, PAD, *CHAT_TOKENS]
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token=EOS, pad_token=PAD if pad else None, additional_special_tokens=CHAT_TOKENS
    )
    if chat:
        wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def tokens(tokenizer, ids) -> list[str]:
    return [tokenizer.decode([i]) for i in ids]


def scored(tokenizer, row, side="chosen_") -> str:
    """The text of the labelled (scored) positions of a tokenized row."""
    return tokenizer.decode([t for t in row[side + "labels"] if t != IGNORE_INDEX])


def masked(tokenizer, row, side="chosen_") -> str:
    ids, labels = row[side + "input_ids"], row[side + "labels"]
    return tokenizer.decode([i for i, t in zip(ids, labels) if t == IGNORE_INDEX])


# ---------------------------------------------------------------------------- loading


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet", "save_to_disk", "save_to_disk_dict", "folder"])
def test_each_format_loads(tmp_path, fmt):
    dataset = datasets.Dataset.from_list(PAIRS)
    if fmt == "jsonl":
        path = write_jsonl(tmp_path / "prefs.jsonl", PAIRS)
    elif fmt == "json":
        path = tmp_path / "prefs.json"
        path.write_text(json.dumps(PAIRS))
    elif fmt == "parquet":
        path = tmp_path / "prefs.parquet"
        dataset.to_parquet(str(path))
    elif fmt == "save_to_disk":
        path = tmp_path / "saved"
        dataset.save_to_disk(str(path))
    elif fmt == "save_to_disk_dict":
        path = tmp_path / "saved_dict"
        datasets.DatasetDict({"train": dataset, "test": dataset.select([0])}).save_to_disk(str(path))
    else:
        path = tmp_path / "folder"
        path.mkdir()
        write_jsonl(path / "train.jsonl", PAIRS)
    loaded = data.load_preference_dataset(path)
    assert loaded.to_list() == PAIRS
    if fmt == "save_to_disk_dict":
        assert data.load_preference_dataset(path, split="test").to_list() == PAIRS[:1]
        with pytest.raises(ValueError, match=r"has no split 'validation'; its splits are \['train', 'test'\]"):
            data.load_preference_dataset(path, split="validation")


def test_conversational_and_unpaired_files_load(tmp_path):
    loaded = data.load_preference_dataset(write_jsonl(tmp_path / "chat.jsonl", CONVERSATIONS))
    assert data.is_conversational(loaded) and data.is_paired(loaded)
    assert loaded[1]["prompt"][3] == {"role": "user", "content": "Is fire hot?"}
    unpaired = [{"prompt": "The sky is", "completion": " blue.", "label": True}]
    loaded = data.load_preference_dataset(write_jsonl(tmp_path / "kto.jsonl", unpaired))
    assert not data.is_paired(loaded) and loaded.to_list() == unpaired


def test_split_slices_a_single_file(tmp_path):
    path = write_jsonl(tmp_path / "prefs.jsonl", PAIRS)
    assert data.load_preference_dataset(path, split="train[:2]").to_list() == PAIRS[:2]


def test_missing_local_path_names_it(tmp_path):
    missing = tmp_path / "nope" / "prefs.jsonl"
    with pytest.raises(FileNotFoundError, match="nope/prefs.jsonl"):
        data.load_preference_dataset(missing)
    with pytest.raises(FileNotFoundError, match="no such preference data file or folder: ./not_here"):
        data.load_preference_dataset("./not_here")


def test_hub_name_offline_says_a_local_path_works(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConnectionError, match=r"'someone/prefs'.*A local path works offline") as error:
        data.load_preference_dataset("someone/prefs")
    assert "\n" not in str(error.value)


def test_unreadable_files_are_one_line_errors(tmp_path):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "a", "chosen": "b"\n')
    with pytest.raises(ValueError, match=r"could not read preference data from .*broken.jsonl: ") as error:
        data.load_preference_dataset(broken)
    assert "\n" not in str(error.value)
    text = tmp_path / "prefs.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"unsupported file type '.txt'"):
        data.load_preference_dataset(text)


# ------------------------------------------------------------------------- validation


def with_row(rows, i, **changes):
    rows = [dict(row) for row in rows]
    rows[i].update(changes)
    return rows


def message(role, content):
    return {"role": role, "content": content}


UNPAIRED = [
    {"prompt": "The sky is", "completion": " blue.", "label": True},
    {"prompt": "The sky is", "completion": " green.", "label": False},
]

# (id, rows, exact message). Each is a distinct way real preference data goes wrong.
MALFORMED = [
    (
        "missing column",
        [{"prompt": "a", "chosen": "b"}],
        "the dataset is missing column(s) ['rejected']: it has columns ['prompt', 'chosen'], and preference data "
        "needs ['prompt', 'chosen', 'rejected'] (pairs) or ['prompt', 'completion', 'label'] (unpaired, for KTO)",
    ),
    (
        "missing label (unpaired)",
        [{"prompt": "a", "completion": "b"}],
        "the dataset is missing column(s) ['label']: it has columns ['prompt', 'completion'], and preference data "
        "needs ['prompt', 'chosen', 'rejected'] (pairs) or ['prompt', 'completion', 'label'] (unpaired, for KTO)",
    ),
    ("empty chosen", with_row(PAIRS, 1, chosen=""), "row 1, field 'chosen': is empty or whitespace only"),
    ("whitespace prompt", with_row(PAIRS, 2, prompt=" \n\t"), "row 2, field 'prompt': is empty or whitespace only"),
    ("None rejected", with_row(PAIRS, 1, rejected=None), "row 1, field 'rejected': is missing (None)"),
    (
        "non-string text",
        [{"prompt": "a", "chosen": 5, "rejected": "c"}],
        "row 0, field 'chosen': must be a string, got int 5",
    ),
    (
        "NaN text",
        [{"prompt": "a", "chosen": math.nan, "rejected": "c"}],
        "row 0, field 'chosen': is NaN (a missing value in the source file?)",
    ),
    (
        "chosen == rejected",
        with_row(PAIRS, 2, rejected=" in the sky."),
        "row 2, field 'rejected': is identical to 'chosen', so the pair expresses no preference",
    ),
    (
        "chosen == rejected up to whitespace",
        with_row(PAIRS, 0, rejected="blue. "),
        "row 0, field 'rejected': is identical to 'chosen', so the pair expresses no preference",
    ),
    (
        "NaN in a float column",
        [dict(row, ref_chosen_logps=v) for row, v in zip(PAIRS, [-1.0, math.nan, -2.0])],
        "row 1, field 'ref_chosen_logps': is NaN",
    ),
    (
        "infinity in a float column",
        [dict(row, ref_chosen_logps=v) for row, v in zip(PAIRS, [-1.0, -2.0, -math.inf])],
        "row 2, field 'ref_chosen_logps': is -inf",
    ),
    (
        "user turn in chosen",
        with_row(CONVERSATIONS, 1, chosen=[message("user", "It is hot.")]),
        "row 1, field 'chosen[0].role': is 'user', but chosen holds only the assistant answer "
        "(earlier turns belong in the prompt)",
    ),
    (
        "no assistant turn",
        with_row(CONVERSATIONS, 0, rejected=[]),
        "row 0, field 'rejected': has no assistant turn",
    ),
    (
        "unknown role in prompt",
        with_row(CONVERSATIONS, 1, prompt=[message("human", "Is fire hot?")]),
        "row 1, field 'prompt[0].role': unknown role 'human'; expected one of ['system', 'user', 'assistant', 'tool']",
    ),
    (
        "prompt ends with the answer",
        with_row(CONVERSATIONS, 0, prompt=[message("user", "Sky?"), message("assistant", "Blue.")]),
        "row 0, field 'prompt[1].role': the prompt ends with an assistant turn; it should end with the turn the "
        "answer replies to",
    ),
    (
        "empty prompt messages",
        with_row(CONVERSATIONS, 1, prompt=[]),
        "row 1, field 'prompt': has no messages",
    ),
    (
        "empty message content",
        with_row(CONVERSATIONS, 1, rejected=[message("assistant", "  ")]),
        "row 1, field 'rejected[0].content': is empty or whitespace only",
    ),
    (
        "None message content",
        with_row(CONVERSATIONS, 0, chosen=[message("assistant", None)]),
        "row 0, field 'chosen[0].content': is missing (None)",
    ),
    (
        "string answer to a conversational prompt",
        [dict(CONVERSATIONS[0], chosen="It is blue.", rejected="It is green.")],
        "row 0, field 'chosen': must be a list of {'role', 'content'} messages like the rest of the dataset, got str",
    ),
    (
        "messages answering a string prompt",
        [dict(CONVERSATIONS[0], prompt="What color is the sky?")],
        "row 0, field 'chosen': must be a string, got a list of messages (conversational rows must be "
        "conversational in every field)",
    ),
    (
        "non-bool label",
        [dict(UNPAIRED[0], label=1)],
        "row 0, field 'label': must be True (desirable) or False (undesirable), got int 1",
    ),
    ("None label", with_row(UNPAIRED, 1, label=None), "row 1, field 'label': is missing (None)"),
    (
        "NaN label",
        [dict(UNPAIRED[0], label=math.nan)],
        "row 0, field 'label': is NaN (a missing value in the source file?)",
    ),
    (
        "empty completion",
        with_row(UNPAIRED, 1, completion=""),
        "row 1, field 'completion': is empty or whitespace only",
    ),
]


@pytest.mark.parametrize("rows, expected", [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED])
def test_malformed_rows_name_field_and_row(rows, expected):
    dataset = datasets.Dataset.from_list(rows)
    with pytest.raises(ValueError) as error:
        data.validate_preference_dataset(dataset)
    assert str(error.value) == expected
    assert "\n" not in str(error.value)


def test_malformed_file_fails_at_load_with_a_short_traceback(tmp_path):
    path = write_jsonl(tmp_path / "prefs.jsonl", with_row(PAIRS, 2, chosen="   "))
    with pytest.raises(ValueError, match=r"^row 2, field 'chosen': is empty or whitespace only$") as error:
        data.load_preference_dataset(path)
    # Raised by the validator itself, a couple of frames below the caller, not deep in `datasets`.
    assert len(error.traceback) <= 3


def test_empty_dataset_is_an_error():
    with pytest.raises(ValueError, match="has no rows"):
        data.validate_preference_dataset(datasets.Dataset.from_list(PAIRS).select([]))


def test_unpair_alternates_chosen_and_rejected():
    dataset = datasets.Dataset.from_list([dict(row, source=i) for i, row in enumerate(PAIRS)])
    unpaired = data.unpair_preference_dataset(dataset)
    assert unpaired.column_names == ["prompt", "completion", "label", "source"]
    assert unpaired[0] == {"prompt": "The sky is", "completion": " blue.", "label": True, "source": 0}
    assert unpaired[1] == {"prompt": "The sky is", "completion": " green.", "label": False, "source": 0}
    assert unpaired["label"] == [True, False] * 3
    data.validate_preference_dataset(unpaired)
    conversational = data.unpair_preference_dataset(datasets.Dataset.from_list(CONVERSATIONS))
    assert conversational[3]["completion"] == [message("assistant", "It is wet.")]


def test_length_gap():
    gap = data.length_gap(datasets.Dataset.from_list(PAIRS))
    # chars: chosen 6, 5, 12; rejected 7, 31, 7
    assert gap.unit == "characters" and gap.n_pairs == 3
    assert gap.mean_chosen == pytest.approx(23 / 3) and gap.mean_rejected == pytest.approx(45 / 3)
    assert gap.mean_gap == pytest.approx(-22 / 3) and gap.frac_chosen_longer == pytest.approx(1 / 3)
    assert data.length_gap(datasets.Dataset.from_list(PAIRS), make_tokenizer()).unit == "tokens"


# ----------------------------------------------------------------------- tokenization


@pytest.mark.parametrize("pad", [True, False], ids=["pad token", "pad == eos"])
def test_labels_mask_exactly_the_prompt(pad):
    tokenizer = make_tokenizer(pad=pad)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tokenized, report = data.tokenize_pairs(datasets.Dataset.from_list(PAIRS), tokenizer, max_length=64)
    # Clean data warns about nothing, except the pad token it had to set.
    assert [str(w.message).startswith("the tokenizer has no pad token") for w in caught] == ([] if pad else [True])
    assert report == data.TokenizationReport(3, 3, 0, 0, 0, 0, ())
    for row, pair in zip(tokenized, PAIRS):
        for side in ("chosen", "rejected"):
            assert masked(tokenizer, row, side + "_") == pair["prompt"]
            assert scored(tokenizer, row, side + "_") == pair[side] + EOS
            assert row[side + "_attention_mask"] == [1] * len(row[side + "_input_ids"])
    # The first completion token is scored; the last prompt token is not.
    first = tokenized[0]
    n_prompt = len(tokenizer("The sky is")["input_ids"])
    assert tokens(tokenizer, first["chosen_input_ids"])[n_prompt - 1 : n_prompt + 1] == [" is", " blue"]
    assert first["chosen_labels"][n_prompt - 1] == IGNORE_INDEX
    assert first["chosen_labels"][n_prompt] == first["chosen_input_ids"][n_prompt]


def test_no_pad_token_becomes_eos_with_a_warning():
    tokenizer = make_tokenizer(pad=False)
    with pytest.warns(UserWarning, match=r"no pad token; using its EOS token '<\|endoftext\|>' .* as TRL does"):
        data.tokenize_pairs(datasets.Dataset.from_list(PAIRS), tokenizer, max_length=64)
    assert tokenizer.pad_token == EOS and tokenizer.pad_token_id == tokenizer.eos_token_id


def test_tokenizer_without_pad_or_eos_is_an_error():
    tokenizer = make_tokenizer(pad=False)
    tokenizer.eos_token = None
    with pytest.raises(ValueError, match="neither a pad token nor an EOS token"):
        data.tokenize_pairs(datasets.Dataset.from_list(PAIRS), tokenizer, max_length=64)


def test_eos_is_scored_when_pad_is_eos():
    """The classic bug: masking by `input_ids != pad_token_id` also masks the EOS that ends
    each completion. Here labels and logps must still count it."""
    tokenizer = make_tokenizer(pad=False)
    with pytest.warns(UserWarning, match="no pad token"):
        tokenized, _ = data.tokenize_pairs(datasets.Dataset.from_list(PAIRS), tokenizer, max_length=64)
    eos = tokenizer.eos_token_id
    batch = data.collate_pairs(list(tokenized), tokenizer.pad_token_id)
    assert tokenizer.pad_token_id == eos
    for side in ("chosen_", "rejected_"):
        ids, labels, attention = batch[side + "input_ids"], batch[side + "labels"], batch[side + "attention_mask"]
        lengths = attention.sum(dim=1)  # (B,)
        for b, n in enumerate(lengths.tolist()):
            assert labels[b, n - 1] == eos  # the completion's EOS is a label
            assert (labels[b, n:] == IGNORE_INDEX).all() and (ids[b, n:] == eos).all()  # padding: id eos, masked
    # End to end: the sequence log-prob includes the EOS term.
    model = tiny_gpt2(len(tokenizer), eos_token_id=eos, pad_token_id=eos)
    chosen_logps, _ = concatenated_logps(model, batch)
    with torch.no_grad():
        logits = model(input_ids=batch["chosen_input_ids"], attention_mask=batch["chosen_attention_mask"]).logits
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    for b, row in enumerate(tokenized):
        ids, labels = row["chosen_input_ids"], row["chosen_labels"]
        expected = sum(logprobs[b, t - 1, ids[t]] for t in range(1, len(ids)) if labels[t] != IGNORE_INDEX)
        assert chosen_logps[b].item() == pytest.approx(expected.item(), abs=1e-5)
        eos_term = logprobs[b, len(ids) - 2, eos]
        n = len(ids) - 1  # drop the EOS position
        without_eos = sequence_logps(logits[b : b + 1, :n], batch["chosen_labels"][b : b + 1, :n])
        assert chosen_logps[b].item() == pytest.approx((without_eos + eos_term).item(), abs=1e-5)


def test_eos_is_not_doubled():
    tokenizer = make_tokenizer()
    dataset = datasets.Dataset.from_list([{"prompt": "The sky is", "chosen": " blue." + EOS, "rejected": " green."}])
    tokenized, _ = data.tokenize_pairs(dataset, tokenizer, max_length=64)
    assert scored(tokenizer, tokenized[0]) == " blue." + EOS
    assert scored(tokenizer, tokenized[0], "rejected_") == " green." + EOS


def test_truncation_counts():
    tokenizer = make_tokenizer()
    max_length = 8
    long_prompt = "The sun is in the sky. " * 4  # far over 8 tokens
    exact_prompt = "Water is wet and fire is hot."
    assert len(tokenizer(exact_prompt)["input_ids"]) == max_length
    rows = [
        PAIRS[0],  # fits
        {"prompt": long_prompt, "chosen": " blue.", "rejected": " green."},  # dropped: long prompt
        {"prompt": "The sky is", "chosen": " blue. The sky is blue. The sky is blue.", "rejected": " green."},  # cut
        {"prompt": exact_prompt, "chosen": " blue.", "rejected": " green."},  # nothing left to score
        {"prompt": "Water is", "chosen": " wet.", "rejected": " hot and the sun is in the sky and green."},  # cut
    ]
    with pytest.warns(UserWarning) as record:
        tokenized, report = data.tokenize_pairs(datasets.Dataset.from_list(rows), tokenizer, max_length=max_length)
    assert report == data.TokenizationReport(
        n_examples=5,
        n_kept=3,
        n_dropped_long_prompt=1,
        n_empty_after_truncation=1,
        n_truncated=2,
        n_boundary_mismatch=0,
        dropped_rows=(1, 3),
    )
    message = str(record[-1].message)
    assert "dropped 1 row(s) whose prompt is longer than 8 tokens" in message
    assert (
        "dropped 1 row(s) whose completion was truncated to nothing (the prompt fills max_length=8) (rows 1, 3)"
    ) in message
    assert "truncated the completion(s) of 2 row(s) to fit max_length=8" in message
    assert len(tokenized) == 3
    assert all(len(ids) <= max_length for side in ("chosen_", "rejected_") for ids in tokenized[side + "input_ids"])
    cut = tokenized[1]  # input row 2: chosen cut to 8 tokens, loses its EOS; rejected intact
    assert len(cut["chosen_input_ids"]) == max_length and cut["chosen_labels"][-1] != tokenizer.eos_token_id
    assert scored(tokenizer, cut, "rejected_") == " green." + EOS


def test_max_prompt_length_drops_and_all_dropped_is_an_error():
    tokenizer = make_tokenizer()
    dataset = datasets.Dataset.from_list(PAIRS)  # prompts of 3, 2 and 3 tokens
    with pytest.warns(UserWarning, match=r"dropped 2 row\(s\) whose prompt is longer than 2 tokens \(rows 0, 2\)"):
        _, report = data.tokenize_pairs(dataset, tokenizer, max_length=64, max_prompt_length=2)
    assert (report.n_kept, report.n_dropped_long_prompt, report.dropped_rows) == (1, 2, (0, 2))
    with pytest.raises(ValueError, match=r"no row left after tokenization: all 3 prompts fill max_length=2"):
        data.tokenize_pairs(dataset, tokenizer, max_length=2)
    with pytest.raises(ValueError, match="max_length must be an integer >= 2, got 0"):
        data.tokenize_pairs(dataset, tokenizer, max_length=0)


def test_merge_across_the_boundary_is_counted_and_scored_as_completion():
    tokenizer = make_tokenizer()
    # "is " + "blue" tokenizes jointly as " is", " blue": the prompt's trailing space
    # token is not a prefix of the joint tokens.
    dataset = datasets.Dataset.from_list([{"prompt": "The sky is ", "chosen": "blue.", "rejected": "green."}])
    with pytest.warns(UserWarning, match=r"in 1 row\(s\) a token merges across the prompt/completion boundary"):
        tokenized, report = data.tokenize_pairs(dataset, tokenizer, max_length=64)
    assert report.n_boundary_mismatch == 1
    row = tokenized[0]
    assert masked(tokenizer, row) == "The sky is"
    assert scored(tokenizer, row) == " blue." + EOS  # the merged token is completion
    assert tokenizer.decode(row["chosen_input_ids"]) == "The sky is blue." + EOS  # the text is intact


def test_conversational_rows_use_the_chat_template():
    tokenizer = make_tokenizer(chat=True)
    tokenized, report = data.tokenize_pairs(datasets.Dataset.from_list(CONVERSATIONS), tokenizer, max_length=128)
    assert report.n_kept == 2 and report.n_boundary_mismatch == 0
    first, second = tokenized
    assert masked(tokenizer, first) == "<|user|>What color is the sky?<|end|><|assistant|>"
    assert scored(tokenizer, first) == "It is blue.<|end|>"  # the template ends the turn; no EOS added
    assert scored(tokenizer, first, "rejected_") == "It is green.<|end|>"
    assert masked(tokenizer, second) == (
        "<|system|>Be brief.<|end|><|user|>Is water wet?<|end|><|assistant|>Yes.<|end|>"
        "<|user|>Is fire hot?<|end|><|assistant|>"
    )
    assert scored(tokenizer, second) == "It is hot.<|end|>"


def test_chat_template_argument_and_its_errors():
    dataset = datasets.Dataset.from_list(CONVERSATIONS)
    tokenizer = make_tokenizer()  # no chat template of its own
    with pytest.raises(ValueError, match="conversational but the tokenizer has no chat template"):
        data.tokenize_pairs(dataset, tokenizer, max_length=128)
    tokenized, _ = data.tokenize_pairs(dataset, tokenizer, max_length=128, chat_template=CHAT_TEMPLATE)
    assert scored(tokenizer, tokenized[0]) == "It is blue.<|end|>"
    with pytest.raises(ValueError, match="chat_template applies to conversational data"):
        data.tokenize_pairs(datasets.Dataset.from_list(PAIRS), tokenizer, max_length=64, chat_template=CHAT_TEMPLATE)


def test_collate_pairs_right_pads():
    tokenizer = make_tokenizer()
    tokenized, _ = data.tokenize_pairs(datasets.Dataset.from_list(PAIRS), tokenizer, max_length=64)
    examples = [dict(row, ref_chosen_logps=-1.5 * i) for i, row in enumerate(tokenized)]
    batch = data.collate_pairs(examples, tokenizer.pad_token_id)
    pad = tokenizer.pad_token_id
    for side in ("chosen_", "rejected_"):
        lengths = [len(row[side + "input_ids"]) for row in tokenized]
        assert batch[side + "input_ids"].shape == (3, max(lengths))
        for b, n in enumerate(lengths):
            assert batch[side + "input_ids"][b, :n].tolist() == tokenized[b][side + "input_ids"]
            assert batch[side + "labels"][b, :n].tolist() == tokenized[b][side + "labels"]
            assert (batch[side + "input_ids"][b, n:] == pad).all()
            assert (batch[side + "labels"][b, n:] == IGNORE_INDEX).all()
            assert batch[side + "attention_mask"][b].tolist() == [1] * n + [0] * (max(lengths) - n)
    assert batch["ref_chosen_logps"].tolist() == [0.0, -1.5, -3.0]
    model = tiny_gpt2(len(tokenizer))
    chosen_logps, rejected_logps = concatenated_logps(model, batch)
    assert chosen_logps.shape == rejected_logps.shape == (3,)


def test_unpaired_tokenize_and_collate():
    tokenizer = make_tokenizer()
    unpaired = data.unpair_preference_dataset(datasets.Dataset.from_list(PAIRS))
    tokenized, report = data.tokenize_unpaired(unpaired, tokenizer, max_length=64)
    assert report.n_kept == 6
    assert tokenized.column_names == ["input_ids", "attention_mask", "labels", "label"]
    assert scored(tokenizer, tokenized[1], "") == " green." + EOS
    batch = data.collate_pairs(list(tokenized), tokenizer.pad_token_id)
    assert set(batch) == {"input_ids", "attention_mask", "labels", "label"}
    assert batch["label"].dtype == torch.bool and batch["label"].tolist() == [True, False] * 3
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    with pytest.raises(ValueError, match="use tokenize_pairs, or unpair_preference_dataset first"):
        data.tokenize_unpaired(datasets.Dataset.from_list(PAIRS), tokenizer, max_length=64)


def test_collate_errors():
    with pytest.raises(ValueError, match="got no examples"):
        data.collate_pairs([], 0)
    with pytest.raises(ValueError, match="pad_token_id is None; call ensure_pad_token"):
        data.collate_pairs([{"input_ids": [1], "attention_mask": [1], "labels": [1]}], None)
    with pytest.raises(ValueError, match=r"needs tokenized rows .* got keys \['prompt'\]"):
        data.collate_pairs([{"prompt": "a"}], 0)


@pytest.mark.parametrize("content", ["", "\n\n"], ids=["empty", "blank lines"])
def test_an_empty_data_file_says_it_is_empty(tmp_path, content):
    path = tmp_path / "pairs.jsonl"
    path.write_text(content)
    with pytest.raises(UserError, match=r"pairs\.jsonl is empty: a preference data file needs at least one row"):
        data.load_preference_dataset(path)
