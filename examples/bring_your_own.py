"""DPO on your own model and preference data: any Hugging Face causal LM, any pairs.

    python examples/bring_your_own.py                                   # built-in tiny model and pairs, about 10 s (measured 8 s)
    python examples/bring_your_own.py --smoke                           # fewer steps, about 10 s (measured 12 s)
    python examples/bring_your_own.py --model ./my-sft-model --dataset pairs.jsonl
    python examples/bring_your_own.py --model Qwen/Qwen2.5-0.5B-Instruct \
        --dataset trl-lib/ultrafeedback_binarized --dtype bfloat16      # hub names, where the network allows

``--model``: a hub name or a folder written by ``save_pretrained``. ``--dataset``: a hub
name, a folder written by ``save_to_disk``, or a ``.jsonl``/``.json``/``.parquet`` file,
with TRL's columns ``prompt``/``chosen``/``rejected``: plain strings (standard) or lists
of ``{"role", "content"}`` messages (conversational, rendered with the tokenizer's chat
template). Without them, a tiny GPT-2 and toy pairs are built locally. Bad input stops
with one line ``error: ...`` and exit code 2.
"""

# %% [markdown]
# # Bring your own model and data
#
# The same DPO run as the other examples, on whatever you pass. What happens to your
# data on the way, and what can go wrong:
#
# * **Loading and checking.** Every row is checked before anything is tokenized: the
#   columns exist, no text is empty, `chosen` differs from `rejected`. The first bad
#   row is named in one line.
# * **Chat templates.** Conversational rows are rendered with the tokenizer's own
#   chat template; plain-text rows are used as they are.
# * **Padding.** A tokenizer without a pad token gets its EOS token as pad, as TRL
#   does; padding is masked by label, so an EOS that ends a completion is still scored.
# * **Length.** Completions are cut to `--max-length`; a pair whose prompt alone is
#   longer is dropped, and the count is reported.

# %%
from __future__ import annotations

import copy
import functools
import math
import random
import sys
import warnings
from dataclasses import dataclass

import datasets
import torch
import transformers
from tqdm import tqdm

from dpo_ref.data import (
    collate_pairs,
    is_conversational,
    length_gap,
    load_preference_dataset,
    tokenize_pairs,
)
from dpo_ref.logps import concatenated_logps
from dpo_ref.losses import dpo_loss, preference_metrics
from dpo_ref.models import (
    load_causal_lm,
    load_tokenizer,
    save_pretrained,
    tiny_bpe_tokenizer,
    tiny_gpt2,
    toy_preference_pairs,
)
from dpo_ref.scripts import prepare_run
from dpo_ref.train import PairwiseObjective, TrainConfig, Trainer


@dataclass
class Config:
    model: str = ""  # hub name or save_pretrained folder; "" builds a tiny GPT-2 locally
    dataset: str = ""  # hub name, save_to_disk folder, .jsonl/.json/.parquet file; "" uses built-in toy pairs
    split: str = "train"  # split of a hub dataset or a DatasetDict folder
    max_length: int = 512  # tokens of prompt + completion; completions are cut to fit
    max_prompt_length: int = 0  # pairs with longer prompts are dropped; 0 means max_length
    eval_fraction: float = 0.1  # pairs held out to measure preference accuracy
    beta: float = 0.1  # DPO paper default; larger keeps the policy closer to the reference
    steps: int = 40  # optimiser updates
    batch_size: int = 8  # pairs per update
    learning_rate: float = 0.0  # 0: 1e-3 for the built-in tiny model, 5e-7 (the original DPO code's default) otherwise
    dtype: str = "float32"  # "bfloat16" halves memory on a GPU; log-softmax stays float32 in dpo_ref
    device: str = "auto"  # "auto" (CUDA if available), "cpu" or "cuda"
    output_dir: str = ""  # if set, the trained policy and tokenizer are saved there (save_pretrained)
    trust_remote_code: bool = False  # run model code shipped with a hub checkpoint; off: it executes arbitrary code
    seed: int = 0  # seeds the split, the batch order and the built-in model
    smoke: bool = False  # fewer steps for tests and the site build (also DPO_REF_SMOKE=1)


SMOKE = {"steps": 6, "batch_size": 4}


def fail(error: BaseException | str) -> None:
    """Stop with one line naming the problem, and exit code 2 (a usage error), no traceback."""
    print("error: " + " ".join(str(error).split()), file=sys.stderr)
    sys.exit(2)


def say_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Warnings raised while loading or tokenizing (a pad token set, rows dropped or cut), one line each."""
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            print("warning: " + " ".join(str(warning.message).split()))


config = prepare_run(Config, smoke=SMOKE, description=__doc__, libraries=("datasets",))
transformers.logging.disable_progress_bar()  # the per-file "Loading weights" bars
if config.max_length < 2 or config.max_prompt_length < 0 or config.steps < 1 or config.batch_size < 1:
    fail("--max-length must be >= 2, --max-prompt-length >= 0, --steps and --batch-size >= 1")
if config.beta <= 0:
    fail(f"--beta must be positive, got {config.beta}")
if not 0 <= config.eval_fraction < 1:
    fail(f"--eval-fraction must lie in [0, 1), got {config.eval_fraction}")

# %% [markdown]
# ## The data
#
# Loaded and checked row by row; the first bad row stops the run with its index and
# field.

# %%
try:
    if config.dataset:
        dataset = load_preference_dataset(config.dataset, split=config.split)
    else:
        dataset = datasets.Dataset.from_list(toy_preference_pairs(64, seed=config.seed))
except (ValueError, FileNotFoundError, ConnectionError, OSError) as error:
    fail(error)
conversational = is_conversational(dataset)
print(
    f"{len(dataset)} pairs, {'conversational' if conversational else 'standard'} format, columns {dataset.column_names}"
)
print(dataset[0])

# %% [markdown]
# ## The model and its tokenizer
#
# The reference is a frozen copy of the model you pass, which should already be
# fine-tuned on data like yours (the SFT stage): DPO starts from it and stays close.

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        if config.model:
            tokenizer = load_tokenizer(config.model, trust_remote_code=config.trust_remote_code)
            policy = load_causal_lm(config.model, dtype=config.dtype, trust_remote_code=config.trust_remote_code)
        else:
            texts = [p["prompt"] + p[k] for p in toy_preference_pairs(256, seed=1) for k in ("chosen", "rejected")]
            tokenizer = tiny_bpe_tokenizer(texts, vocab_size=320)
            policy = tiny_gpt2(
                len(tokenizer),
                eos_token_id=tokenizer.eos_token_id,
                bos_token_id=tokenizer.bos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                seed=config.seed,
                n_positions=128,
            )
    except (ValueError, FileNotFoundError, OSError) as error:
        fail(error)
say_warnings(caught)
learning_rate = config.learning_rate or (5e-7 if config.model else 1e-3)
print(
    f"model: {config.model or 'built-in tiny GPT-2'} ({sum(p.numel() for p in policy.parameters()):,} parameters, "
    f"{next(policy.parameters()).dtype}); tokenizer: pad {tokenizer.pad_token!r}, eos {tokenizer.eos_token!r}"
)

# %% [markdown]
# ## Tokenization
#
# Prompt and completion are tokenized together and the prompt positions masked;
# standard completions get the EOS token appended. Conversational rows go through the
# chat template. The report counts what was cut or dropped.

# %%
if conversational:
    print(
        "chat template: "
        + ("the tokenizer's own" if tokenizer.chat_template else "none (conversational data needs one)")
    )
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        tokenized, report = tokenize_pairs(
            dataset, tokenizer, max_length=config.max_length, max_prompt_length=config.max_prompt_length or None
        )
    except ValueError as error:
        fail(error)
say_warnings(caught)
if report.n_dropped_long_prompt or report.n_empty_after_truncation:
    prompt_limit = min(config.max_prompt_length or config.max_length, config.max_length)
    print(
        f"dropped {report.n_dropped_long_prompt + report.n_empty_after_truncation} of {report.n_examples} pairs: "
        f"{report.n_dropped_long_prompt} with a prompt longer than {prompt_limit} tokens, "
        f"{report.n_empty_after_truncation} whose prompt fills max_length={config.max_length}"
    )
print(
    f"kept {report.n_kept} of {report.n_examples} pairs; {report.n_truncated} with a completion cut to "
    f"max_length={config.max_length}"
)
gap = length_gap(dataset, tokenizer)
print(
    f"chosen answers are {gap.mean_gap:+.1f} {gap.unit} longer than rejected on average "
    f"(longer in {gap.frac_chosen_longer:.0%} of pairs): DPO can learn to exploit length"
)
pairs = list(tokenized)
random.Random(config.seed).shuffle(pairs)
n_eval = int(len(pairs) * config.eval_fraction)
eval_pairs, train_pairs = pairs[:n_eval], pairs[n_eval:]
if not train_pairs:
    fail(f"no pair left to train on: {report.n_kept} pairs kept, {n_eval} held out (lower --eval-fraction)")
print(f"{len(train_pairs)} training pairs, {len(eval_pairs)} held out")

# %% [markdown]
# ## Training
#
# Each batch is padded to its own longest row, and the batch of step $s$ depends only
# on $s$ and the seed, so an interrupted run resumes identically.


# %%
class PairBatches:
    """Batch of step ``s``: rows ``[i*B, (i+1)*B)`` of a seeded permutation for epoch ``s // steps_per_epoch``."""

    def __init__(self, rows, batch_size: int, pad_token_id: int, seed: int):
        self.rows, self.batch_size, self.pad_token_id, self.seed = rows, batch_size, pad_token_id, seed
        self.steps_per_epoch = len(rows) // batch_size

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        epoch, i = divmod(step, self.steps_per_epoch)
        order = torch.randperm(len(self.rows), generator=torch.Generator().manual_seed(self.seed * 1_000_003 + epoch))
        chosen = order[i * self.batch_size : (i + 1) * self.batch_size].tolist()
        return collate_pairs([self.rows[j] for j in chosen], self.pad_token_id)


batch_size = min(config.batch_size, len(train_pairs))
reference = copy.deepcopy(policy).eval().requires_grad_(False)
trainer = Trainer(
    policy,
    PairwiseObjective(functools.partial(dpo_loss, beta=config.beta), beta=config.beta, reference=reference),
    PairBatches(train_pairs, batch_size, tokenizer.pad_token_id, config.seed),
    TrainConfig(
        steps=config.steps, batch_size=batch_size, learning_rate=learning_rate, seed=config.seed, device=config.device
    ),
)
reference.to(trainer.device)


@torch.no_grad()
def held_out_metrics(model) -> dict[str, float]:
    """DPO loss and TRL's reward metrics on the held-out pairs."""
    if not eval_pairs:
        return {}
    model.eval()
    parts = [[], [], [], []]
    for start in range(0, len(eval_pairs), batch_size):
        batch = {
            k: v.to(trainer.device)
            for k, v in collate_pairs(eval_pairs[start : start + batch_size], tokenizer.pad_token_id).items()
        }
        for part, value in zip(parts, (*concatenated_logps(model, batch), *concatenated_logps(reference, batch))):
            part.append(value.float().cpu())
    logps = [torch.cat(p) for p in parts]
    return {"loss": dpo_loss(*logps, beta=config.beta).mean().item(), **preference_metrics(*logps, beta=config.beta)}


before = held_out_metrics(trainer.model)
bar = tqdm(total=config.steps, desc="DPO", disable=None)
trainer.on_step = lambda step, record: (bar.update(step - bar.n), bar.set_postfix(loss=f"{record['loss']:.3f}"))
result = trainer.fit()
bar.close()
every = max(1, config.steps // 5)
for record in [r for i, r in enumerate(result.history) if i % every == 0 or i == len(result.history) - 1]:
    print(
        f"step {record['step']:4d}  loss {record['loss']:.4f}  rewards/margins {record['rewards/margins']:+.4f}  "
        f"rewards/accuracies {record['rewards/accuracies']:.2f}"
    )
print(f"step 1 loss {result.history[0]['loss']:.6f} (ln 2 = {math.log(2):.6f}: the policy starts as the reference)")

# %% [markdown]
# ## Held-out pairs, before and after
#
# Before training the policy is the reference: loss $\ln 2$, every reward 0.
# Accuracy counts pairs whose chosen implicit reward is strictly higher.

# %%
after = held_out_metrics(result.model)
for name in ("loss", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"):
    if name in before:
        print(f"held-out {name:<20} {before[name]:+.4f} -> {after[name]:+.4f}")
if config.output_dir:
    path = save_pretrained(result.model, tokenizer, config.output_dir)
    print(f"saved the trained policy and tokenizer to {path}")
