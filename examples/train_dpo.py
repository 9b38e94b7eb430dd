"""SFT, then DPO, on the sentiment world: reward and KL before and after, and sampled reviews.

    python examples/train_dpo.py            # about 1 minute on a 2-core CPU (measured 48 s)
    python examples/train_dpo.py --smoke    # the same code on tiny sizes, about 15 s (measured 14 s)

The DPO paper's controlled-sentiment experiment (arXiv 2305.18290, section 6.1) at
laptop scale: a tiny GPT-2 is trained on generated movie reviews (the SFT model, which
is also the reference), completes review prefixes, VADER labels pairs of its
completions, and DPO trains it to write more positive reviews without drifting far
from the reference.
"""

# %% [markdown]
# # SFT, then DPO
#
# The pipeline of the paper's sentiment experiment, end to end:
#
# 1. **SFT**: a tiny GPT-2 learns to write reviews; it is $\pi_{\text{ref}}$.
# 2. **Pairs**: it writes 4 completions of each review prefix; the sentiment judge
#    (VADER) ranks them, giving up to 6 pairs per prefix.
# 3. **DPO** on those pairs, starting from $\pi_{\text{ref}}$.
# 4. **Evaluation** on held-out prefixes: the judge's mean reward, and
#    $\mathrm{KL}(\pi\,\|\,\pi_{\text{ref}})$ estimated from samples.

# %%
from __future__ import annotations

import copy
import functools
import math
import time
from dataclasses import dataclass

import datasets
from tqdm import tqdm

from dpo_ref.data import collate_pairs, tokenize_pairs
from dpo_ref.losses import dpo_loss
from dpo_ref.models import tiny_gpt2
from dpo_ref.runtime import resolve_device
from dpo_ref.scripts import prepare_run
from dpo_ref.train import (
    PairwiseObjective,
    TrainConfig,
    precompute_reference_logps,
    train_preference,
    train_sft,
)
from dpo_ref.worlds import sentiment


@dataclass
class Config:
    n_reviews: int = 4000  # SFT corpus of generated reviews
    n_layer: int = 2  # tiny GPT-2: 2 layers of width 64, about 120k parameters
    n_embd: int = 64
    sft_steps: int = 150  # SFT updates on the corpus
    sft_learning_rate: float = 3e-3
    n_train_prompts: int = 96  # prefixes that get 4 samples each: the preference data
    n_eval_prompts: int = 64  # held-out prefixes for reward and KL
    samples_per_prompt: int = 4  # the paper: 4 samples per prefix, 6 pairs
    max_new_tokens: int = 40  # completions are cut after this many tokens
    beta: float = 0.1  # the DPO paper's default; larger keeps the policy closer to the reference
    steps: int = 40  # DPO updates
    batch_size: int = 32  # pairs per update (the paper: 64)
    learning_rate: float = 3e-4  # AdamW; the paper's 1e-6 (RMSprop) is for billion-parameter models
    warmup_steps: int = 5  # linear warm-up (the paper: 150 steps of a much longer run)
    device: str = "auto"  # "auto" (CUDA if available), "cpu" or "cuda"
    seed: int = 0  # seeds the corpus, the model, sampling and the batch order
    smoke: bool = False  # tiny sizes for tests and the site build (also DPO_REF_SMOKE=1)


SMOKE = {
    "n_reviews": 400,
    "n_layer": 1,
    "n_embd": 32,
    "sft_steps": 20,
    "n_train_prompts": 16,
    "n_eval_prompts": 16,
    "max_new_tokens": 20,
    "steps": 8,
    "batch_size": 16,
    "learning_rate": 2e-3,
    "warmup_steps": 0,
}


config = prepare_run(Config, smoke=SMOKE, description=__doc__)
device = resolve_device(config.device).type  # "cpu" or "cuda"
start = time.perf_counter()


def progress_bar(total: int, desc: str):
    """A tqdm bar (hidden when output is not a terminal) and the trainer callback that advances it."""
    bar = tqdm(total=total, desc=desc, disable=None)

    def on_step(step, record):
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{record['loss']:.3f}")

    return bar, on_step


# %% [markdown]
# ## 1. SFT: a tiny GPT-2 that writes reviews
#
# Every review is one training row: all its words and the final `<eos>` are scored.

# %%
tokenizer = sentiment.build_tokenizer()
judge = sentiment.VaderJudge()
reviews = sentiment.generate_corpus(config.n_reviews, seed=config.seed)
print(reviews[0])
eos = tokenizer.eos_token_id
rows = [
    {"input_ids": ids + [eos], "attention_mask": [1] * (len(ids) + 1), "labels": ids + [eos]}
    for ids in tokenizer(reviews, add_special_tokens=False)["input_ids"]
]
sft_data = collate_pairs(rows, tokenizer.pad_token_id)  # input_ids, attention_mask, labels: (N, T)

model = tiny_gpt2(
    len(tokenizer),
    n_layer=config.n_layer,
    n_embd=config.n_embd,
    seed=config.seed,
    bos_token_id=tokenizer.bos_token_id,
    eos_token_id=eos,
    pad_token_id=tokenizer.pad_token_id,
)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters")
bar, on_step = progress_bar(config.sft_steps, "SFT")
sft = train_sft(
    model,
    sft_data,
    TrainConfig(
        steps=config.sft_steps,
        batch_size=64,
        learning_rate=config.sft_learning_rate,
        warmup_steps=config.sft_steps // 10,
        seed=config.seed,
        device=device,
    ),
    on_step=on_step,
)
bar.close()
reference = sft.model.eval().requires_grad_(False)
print(f"SFT loss {sft.history[0]['loss']:.3f} -> {sft.history[-1]['loss']:.3f} (nats per token)")

# %% [markdown]
# ## 2. Preference pairs from the model's own samples
#
# Prompts are prefixes of 2 to 8 words of reviews the model never saw. The reward of a
# completion is VADER's compound score, in $[-1, 1]$, of the whole review.

# %%
held_out = sentiment.generate_corpus(config.n_train_prompts + config.n_eval_prompts, seed=config.seed + 1)
prompts = sentiment.make_prompts(held_out, tokenizer, seed=config.seed + 2)
train_prompts, eval_prompts = prompts[: config.n_train_prompts], prompts[config.n_train_prompts :]
samples = sentiment.sample_completions(
    reference,
    train_prompts,
    num_samples=config.samples_per_prompt,
    temperature=1.0,
    max_new_tokens=config.max_new_tokens,
    eos_token_id=eos,
    seed=config.seed + 3,
)
completions = sentiment.completion_texts(tokenizer, train_prompts, samples)
rewards = judge([sentiment.join_text(train_prompts[p].text, c) for p, c in zip(samples.prompt_index, completions)])
pairs, dropped = sentiment.preference_pairs(
    train_prompts, completions, rewards, samples_per_prompt=config.samples_per_prompt
)
print(f"{len(pairs)} pairs from {len(train_prompts)} prompts ({dropped} dropped)")
print(pairs[0])

dataset = datasets.Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])
tokenized, report = tokenize_pairs(dataset, tokenizer, max_length=64)
pair_data = collate_pairs(list(tokenized), tokenizer.pad_token_id)
# The reference is frozen: score every pair once, then DPO needs only the policy in memory.
pair_data = precompute_reference_logps(reference, pair_data, device=device)

# %% [markdown]
# ## 3. DPO
#
# At step 0 the policy is the reference, so the loss is $\ln 2$ and every implicit
# reward is 0. The logged metrics carry TRL's names.

# %%
policy = copy.deepcopy(reference).requires_grad_(True)
objective = PairwiseObjective(functools.partial(dpo_loss, beta=config.beta), beta=config.beta)
bar, on_step = progress_bar(config.steps, "DPO")
dpo = train_preference(
    policy,
    objective,
    pair_data,
    TrainConfig(
        steps=config.steps,
        batch_size=min(config.batch_size, len(pairs)),
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_steps,
        seed=config.seed,
        device=device,
    ),
    on_step=on_step,
)
bar.close()
policy = dpo.model.eval()
assert abs(dpo.history[0]["loss"] - math.log(2)) < 1e-5, "step 0 must be ln 2: policy == reference"
every = max(1, config.steps // 5)
for record in [r for i, r in enumerate(dpo.history) if i % every == 0 or i == len(dpo.history) - 1]:
    print(
        f"step {record['step']:3d}  loss {record['loss']:.4f}  rewards/chosen {record['rewards/chosen']:+.3f}  "
        f"rewards/rejected {record['rewards/rejected']:+.3f}  rewards/accuracies {record['rewards/accuracies']:.2f}"
    )

# %% [markdown]
# ## 4. Reward and KL, before and after
#
# Both are estimated from samples of the policy at temperature 1 on held-out prefixes
# (the same prefixes and the same sampling seed for both models), with standard errors.
# Watch the length too: in the full run DPO's reviews grow longer (more room for
# positive words), the length exploitation that the troubleshooting page discusses.

# %%
evaluation = {}
for name, model in (("before (reference)", reference), ("after DPO", policy)):
    result = sentiment.evaluate_policy(
        model,
        reference,
        eval_prompts,
        tokenizer,
        judge,
        num_samples=2,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed + 4,
    )
    evaluation[name] = result
    print(
        f"{name:<20} reward {result['reward']['mean']:+.3f} ± {result['reward']['stderr']:.3f}   "
        f"KL {result['kl']['mean']:.3f} ± {result['kl']['stderr']:.3f} nats   "
        f"length {result['length']['mean']:.1f} tokens"
    )
gain = evaluation["after DPO"]["reward"]["mean"] - evaluation["before (reference)"]["reward"]["mean"]
print(f"reward change {gain:+.3f} at KL {evaluation['after DPO']['kl']['mean']:.3f}")

# %% [markdown]
# ## Sampled reviews
#
# The same held-out prefixes, completed by the reference and by the DPO policy
# (temperature 1, same seed).

# %%
shown = eval_prompts[:4]
for name, model in (("reference", reference), ("DPO", policy)):
    samples = sentiment.sample_completions(
        model,
        shown,
        num_samples=1,
        temperature=1.0,
        max_new_tokens=config.max_new_tokens,
        eos_token_id=eos,
        seed=config.seed + 5,
    )
    texts = [
        sentiment.join_text(p.text, c) for p, c in zip(shown, sentiment.completion_texts(tokenizer, shown, samples))
    ]
    print(f"--- {name}")
    for text, score in zip(texts, judge(texts)):
        print(f"  [{score:+.2f}] {text}")
print(f"wall time after imports {time.perf_counter() - start:.0f} s")
