"""Tiny models and tokenizers built locally; loading and saving without the hub."""

import copy
import os

import pytest
import torch

from dpo_ref.models import (
    EOS_TOKEN,
    PAD_TOKEN,
    load_causal_lm,
    load_tokenizer,
    save_pretrained,
    tiny_bpe_tokenizer,
    tiny_gpt2,
    toy_preference_pairs,
)


def corpus_texts(pairs):
    return [p["prompt"] + p["chosen"] for p in pairs] + [p["prompt"] + p["rejected"] for p in pairs]


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_bpe_tokenizer(corpus_texts(toy_preference_pairs(16)), vocab_size=320)


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_gpt2(
        len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ).eval()


# --------------------------------------------------------------------------- tokenizer


def test_tokenizer_special_tokens(tokenizer):
    assert tokenizer.eos_token == tokenizer.bos_token == EOS_TOKEN
    assert tokenizer.pad_token == PAD_TOKEN and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.padding_side == "right"
    assert 258 < len(tokenizer) <= 320  # bytes + specials + some merges


def test_tokenizer_round_trips_any_text_and_adds_nothing(tokenizer):
    for text in ["Review: the film was wonderful.", "unseen wörds ☃ 123\n\ttabs", " leading space"]:
        ids = tokenizer(text)["input_ids"]
        assert tokenizer.decode(ids) == text
        assert tokenizer.eos_token_id not in ids  # no special token added behind the caller's back
    # The EOS written as text is one token (TRL appends it as text).
    ids = tokenizer("the film" + EOS_TOKEN)["input_ids"]
    assert ids[-1] == tokenizer.eos_token_id and ids.count(tokenizer.eos_token_id) == 1


def test_tokenizer_learns_merges_and_is_deterministic():
    texts = corpus_texts(toy_preference_pairs(16))
    a, b = tiny_bpe_tokenizer(texts, vocab_size=300), tiny_bpe_tokenizer(texts, vocab_size=300)
    assert a.get_vocab() == b.get_vocab()
    ids = a("Review: the film")["input_ids"]
    assert len(ids) < len(b"Review: the film")  # merges compress the training text


def test_tokenizer_pads_on_the_right(tokenizer):
    batch = tokenizer(["a", "a longer text"], padding=True, return_tensors="pt")
    assert batch["input_ids"][0, -1] == tokenizer.pad_token_id
    assert batch["attention_mask"][0, 0] == 1 and batch["attention_mask"][0, -1] == 0


@pytest.mark.parametrize(
    "texts, vocab_size, match",
    [([], 300, "texts must contain"), ([""], 300, "texts must contain"), (["abc"], 257, "vocab_size must be")],
)
def test_tokenizer_argument_errors(texts, vocab_size, match):
    with pytest.raises(ValueError, match=match):
        tiny_bpe_tokenizer(texts, vocab_size=vocab_size)


# --------------------------------------------------------------------------- toy data and model


def test_toy_preference_pairs_are_deterministic_and_varied():
    pairs = toy_preference_pairs(32, seed=3)
    assert pairs == toy_preference_pairs(32, seed=3) != toy_preference_pairs(32, seed=4)
    assert all(set(p) == {"prompt", "chosen", "rejected"} for p in pairs)
    assert all(p["chosen"] != p["rejected"] and p["chosen"].startswith(" ") for p in pairs)
    assert len({len(p["chosen"]) for p in pairs}) > 3  # varied lengths exercise padding
    with pytest.raises(ValueError, match="n must be a positive int"):
        toy_preference_pairs(0)


def test_tiny_gpt2_is_seeded_and_dropout_free(model, tokenizer):
    again = tiny_gpt2(len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    for p, q in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(p, q)
    assert model.config.resid_pdrop == model.config.embd_pdrop == model.config.attn_pdrop == 0.0
    assert not torch.equal(next(tiny_gpt2(len(tokenizer), seed=1).parameters()), next(model.parameters()))


# --------------------------------------------------------------------------- save / load


def test_save_and_load_round_trip(tmp_path, model, tokenizer):
    directory = save_pretrained(model, tokenizer, tmp_path / "tiny")
    assert (directory / "model.safetensors").is_file()
    assert not list(directory.glob("*.bin"))  # no pickle checkpoints

    loaded = load_causal_lm(directory)
    loaded_tokenizer = load_tokenizer(str(directory))
    text = "Review: the book was superb." + EOS_TOKEN
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    assert torch.equal(loaded_tokenizer(text, return_tensors="pt")["input_ids"], ids)
    assert loaded_tokenizer.pad_token == PAD_TOKEN and loaded_tokenizer.eos_token == EOS_TOKEN
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=0, atol=0)
    assert next(loaded.parameters()).dtype == torch.float32


def test_load_with_dtype(tmp_path, model):
    directory = save_pretrained(model, None, tmp_path / "tiny")
    assert next(load_causal_lm(directory, dtype="bfloat16").parameters()).dtype == torch.bfloat16
    assert next(load_causal_lm(directory, dtype=torch.float64).parameters()).dtype == torch.float64
    with pytest.raises(ValueError, match="dtype must be"):
        load_causal_lm(directory, dtype="float17")


def test_load_tokenizer_sets_missing_pad_to_eos_and_warns(tmp_path, tokenizer):
    no_pad = copy.deepcopy(tokenizer)
    no_pad.pad_token = None
    no_pad.save_pretrained(tmp_path / "tok")
    with pytest.warns(UserWarning, match="no pad token; using its eos token"):
        loaded = load_tokenizer(tmp_path / "tok")
    assert loaded.pad_token == loaded.eos_token == EOS_TOKEN


@pytest.mark.parametrize("path", ["/nonexistent/dpo_ref/model", "./no_such_checkpoint", "~/no_such_checkpoint_dir"])
def test_missing_local_path_is_a_file_not_found_error_naming_it(path):
    for load in (load_causal_lm, load_tokenizer):
        with pytest.raises(FileNotFoundError, match=f"local model path '{path}' does not exist"):
            load(path)


def test_local_directory_without_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no loadable model"):
        load_causal_lm(tmp_path)
    with pytest.raises(FileNotFoundError, match="holds no loadable tokenizer"):
        load_tokenizer(tmp_path)
    (tmp_path / "weights.txt").write_text("not a model")
    with pytest.raises(FileNotFoundError, match="is a file"):
        load_causal_lm(tmp_path / "weights.txt")


def test_unreachable_hub_id_says_a_local_path_works():
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # set by conftest: no test reaches the network
    name = "dpo-ref-tests/model-that-is-not-cached"
    for load in (load_causal_lm, load_tokenizer):
        with pytest.raises(ValueError, match=r"'dpo-ref-tests/model-that-is-not-cached'.*A local directory also works"):
            load(name)
