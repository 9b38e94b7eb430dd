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

import functools
import math
import time
from dataclasses import dataclass

from tqdm import tqdm

from dpo_ref.losses import dpo_loss
from dpo_ref.runtime import resolve_device
from dpo_ref.scripts import prepare_run
from dpo_ref.train import PairwiseObjective, TrainConfig, precompute_reference_logps, train_preference
from dpo_ref.worlds.sentiment import (
    SentimentWorldConfig,
    build_sentiment_world,
    completion_texts,
    join_text,
    pretrain_reference,
    sample_completions,
)


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
# The sentiment world's recipe, `pretrain_reference` in `dpo_ref.worlds.sentiment`
# (the one the experiments use), generates the corpus and trains a tiny GPT-2 on it
# with `dpo_ref.train.train_sft`: every review is one training row, and all its words
# and the final `<eos>` are scored by next-token cross-entropy. The trained model is
# the SFT model, and the reference $\pi_{\text{ref}}$ of everything that follows.

# %%
world_config = SentimentWorldConfig(
    n_reviews=config.n_reviews,
    n_layer=config.n_layer,
    n_embd=config.n_embd,
    pretrain_steps=config.sft_steps,
    pretrain_learning_rate=config.sft_learning_rate,
    n_train_prompts=config.n_train_prompts,
    n_val_prompts=0,  # one DPO run: no setting is selected, so no validation prompts
    n_test_prompts=config.n_eval_prompts,
    samples_per_prompt=config.samples_per_prompt,
    max_new_tokens=config.max_new_tokens,
    seed=config.seed,
)
sft = pretrain_reference(world_config, device)  # {"state_dict": the SFT weights, "history": its logged losses}
world = build_sentiment_world(world_config, device=device, pretrained=sft)  # the SFT model is pi_ref
reference = world.reference
print(world.reviews[0])
print(f"{sum(p.numel() for p in reference.parameters()):,} parameters")
every = max(1, config.sft_steps // 5)
for record in [r for i, r in enumerate(sft["history"]) if i % every == 0 or i == len(sft["history"]) - 1]:
    print(f"SFT update {record['step']:3d}  loss {record['loss']:.3f} nats per token")

# %% [markdown]
# ## 2. Preference pairs from the model's own samples
#
# Prompts are prefixes of 2 to 8 words of reviews the model never saw. The SFT model
# writes `samples_per_prompt` completions of each at temperature 1, and the reward of
# a completion is VADER's compound score, in $[-1, 1]$, of the whole review; every two
# completions of a prompt with different rewards make a pair.

# %%
preference = world.preference_pairs(seed=config.seed + 3)
print(f"{len(preference.pairs)} pairs from {len(world.prompts['train'])} prompts ({preference.dropped} dropped)")
print(preference.pairs[0])
# The reference is frozen: score every pair once, then DPO needs only the policy in memory.
pair_data = precompute_reference_logps(reference, preference.tensors, device=device)

# %% [markdown]
# ## 3. DPO
#
# At step 0 the policy is the reference, so the loss is $\ln 2$ and every implicit
# reward is 0. The logged metrics carry TRL's names.

# %%
policy = world.new_policy()  # a trainable copy of pi_ref
objective = PairwiseObjective(functools.partial(dpo_loss, beta=config.beta), beta=config.beta)
bar, on_step = progress_bar(config.steps, "DPO")
dpo = train_preference(
    policy,
    objective,
    pair_data,
    TrainConfig(
        steps=config.steps,
        batch_size=min(config.batch_size, len(preference.pairs)),
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
    result = world.evaluate(model, "test", seed=config.seed + 4, num_samples=2)
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
shown = world.prompts["test"][:4]
for name, model in (("reference", reference), ("DPO", policy)):
    samples = sample_completions(
        model,
        shown,
        num_samples=1,
        temperature=1.0,
        max_new_tokens=config.max_new_tokens,
        eos_token_id=world.tokenizer.eos_token_id,
        seed=config.seed + 5,
    )
    texts = [join_text(p.text, c) for p, c in zip(shown, completion_texts(world.tokenizer, shown, samples))]
    print(f"--- {name}")
    for text, score in zip(texts, world.judge(texts)):
        print(f"  [{score:+.2f}] {text}")
print(f"wall time after imports {time.perf_counter() - start:.0f} s")
