"""RLHF (reward model + PPO) against DPO on the same pairs: reward, KL, wall time, memory.

    python examples/rlhf_vs_dpo.py            # about 1.5 minutes on a 2-core CPU (measured 90 s)
    python examples/rlhf_vs_dpo.py --smoke    # the same code on tiny sizes, about 20 s (measured 16 s)

Both start from the same SFT model and the same preference pairs of the sentiment
world. RLHF fits a Bradley-Terry reward model to the pairs, then runs PPO against it
with a per-token KL penalty (DPO paper, arXiv 2305.18290, eq. 3); DPO trains the
policy on the pairs directly. Each is scored by the ground-truth judge (VADER) on
held-out prefixes.
"""

# %% [markdown]
# # RLHF against DPO
#
# RLHF optimises $\max_\pi \mathbb E[r_\phi(x, y)] - \beta\,\mathrm{KL}[\pi\,\|\,\pi_{\text{ref}}]$
# in two training runs: a reward model $r_\phi$, then PPO, which samples from the
# policy while it trains and holds the policy (with a value head), the reference and
# the reward model in memory. DPO reaches the same objective's optimum in one run
# of supervised-style training, holding only the policy (the reference's log-probs
# are computed once). This script measures what that difference costs here.

# %%
from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass

import psutil
import torch
from tqdm import tqdm

from dpo_ref.losses import dpo_loss
from dpo_ref.runtime import resolve_device
from dpo_ref.scripts import prepare_run
from dpo_ref.train import (
    PairwiseObjective,
    PPOConfig,
    RewardModel,
    TrainConfig,
    precompute_reference_logps,
    train_ppo,
    train_preference,
    train_reward_model,
)
from dpo_ref.worlds.sentiment import (
    SentimentWorldConfig,
    build_sentiment_world,
    left_padded_prompts,
    right_aligned,
)


@dataclass
class Config:
    n_reviews: int = 4000  # SFT corpus of generated reviews
    n_layer: int = 2  # tiny GPT-2, about 120k parameters
    n_embd: int = 64
    sft_steps: int = 150  # SFT updates on the corpus
    n_train_prompts: int = 96  # prefixes with 4 samples each: the preference data (and PPO's prompts)
    n_eval_prompts: int = 64  # held-out prefixes for reward and KL
    max_new_tokens: int = 40  # completions are cut after this many tokens
    beta: float = 0.1  # DPO's beta, and PPO's per-token KL coefficient: the same RLHF objective
    dpo_steps: int = 40  # DPO updates
    batch_size: int = 32  # pairs per DPO and reward-model update
    learning_rate: float = 3e-4  # AdamW, for DPO and PPO
    reward_model_steps: int = 100  # Bradley-Terry updates on the same pairs
    reward_model_learning_rate: float = 1e-3
    ppo_steps: int = 40  # PPO minibatch updates (4 per rollout below)
    rollout_batch_size: int = 32  # completions sampled per PPO rollout
    minibatch_size: int = 16  # rows per PPO update
    ppo_epochs: int = 2  # passes over each rollout
    device: str = "auto"  # "auto" (CUDA if available), "cpu" or "cuda"
    seed: int = 0  # seeds the corpus, the models, sampling and batch order
    smoke: bool = False  # tiny sizes for tests and the site build (also DPO_REF_SMOKE=1)


SMOKE = {
    "n_reviews": 400,
    "n_layer": 1,
    "n_embd": 32,
    "sft_steps": 20,
    "n_train_prompts": 12,
    "n_eval_prompts": 8,
    "max_new_tokens": 16,
    "dpo_steps": 4,
    "batch_size": 8,
    "reward_model_steps": 4,
    "ppo_steps": 4,
    "rollout_batch_size": 8,
    "minibatch_size": 8,
    "ppo_epochs": 1,
}


config = prepare_run(Config, smoke=SMOKE, description=__doc__)
device = resolve_device(config.device).type  # "cpu" or "cuda"


class Cost:
    """Wall time and peak memory of a block of work.

    On CUDA, the peak is torch's own ``max_memory_allocated`` (exact). On CPU there is
    no allocator counter, so a thread samples the process's resident memory every 2 ms
    and reports the peak above the level at entry: indicative, and small next to the
    Python process itself for models this tiny.
    """

    def __enter__(self):
        self.process, self.samples, self.running = psutil.Process(), [], True
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.baseline = torch.cuda.memory_allocated()
        else:
            self.baseline = self.process.memory_info().rss
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        self.start = time.perf_counter()
        return self

    def _sample(self):
        while self.running:
            self.samples.append(self.process.memory_info().rss)
            time.sleep(0.002)

    def __exit__(self, *exc):
        self.wall_s = time.perf_counter() - self.start
        if device == "cuda":
            torch.cuda.synchronize()
            self.peak_mb = (torch.cuda.max_memory_allocated() - self.baseline) / 2**20
        else:
            self.running = False
            self.thread.join()
            self.peak_mb = (max(self.samples, default=self.baseline) - self.baseline) / 2**20


def state_mb(trained: list[torch.nn.Module], frozen: list[torch.nn.Module]) -> float:
    """float32 bytes held: weights of every model, plus gradients and AdamW's two moments of the trained ones."""
    n = sum(4 * p.numel() for m in trained for p in m.parameters()) + sum(
        p.numel() for m in frozen for p in m.parameters()
    )
    return 4 * n / 2**20


def bar_callback(total: int, desc: str):
    bar = tqdm(total=total, desc=desc, disable=None)
    return bar, lambda step, record: bar.update(step - bar.n)


# %% [markdown]
# ## The shared start: SFT model and pairs
#
# The sentiment world comes from `dpo_ref.worlds.sentiment` (`train_dpo.py` walks
# through it step by step). Both methods get exactly these pairs.

# %%
world = build_sentiment_world(
    SentimentWorldConfig(
        n_reviews=config.n_reviews,
        n_layer=config.n_layer,
        n_embd=config.n_embd,
        pretrain_steps=config.sft_steps,
        n_train_prompts=config.n_train_prompts,
        n_val_prompts=0,  # one run per method: no setting is selected, so no validation prompts
        n_test_prompts=config.n_eval_prompts,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
    ),
    device=device,
)
reference, pad, eos = world.reference, world.tokenizer.pad_token_id, world.tokenizer.eos_token_id
preference = world.preference_pairs(seed=config.seed + 3)
pair_data, n_pairs = preference.tensors, len(preference.pairs)
print(f"{n_pairs} pairs from {len(world.prompts['train'])} prompts ({preference.dropped} dropped)")


def evaluate(model):  # reward and KL on the held-out prefixes, the same sampling seed for every model
    return world.evaluate(model, "test", seed=config.seed + 4, num_samples=2)


# %% [markdown]
# ## DPO: one run, one model
#
# The reference's log-probs of every pair are computed once (inside the timed block);
# afterwards only the policy is in memory.

# %%
with Cost() as dpo_cost:
    dpo_data = precompute_reference_logps(reference, pair_data, device=device)
    bar, on_step = bar_callback(config.dpo_steps, "DPO")
    dpo_policy = train_preference(
        world.new_policy(),
        PairwiseObjective(functools.partial(dpo_loss, beta=config.beta), beta=config.beta),
        dpo_data,
        TrainConfig(
            steps=config.dpo_steps,
            batch_size=min(config.batch_size, n_pairs),
            learning_rate=config.learning_rate,
            seed=config.seed,
            device=device,
        ),
        on_step=on_step,
    ).model.eval()
    bar.close()

# %% [markdown]
# ## RLHF: a reward model, then PPO
#
# The reward model starts from the SFT model's backbone and is fitted to the same
# pairs. PPO then samples completions of the training prefixes from the current
# policy, scores them with the reward model, subtracts $\beta$ times the per-token
# log-ratio to the reference, and takes clipped policy-gradient steps.


# %%
with Cost() as reward_model_cost:
    bar, on_step = bar_callback(config.reward_model_steps, "reward model")
    reward_model = (
        train_reward_model(
            RewardModel.from_causal_lm(reference).requires_grad_(True),
            pair_data,
            TrainConfig(
                steps=config.reward_model_steps,
                batch_size=min(config.batch_size, n_pairs),
                learning_rate=config.reward_model_learning_rate,
                seed=config.seed,
                device=device,
            ),
            on_step=on_step,
        )
        .model.eval()
        .requires_grad_(False)
    )
    bar.close()

prompt_ids, prompt_mask = left_padded_prompts(world.prompts["train"], pad)
ppo_config = PPOConfig(
    kl_coef=config.beta,
    rollout_batch_size=config.rollout_batch_size,
    minibatch_size=config.minibatch_size,
    ppo_epochs=config.ppo_epochs,
    max_new_tokens=config.max_new_tokens,
    eos_token_id=eos,
)
with Cost() as ppo_cost:
    bar, on_step = bar_callback(config.ppo_steps, "PPO")
    ppo = train_ppo(
        world.new_policy(),
        reference,
        lambda ids, mask: reward_model(*right_aligned(ids, mask, pad)),  # reads the last attended token
        prompt_ids,
        ppo_config,
        TrainConfig(steps=config.ppo_steps, learning_rate=config.learning_rate, seed=config.seed, device=device),
        prompt_attention_mask=prompt_mask,
        on_step=on_step,
    )
    bar.close()
ppo_policy = ppo.model.lm.eval()
print(
    f"PPO: reward-model score {ppo.history[0]['score']:+.3f} -> {ppo.history[-1]['score']:+.3f}, "
    f"sampled KL {ppo.history[-1]['kl']:.3f}"
)

# %% [markdown]
# ## The comparison
#
# Reward is the ground-truth judge's mean score (VADER, never seen by either method
# directly), KL is $\mathrm{KL}(\pi\,\|\,\pi_{\text{ref}})$ in nats, both from samples
# of each policy on held-out prefixes. "State" counts float32 weights of every model
# held during training, plus gradients and AdamW moments of the trained ones.

# %%
n_rollouts = -(-config.ppo_steps // ppo_config.updates_per_rollout())
value_head = ppo.model.value_head
results = {
    "reference (SFT)": {
        **evaluate(reference),
        "wall_s": 0.0,
        "peak_mb": 0.0,
        "state_mb": 0.0,
        "models": 1,
        "runs": 0,
        "generated": 0,
    },
    "DPO": {
        **evaluate(dpo_policy),
        "wall_s": dpo_cost.wall_s,
        "peak_mb": dpo_cost.peak_mb,
        "state_mb": state_mb([dpo_policy], []),
        "models": 1,
        "runs": 1,
        "generated": 0,
    },
    "RLHF (RM + PPO)": {
        **evaluate(ppo_policy),
        "wall_s": reward_model_cost.wall_s + ppo_cost.wall_s,
        "peak_mb": max(reward_model_cost.peak_mb, ppo_cost.peak_mb),
        "state_mb": state_mb([ppo_policy, value_head], [reference, reward_model]),
        "models": 3,
        "runs": 2,
        "generated": n_rollouts * config.rollout_batch_size,
    },
}
memory = "peak CUDA MB" if device == "cuda" else "peak RSS+ MB"
header = (
    f"{'method':<17} {'reward':>15} {'KL (nats)':>15} {'wall s':>7} {memory:>13} {'state MB':>9} "
    f"{'models':>6} {'runs':>4} {'sampled':>7}"
)
print(header)
print("-" * len(header))
for name, r in results.items():
    print(
        f"{name:<17} {r['reward']['mean']:>+7.3f} ± {r['reward']['stderr']:.3f} {r['kl']['mean']:>7.3f} ± "
        f"{r['kl']['stderr']:.3f} {r['wall_s']:>7.1f} {r['peak_mb']:>13.1f} {r['state_mb']:>9.2f} "
        f"{r['models']:>6} {r['runs']:>4} {r['generated']:>7}"
    )
ratio = results["RLHF (RM + PPO)"]["wall_s"] / max(results["DPO"]["wall_s"], 1e-9)
print(f"RLHF took {ratio:.1f}x DPO's wall time on {device}")
