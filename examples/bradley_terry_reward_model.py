"""A Bradley-Terry reward model trained on preference pairs, scored on held-out pairs.

    python examples/bradley_terry_reward_model.py            # about 1 minute on a 2-core CPU (23 s on a fast one)
    python examples/bradley_terry_reward_model.py --smoke    # the same code on tiny sizes, about 10 s (measured 8 s)

Stage 2 of the RLHF pipeline (DPO paper, arXiv 2305.18290, section 3): a scalar
reward r_phi(x, y) fitted to pairs by the Bradley-Terry loss
-log sigma(r_phi(x, y_w) - r_phi(x, y_l)). The pairs are the sentiment world's
(dpo_ref.worlds.sentiment: short generated movie reviews, a tiny SFT model's
completions, VADER as the judge), the pairs DPO trains on in the other examples;
nothing is downloaded.
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
# Here the SFT model's transformer with a linear head learns which review
# continuations VADER prefers, and is scored on pairs of prompts it never saw.

# %%
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch
from tqdm import tqdm

from dpo_ref.losses import bradley_terry_loss
from dpo_ref.scripts import prepare_run
from dpo_ref.train import RewardModel, TrainConfig, train_reward_model
from dpo_ref.worlds.sentiment import SentimentWorldConfig, build_sentiment_world


@dataclass
class Config:
    n_reviews: int = 4000  # SFT corpus of generated reviews
    n_layer: int = 2  # the SFT model, a tiny GPT-2: the reward model's backbone starts from it
    n_embd: int = 64
    sft_steps: int = 150  # SFT updates on the corpus
    n_prompts: int = 512  # review prefixes with 4 samples each: up to 6 pairs per prefix
    max_new_tokens: int = 40  # completions are cut after this many tokens
    held_out_fraction: float = 0.2  # prompts whose pairs are kept aside to measure accuracy
    steps: int = 150  # optimiser updates: about 2 passes over the training pairs (400 overfit them)
    batch_size: int = 32  # pairs per update
    learning_rate: float = 1e-3  # AdamW
    seed: int = 0  # seeds the corpus, the models, sampling and the batch order
    smoke: bool = False  # tiny sizes for tests and the site build (also DPO_REF_SMOKE=1)


SMOKE = {
    "n_reviews": 400,
    "n_layer": 1,
    "n_embd": 32,
    "sft_steps": 20,
    "n_prompts": 96,
    "max_new_tokens": 16,
    "steps": 40,
    "batch_size": 16,
}


config = prepare_run(Config, smoke=SMOKE, description=__doc__)

# %% [markdown]
# ## Preference pairs
#
# The sentiment world comes from `dpo_ref.worlds.sentiment`: a tiny GPT-2 trained on
# generated reviews (the SFT model) writes 4 completions of each review prefix, VADER
# scores each whole review, and every two completions with different scores make a
# pair, the higher one `chosen`; ties carry no preference and are dropped. The pairs
# of a fifth of the prompts are held out (a short prefix can open several prompts; all
# its pairs go to one side).

# %%
world = build_sentiment_world(
    SentimentWorldConfig(
        n_reviews=config.n_reviews,
        n_layer=config.n_layer,
        n_embd=config.n_embd,
        pretrain_steps=config.sft_steps,
        n_train_prompts=config.n_prompts,
        n_val_prompts=0,  # the reward model is scored on held-out pairs, not on samples
        n_test_prompts=0,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
    ),
    device="cpu",
)
preference = world.preference_pairs(seed=config.seed + 3)
pairs = preference.pairs
print(f"{len(pairs)} pairs from {len(world.prompts['train'])} prompts ({preference.dropped} dropped)")
print(pairs[0])

prompts = list(dict.fromkeys(pair["prompt"] for pair in pairs))  # each prompt once, in order
random.Random(config.seed).shuffle(prompts)
held_out = set(prompts[: int(len(prompts) * config.held_out_fraction)])
test_index = [i for i, pair in enumerate(pairs) if pair["prompt"] in held_out]
train_index = [i for i, pair in enumerate(pairs) if pair["prompt"] not in held_out]
train_batch = {key: rows[train_index] for key, rows in preference.tensors.items()}
test_batch = {key: rows[test_index] for key, rows in preference.tensors.items()}
test_set = [pairs[i] for i in test_index]
print(f"train {len(train_index)} pairs, held out {len(test_index)} pairs of {len(held_out)} other prompts")

# %% [markdown]
# ## The reward model
#
# A copy of the SFT model's transformer (the initialisation of the DPO paper, section
# 3) and a linear head read at the last token of the prompt plus completion. The head
# starts at zero, so every reward starts at 0 and the loss at $\ln 2$: before training
# the model prefers nothing.

# %%
reward_model = RewardModel.from_causal_lm(world.reference)  # a trainable copy of its transformer


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
shown = {}  # the first held-out pair of each of three prompts
for pair, c, r in zip(test_set, chosen.tolist(), rejected.tolist()):
    if len(shown) < 3 and pair["prompt"] not in shown:
        shown[pair["prompt"]] = (pair, c, r)
for pair, c, r in shown.values():
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
