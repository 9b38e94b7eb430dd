"""The training workloads both trainers run: model, tokenizer, pairs, batch order.

A :class:`Workload` fixes the model's size and the pairs' lengths. Two length regimes:
``short`` (prompts of about 35 tokens, completions of about 15: the headline benchmark)
and ``chat`` (prompts of about 150 tokens, completions of 100 to 250, as in public
preference datasets), which the scaling study runs at three model sizes.

Everything is built locally and deterministically. :func:`prepare` writes it to a folder
that each measured run (a fresh subprocess) reads, so both trainers get the same token
ids in the same order and neither pays for building them:

* ``pairs.jsonl``: prompt/chosen/rejected text, already in the training order (what
  TRL tokenizes itself; its tokens are checked against ours);
* ``tokenizer/``: a byte-level BPE of 512 tokens trained on the pairs;
* ``tokens.safetensors``: dpo_ref's tokenized pairs in dataset order, right-padded
  (``meta["order"]`` gives the training order);
* ``meta.json``: the settings below and the data's length statistics.

The order is :func:`dpo_ref.batching.length_grouped_order` over the pairs' token
counts: pairs of similar length share a batch, which cuts padding for *both* trainers.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

BATCH_SIZE = 16


@dataclass(frozen=True)
class Workload:
    """One benchmark's fixed settings."""

    n_pairs: int = 512  # preference pairs; 32 batches, so 50 steps wrap into a second epoch
    regime: str = "short"  # "short" or "chat": the lengths of prompts and completions (see REGIMES)
    vocab_size: int = 512  # BPE vocabulary including the byte alphabet and 2 special tokens
    n_layer: int = 4  # tiny GPT-2: 4 layers of width 128, about 0.9 M parameters
    n_embd: int = 128
    n_head: int = 4
    n_positions: int = 128  # longest packed pair is under 100 tokens
    batch_size: int = BATCH_SIZE
    beta: float = 0.1  # DPO's beta (TRL's default)
    learning_rate: float = 1e-3  # large enough for the policy to move in 50 steps (the loss leaves ln 2)
    max_grad_norm: float = 1.0  # TRL's default, also dpo_ref's
    steps: int = 50
    seed: int = 0  # the pairs, the model initialisation and the batch order


# Review-like pairs: a prompt of 0 to 6 context sentences, then a verdict that is
# positive (chosen) or negative (rejected), 1 to 4 clauses long. Prompt and completion
# lengths vary independently, as in real preference data.
_TOPICS = ["the film", "the novel", "the restaurant", "the concert", "the hotel", "the museum", "the game", "the play"]
_CONTEXT = [
    "We went on a rainy Sunday evening.",
    "My sister had recommended it for months.",
    "The tickets were cheaper than expected.",
    "It was crowded when we arrived.",
    "The staff greeted us at the door.",
    "I had read a few reviews beforehand.",
    "We stayed for almost three hours.",
    "The place was quiet and the lights were low.",
    "Parking nearby was easy to find.",
    "A friend of mine came along with me.",
    "It had been on my list for a long time.",
    "The opening took a while to get going.",
]
_GOOD = [
    "it was wonderful",
    "the acting was superb",
    "every minute felt worth it",
    "I left smiling",
    "the details were lovely",
    "I would gladly go again",
    "the ending moved me",
    "it was great fun",
]
_BAD = [
    "it was awful",
    "the acting was wooden",
    "every minute dragged on",
    "I left annoyed",
    "the details were sloppy",
    "I would never go again",
    "the ending fell flat",
    "it was a waste of time",
]


# regime -> (context sentences in the prompt, clauses in a completion), each a (low, high) range
REGIMES = {
    "short": ((0, 6), (1, 4)),  # prompts of about 35 tokens, completions of about 15
    "chat": ((11, 16), (16, 40)),  # prompts of about 150 tokens, completions of 100 to 250
}


def preference_pairs(n: int, seed: int, regime: str = "short") -> list[dict[str, str]]:
    """``n`` prompt/chosen/rejected pairs of a length regime; the same ``seed`` gives the same pairs."""
    rng = random.Random(seed)
    (context_low, context_high), (clauses_low, clauses_high) = REGIMES[regime]

    def sentences(pool: list[str], k: int) -> list[str]:  # k draws, repeating the pool when k exceeds it
        return [pool[i % len(pool)] for i in rng.sample(range(max(k, len(pool))), k)]

    def verdict(clauses: list[str]) -> str:
        return " " + ", and ".join(sentences(clauses, rng.randint(clauses_low, clauses_high))) + "."

    pairs = []
    for _ in range(n):
        context = " ".join(sentences(_CONTEXT, rng.randint(context_low, context_high)))
        prompt = f"Review of {rng.choice(_TOPICS)}. {context} Verdict:".replace(".  ", ". ")
        pairs.append({"prompt": prompt, "chosen": verdict(_GOOD), "rejected": verdict(_BAD)})
    return pairs


def build_tokenizer(pairs: list[dict[str, str]], vocab_size: int):
    from dpo_ref.models import tiny_bpe_tokenizer

    texts = [p["prompt"] + p[side] for p in pairs for side in ("chosen", "rejected")]
    return tiny_bpe_tokenizer(texts, vocab_size=vocab_size)


def build_model(workload: Workload, meta: dict):
    """The initial policy (also the reference): identical weights in every run."""
    from dpo_ref.models import tiny_gpt2

    return tiny_gpt2(
        meta["vocab_size"],
        n_layer=workload.n_layer,
        n_embd=workload.n_embd,
        n_head=workload.n_head,
        n_positions=workload.n_positions,
        seed=workload.seed,
        bos_token_id=meta["eos_token_id"],
        eos_token_id=meta["eos_token_id"],
        pad_token_id=meta["pad_token_id"],
    )


def prepare(directory: str | Path, workload: Workload = Workload()) -> dict:
    """Write the workload to ``directory`` (see the module docstring); returns ``meta``."""
    import datasets
    from safetensors.torch import save_file

    from dpo_ref.batching import length_grouped_order
    from dpo_ref.data import collate_pairs, tokenize_pairs

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pairs = preference_pairs(workload.n_pairs, workload.seed, workload.regime)
    tokenizer = build_tokenizer(pairs, workload.vocab_size)
    tokenized, report = tokenize_pairs(datasets.Dataset.from_list(pairs), tokenizer, max_length=workload.n_positions)
    if report.n_kept != len(pairs) or report.n_truncated:
        raise RuntimeError(f"the benchmark pairs must fit untruncated: {report}")
    rows = tokenized.to_list()
    prompt_lengths = [r["chosen_labels"].count(-100) for r in rows]
    pair_tokens = [len(r["chosen_input_ids"]) + len(r["rejected_input_ids"]) for r in rows]
    order = length_grouped_order(pair_tokens, workload.batch_size, seed=workload.seed)

    with open(directory / "pairs.jsonl", "w") as fh:  # TRL reads the text in training order
        for p in (pairs[i] for i in order):
            fh.write(json.dumps(p) + "\n")
    tokenizer.save_pretrained(directory / "tokenizer")
    tensors = collate_pairs(rows, tokenizer.pad_token_id)  # dataset order; `order` is applied when batching
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(directory / "tokens.safetensors"))

    n = len(rows)
    completion = [
        len(r[f"{s}_input_ids"]) - prompt_lengths[i] for i, r in enumerate(rows) for s in ("chosen", "rejected")
    ]
    meta = {
        "workload": asdict(workload),
        "vocab_size": len(tokenizer),
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "n_pairs": n,
        "mean_prompt_tokens": sum(prompt_lengths) / n,
        "mean_completion_tokens": sum(completion) / len(completion),
        "tokens_per_epoch": sum(pair_tokens),  # real tokens: prompt counted once per sequence, as TRL counts
        "order": order,
    }
    (directory / "meta.json").write_text(json.dumps(meta))
    return meta


def load(directory: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """``(meta, tokens)`` as :func:`prepare` wrote them."""
    from safetensors.torch import load_file

    directory = Path(directory)
    meta = json.loads((directory / "meta.json").read_text())
    return meta, load_file(str(directory / "tokens.safetensors"))


def step_rows(step: int, n_pairs: int, batch_size: int) -> range:
    """Rows (in the prepared order) of optimiser step ``step``: consecutive batches, wrapping per epoch."""
    per_epoch = n_pairs // batch_size
    start = (step % per_epoch) * batch_size
    return range(start, start + batch_size)
