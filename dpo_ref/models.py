"""Tiny causal language models built locally (no download), and loading of real ones.

Everything the tests and the CPU examples need is built here from nothing: a byte-level
BPE tokenizer trained in a second on a few sentences, a GPT-2 with a few thousand
parameters, and a toy preference corpus. Real checkpoints load through
:func:`load_causal_lm` / :func:`load_tokenizer`, from the hub or from a local directory
written by :func:`save_pretrained`.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, pre_tokenizers, processors, trainers
from tokenizers.models import BPE
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from dpo_ref.errors import MissingFileError, UserError

__all__ = [
    "EOS_TOKEN",
    "PAD_TOKEN",
    "tiny_gpt2",
    "tiny_bpe_tokenizer",
    "toy_preference_pairs",
    "load_causal_lm",
    "load_tokenizer",
    "save_pretrained",
    "position_ids",
]

# GPT-2's convention: one token both starts and ends a document.
EOS_TOKEN = "<|endoftext|>"
# A pad token of its own (see tiny_bpe_tokenizer for why).
PAD_TOKEN = "<|pad|>"
# Byte-level BPE starts from the 256 byte symbols; the special tokens come on top.
_N_BYTES = 256


def tiny_gpt2(
    vocab_size: int,
    *,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_positions: int = 64,
    seed: int = 0,
    bos_token_id: int | None = None,
    eos_token_id: int | None = None,
    pad_token_id: int | None = None,
) -> GPT2LMHeadModel:
    """A freshly initialised GPT-2 small enough to train on a laptop CPU in seconds.

    Dropout is off: DPO compares the policy with a frozen copy of itself, and dropout
    in one but not the other makes the step-0 loss differ from ln 2.
    """
    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        # GPT-2's tanh-approximated GELU, computed by one fused kernel instead of GPT-2's
        # default chain of elementwise ops: the same function, a fifth less time per step at
        # the exact world's sizes (27 against 35 ms, measured on one CPU thread)
        activation_function="gelu_pytorch_tanh",
        bos_token_id=bos_token_id if bos_token_id is not None else vocab_size - 1,
        eos_token_id=eos_token_id if eos_token_id is not None else vocab_size - 1,
        pad_token_id=pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GPT2LMHeadModel(config)


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """``(B, T)`` positions that count attended tokens only: a left-padded row starts at 0."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


# --------------------------------------------------------------------------- tokenizer


def tiny_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (GPT-2's scheme) on ``texts``, locally and deterministically.

    Special tokens, and why:

    * ``<|endoftext|>`` is both BOS and EOS, as in GPT-2. Nothing is added automatically
      (``add_special_tokens`` adds no token): trainers such as TRL append the EOS
      themselves, and a second one would be scored as part of the completion.
    * ``<|pad|>`` is a separate pad token. With pad == eos (TRL's fallback for GPT-2) a
      padded batch cannot tell "the completion ended here" from "this is padding" by
      token id; :mod:`dpo_ref.logps` masks by label, so it is correct either way, but a
      distinct id keeps padding visible when reading a batch, and the tests exercise
      pad == eos explicitly.

    Padding is on the right, which is what :func:`dpo_ref.logps.concatenated_logps`
    and TRL's collators expect.

    Args:
        texts: training text; a few hundred characters suffice for tests.
        vocab_size: total vocabulary including the 256 byte symbols and the two
            special tokens, so at least 258. Merges stop early if the text runs out
            of pairs, so the result can be smaller.

    Returns:
        A ``PreTrainedTokenizerFast`` with ``eos_token``, ``bos_token`` and ``pad_token`` set;
        it saves and loads with ``save_pretrained`` / :func:`load_tokenizer`.
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts or not any(texts):
        raise UserError("texts must contain at least one non-empty string to train the tokenizer on")
    if not isinstance(vocab_size, int) or vocab_size < _N_BYTES + 2:
        raise UserError(f"vocab_size must be an int >= {_N_BYTES + 2} (256 bytes + eos + pad), got {vocab_size!r}")

    tokenizer = Tokenizer(BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN, PAD_TOKEN],  # ids 0 and 1
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable, even unseen ones
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=EOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        padding_side="right",
    )


# --------------------------------------------------------------------------- toy data

_TOPICS = ["the film", "the book", "the meal", "the concert", "the hotel", "the game", "the trip", "the class"]
_GOOD = ["was wonderful", "was a delight", "felt warm and kind", "was great fun", "left me happy", "was superb"]
_BAD = ["was awful", "was a bore", "felt cold and rude", "was a waste", "left me angry", "was dreadful"]
_TAILS = ["", " and I would go again", " from start to end", " in every way", " , honestly"]


def toy_preference_pairs(n: int = 16, *, seed: int = 0) -> list[dict[str, str]]:
    """A small in-memory preference corpus: ``{"prompt", "chosen", "rejected"}`` strings.

    The preference is sentiment (chosen positive, rejected negative), as in the DPO
    paper's IMDb experiment, and completion lengths vary, so padding and per-token
    averaging are exercised. Completions start with a space and carry no EOS: trainers
    add their own. The same ``seed`` gives the same pairs.
    """
    if not isinstance(n, int) or n < 1:
        raise UserError(f"n must be a positive int, got {n!r}")
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        topic = rng.choice(_TOPICS)
        pairs.append(
            {
                "prompt": f"Review: {topic}",
                "chosen": f" {rng.choice(_GOOD)}{rng.choice(_TAILS)}.",
                "rejected": f" {rng.choice(_BAD)}{rng.choice(_TAILS)}.",
            }
        )
    return pairs


# --------------------------------------------------------------------------- loading


def _resolve(name_or_path: str | os.PathLike) -> tuple[str, bool]:
    """Return ``(name, is_local)``; raise FileNotFoundError for a local path that does not exist.

    A hub id is ``name`` or ``org/name``. Anything else that does not exist on disk
    (absolute, ``./``, ``~``, deeper than one slash) is a local path that is missing,
    not a hub id, and is reported as such instead of as a confusing hub error.
    """
    raw = os.fspath(name_or_path)
    if not raw:
        raise UserError("name_or_path is empty: pass a hub id such as 'gpt2' or a local directory")
    path = Path(raw).expanduser()
    if path.exists():
        if not path.is_dir():
            raise MissingFileError(f"{raw!r} is a file; pass the directory written by save_pretrained")
        return str(path), True
    looks_local = (
        path.is_absolute()
        or raw.startswith((".", "~"))
        or raw.endswith(("/", os.sep))
        or "\\" in raw
        or raw.count("/") > 1
    )
    if looks_local:
        raise MissingFileError(f"local model path {raw!r} does not exist (resolved to {path.resolve()})")
    return raw, False


def _require_files(directory: str, what: str, names: tuple[str, ...]) -> None:
    """A local directory must hold what save_pretrained writes, else say so before transformers does."""
    if not any((Path(directory) / name).is_file() for name in names):
        raise MissingFileError(
            f"local directory {directory!r} holds no loadable {what} (none of {', '.join(names)}); "
            "pass a directory written by save_pretrained"
        )


def _hub_error(name: str, err: Exception) -> UserError:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    why = "HF_HUB_OFFLINE is set and it is not in the local cache" if offline else "the hub could not provide it"
    detail = " ".join(str(err).split())  # one line
    return UserError(
        f"could not load {name!r} as a Hugging Face hub id: {why} ({type(err).__name__}: {detail}). "
        f"A local directory also works: pass the path of a directory written by save_pretrained, "
        f"e.g. load_causal_lm('./checkpoints/{name.split('/')[-1]}')."
    )


def load_causal_lm(
    name_or_path: str | os.PathLike,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = torch.float32,
    trust_remote_code: bool = False,
) -> PreTrainedModel:
    """Load any Hugging Face causal LM by hub id (``"gpt2"``) or local directory.

    Args:
        name_or_path: a hub id, or a directory written by :func:`save_pretrained`.
        device: where to put the weights.
        dtype: ``torch.float32`` by default (CPU training and exact tests); ``"auto"``
            keeps the checkpoint's dtype; ``"bfloat16"``/``torch.bfloat16`` for GPUs.
        trust_remote_code: run model code shipped with the checkpoint. Off by default:
            it executes arbitrary Python.

    Raises:
        FileNotFoundError: a local path that does not exist (named in the message).
        ValueError: a hub id that cannot be loaded (offline and not cached, or unknown);
            the message says that a local path works.
    """
    dtype = _resolve_dtype(dtype)
    name, is_local = _resolve(name_or_path)
    if is_local:
        _require_files(name, "model", ("config.json",))
    try:
        model = AutoModelForCausalLM.from_pretrained(
            name, dtype=dtype, trust_remote_code=trust_remote_code, local_files_only=is_local
        )
    except OSError as err:
        if is_local:
            raise MissingFileError(f"{name!r} exists but holds no loadable model ({err})") from err
        raise _hub_error(name, err) from err
    return model.to(device)


def load_tokenizer(
    name_or_path: str | os.PathLike,
    *,
    trust_remote_code: bool = False,
) -> PreTrainedTokenizerBase:
    """Load the tokenizer of ``name_or_path`` (hub id or local directory), with a pad token.

    If the tokenizer has no pad token, the pad token is set to the EOS token, as TRL's
    trainers do, and a warning says so. That is safe for :mod:`dpo_ref`, which masks
    padding by label rather than by token id, so an EOS that ends a completion is still
    scored.

    Raises:
        FileNotFoundError, ValueError: as :func:`load_causal_lm`.
    """
    name, is_local = _resolve(name_or_path)
    if is_local:
        _require_files(name, "tokenizer", ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model"))
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code, local_files_only=is_local)
    except OSError as err:
        if is_local:
            raise MissingFileError(f"{name!r} exists but holds no loadable tokenizer ({err})") from err
        raise _hub_error(name, err) from err
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise UserError(f"the tokenizer of {name!r} has neither a pad nor an eos token; set tokenizer.pad_token")
        tokenizer.pad_token = tokenizer.eos_token
        warnings.warn(
            f"the tokenizer of {name!r} has no pad token; using its eos token {tokenizer.eos_token!r} "
            "as the pad token, as TRL does",
            UserWarning,
            stacklevel=2,
        )
    return tokenizer


def save_pretrained(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase | None,
    directory: str | os.PathLike,
) -> Path:
    """Write ``model`` (safetensors) and ``tokenizer`` to ``directory``; load back with :func:`load_causal_lm`."""
    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)  # transformers >= 5 always writes model.safetensors
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    return directory


def _resolve_dtype(dtype: torch.dtype | str) -> torch.dtype | str:
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    if isinstance(dtype, str) and isinstance(getattr(torch, dtype, None), torch.dtype):
        return getattr(torch, dtype)
    raise UserError(f"dtype must be a torch.dtype, a name such as 'bfloat16', or 'auto'; got {dtype!r}")
