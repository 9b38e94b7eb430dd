"""A Bradley-Terry reward model trained on preference pairs, scored on held-out pairs.

    python examples/bradley_terry_reward_model.py            # about 30 s on a 2-core CPU (measured 28 s)
    python examples/bradley_terry_reward_model.py --smoke    # the same code on tiny sizes, about 10 s (measured 8 s)

Stage 2 of the RLHF pipeline (DPO paper, arXiv 2305.18290, section 3): a scalar
reward r_phi(x, y) fitted to pairs by the Bradley-Terry loss
-log sigma(r_phi(x, y_w) - r_phi(x, y_l)). The pairs come from the sentiment world
(short generated movie reviews, VADER as the judge); nothing is downloaded.
"""

# %% [markdown]
# # A Bradley-Terry reward model
#
# Bradley-Terry models the probability that $y_w$ is preferred to $y_l$ as
# $\sigma(r(x, y_w) - r(x, y_l))$ (DPO paper, equation 1). Fitting $r_\phi$ by maximum
# likelihood gives the reward-model loss (equation 2):
#
# $$\mathcal L_R = -\mathbb E\big[\log\sigma\big(r_\phi(x, y_w) - r_\phi(x, y_l)\big)\big]$$
#
# Here a tiny GPT-2 backbone with a linear head learns which review continuations
# VADER prefers, and is scored on pairs it never saw.

# %%
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import datasets
import torch
from tqdm import tqdm

from dpo_ref.data import collate_pairs, tokenize_pairs
from dpo_ref.losses import bradley_terry_loss
from dpo_ref.models import tiny_gpt2
from dpo_ref.scripts import prepare_run
from dpo_ref.train import RewardModel, TrainConfig, train_reward_model
from dpo_ref.worlds import sentiment


@dataclass
class Config:
    n_reviews: int = 4000  # generated reviews; two with the same opening words make a pair
    held_out_fraction: float = 0.2  # pairs kept aside to measure accuracy
    n_layer: int = 1  # the backbone: a tiny GPT-2 trained from scratch
    n_embd: int = 64
    steps: int = 250  # optimiser updates
    batch_size: int = 32  # pairs per update
    learning_rate: float = 1e-3  # AdamW
    seed: int = 0  # seeds the corpus, the model and the batch order
    smoke: bool = False  # tiny sizes for tests and the site build (also DPO_REF_SMOKE=1)


SMOKE = {"n_reviews": 300, "steps": 20, "batch_size": 16}


config = prepare_run(Config, smoke=SMOKE, description=__doc__)

# %% [markdown]
# ## Preference pairs
#
# Reviews that open with the same three words share a prompt, and their continuations
# are the two candidates. VADER scores both whole reviews and the higher score is
# `chosen`; ties carry no preference and are dropped.

# %%
tokenizer = sentiment.build_tokenizer()
judge = sentiment.VaderJudge()
reviews = sentiment.generate_corpus(config.n_reviews, seed=config.seed)
by_opening: dict[str, list[str]] = {}
for review in reviews:
    words = review.split()
    by_opening.setdefault(" ".join(words[:3]), []).append(" " + " ".join(words[3:]))
prompts, completions = [], []  # prompt-major: two candidate continuations per prompt
for opening, candidates in by_opening.items():
    for a, b in zip(candidates[0::2], candidates[1::2]):
        prompts.append(sentiment.Prompt(text=opening, ids=()))
        completions += [a, b]
scores = judge([sentiment.join_text(prompts[i // 2].text, c) for i, c in enumerate(completions)])
pairs, dropped = sentiment.preference_pairs(prompts, completions, scores, samples_per_prompt=2)
random.Random(config.seed).shuffle(pairs)
print(f"{len(pairs)} pairs from {len(reviews)} reviews ({dropped} dropped)")
print(pairs[0])

n_test = int(len(pairs) * config.held_out_fraction)
columns = ("prompt", "chosen", "rejected")
train_set = datasets.Dataset.from_list([{k: p[k] for k in columns} for p in pairs[n_test:]])
test_set = datasets.Dataset.from_list([{k: p[k] for k in columns} for p in pairs[:n_test]])
train_rows, _ = tokenize_pairs(train_set, tokenizer, max_length=64)
test_rows, _ = tokenize_pairs(test_set, tokenizer, max_length=64)
train_batch = collate_pairs(list(train_rows), tokenizer.pad_token_id)
test_batch = collate_pairs(list(test_rows), tokenizer.pad_token_id)
print(f"train {len(train_rows)} pairs, held out {len(test_rows)} pairs")

# %% [markdown]
# ## The reward model
#
# A transformer backbone and a linear head read at the last token of the prompt plus
# completion. The head starts at zero, so every reward starts at 0 and the loss at
# $\ln 2$: before training the model prefers nothing.

# %%
lm = tiny_gpt2(
    len(tokenizer),
    n_layer=config.n_layer,
    n_embd=config.n_embd,
    seed=config.seed,
    eos_token_id=tokenizer.eos_token_id,
    pad_token_id=tokenizer.pad_token_id,
)
reward_model = RewardModel.from_causal_lm(lm)


@torch.no_grad()
def pair_rewards(model, batch):
    model.eval()
    chosen = model(batch["chosen_input_ids"], batch["chosen_attention_mask"])
    rejected = model(batch["rejected_input_ids"], batch["rejected_attention_mask"])
    return chosen, rejected


chosen, rejected = pair_rewards(reward_model, test_batch)


def accuracy(chosen, rejected):
    """Share of pairs ordered correctly; a tie counts one half (at the start every reward is 0)."""
    return ((chosen > rejected).float() + 0.5 * (chosen == rejected).float()).mean().item()


before = {"loss": bradley_terry_loss(chosen, rejected).mean().item(), "accuracy": accuracy(chosen, rejected)}
print(
    f"before training: held-out loss {before['loss']:.4f} (ln 2 = {math.log(2):.4f}), accuracy {before['accuracy']:.3f}"
)

# %% [markdown]
# ## Training

# %%
progress = tqdm(total=config.steps, desc="reward model", disable=None)


def on_step(step, record):
    progress.update(1)
    progress.set_postfix(loss=f"{record['loss']:.3f}", acc=f"{record['rewards/accuracies']:.2f}")


train_config = TrainConfig(
    steps=config.steps, batch_size=config.batch_size, learning_rate=config.learning_rate, seed=config.seed, device="cpu"
)
result = train_reward_model(reward_model, train_batch, train_config, on_step=on_step)
progress.close()
every = max(1, config.steps // 5)
for record in [r for i, r in enumerate(result.history) if i % every == 0 or i == len(result.history) - 1]:
    print(
        f"step {record['step']:4d}  loss {record['loss']:.4f}  rewards/accuracies {record['rewards/accuracies']:.2f}  "
        f"rewards/margins {record['rewards/margins']:+.3f}"
    )

# %% [markdown]
# ## Held-out accuracy
#
# The share of unseen pairs whose chosen completion gets the higher reward.

# %%
chosen, rejected = pair_rewards(result.model, test_batch)
after = {"loss": bradley_terry_loss(chosen, rejected).mean().item(), "accuracy": accuracy(chosen, rejected)}
print(f"held-out pairs: {len(chosen)}")
print(f"held-out loss      {before['loss']:.4f} -> {after['loss']:.4f}")
print(f"held-out accuracy  {before['accuracy']:.3f} -> {after['accuracy']:.3f}")
for pair, c, r in list(zip(test_set, chosen.tolist(), rejected.tolist()))[:3]:
    print(
        f"  {pair['prompt']!r}\n    chosen   r={c:+.2f} {pair['chosen']!r}\n    rejected r={r:+.2f} {pair['rejected']!r}"
    )

# %% [markdown]
# ## Only the margin matters
#
# Adding the same constant to both rewards leaves the Bradley-Terry loss unchanged, so
# a reward model's absolute values mean nothing: only differences within a prompt do.

# %%
shifted = bradley_terry_loss(chosen + 5.0, rejected + 5.0)
torch.testing.assert_close(shifted, bradley_terry_loss(chosen, rejected))
print("loss(r_w + 5, r_l + 5) == loss(r_w, r_l): True")
