"""DPO, IPO, KTO, ORPO and SimPO on the same preference pairs, in one table.

    python examples/compare_variants.py            # about 1.5 minutes on a 2-core CPU (measured 89 s)
    python examples/compare_variants.py --smoke    # the same code on tiny sizes, about 20 s (measured 17 s)

Every method starts from the same SFT model, sees the same pairs from the sentiment
world, and gets the same optimiser, learning rate and number of updates. Each is
then scored on held-out review prefixes: VADER reward and KL to the reference, both
estimated from samples. One hyperparameter setting per method (the papers' defaults
where they transfer): a single run, not a tuned comparison. The site's results pages
sweep each method's hyperparameter.
"""

# %% [markdown]
# # The DPO family on the same data
#
# | method | objective on a pair (or an unpaired example) | reference model |
# |---|---|---|
# | DPO | $-\log\sigma(\beta h)$, $h$ the log-ratio margin (summed log-probs) | yes |
# | IPO | $(h - \frac{1}{2\tau})^2$ on per-token mean log-ratios (as TRL) | yes |
# | KTO | $1 - \sigma(\beta(\rho - z_0))$ for desirable, $1 - \sigma(\beta(z_0 - \rho))$ for undesirable | yes |
# | ORPO | SFT loss $-\lambda\log\sigma(\log\frac{\text{odds}(y_w)}{\text{odds}(y_l)})$ | no |
# | SimPO | $-\log\sigma(\frac{\beta}{|y_w|}\log\pi(y_w) - \frac{\beta}{|y_l|}\log\pi(y_l) - \gamma)$ | no |
#
# The formulas, papers and pitfalls of each are on the site's "bigger picture" page;
# every loss here is the tested function from `dpo_ref.losses`.

# %%
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from tqdm import tqdm

from dpo_ref.methods import METHODS, TrainingData
from dpo_ref.runtime import resolve_device
from dpo_ref.scripts import prepare_run
from dpo_ref.train import TrainConfig, train_preference
from dpo_ref.worlds.sentiment import SentimentWorldConfig, build_sentiment_world


@dataclass
class Config:
    n_reviews: int = 4000  # SFT corpus of generated reviews
    n_layer: int = 2  # tiny GPT-2, about 120k parameters
    n_embd: int = 64
    sft_steps: int = 150  # SFT updates on the corpus
    n_train_prompts: int = 96  # prefixes with 4 samples each: the preference data
    n_eval_prompts: int = 64  # held-out prefixes for reward and KL
    max_new_tokens: int = 40  # completions are cut after this many tokens
    steps: int = 30  # updates per method (the same budget for all)
    batch_size: int = 32  # pairs per update (KTO: twice as many unpaired rows)
    learning_rate: float = 5e-4  # AdamW, the same for all
    dpo_beta: float = 0.1  # DPO paper default
    ipo_tau: float = 1.0  # IPO on per-token mean log-ratios: target margin 1/(2 tau) = 0.5 nats per token
    kto_beta: float = 0.1  # KTO paper: 0.1 is close to best
    orpo_lambda: float = 0.1  # ORPO paper: about 0.1
    simpo_beta: float = 2.0  # SimPO paper: 2 to 2.5 ...
    simpo_gamma: float = 1.0  # ... with gamma / beta around 0.5
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
    "steps": 4,
    "batch_size": 8,
}


config = prepare_run(Config, smoke=SMOKE, description=__doc__)
device = resolve_device(config.device).type  # "cpu" or "cuda"

# %% [markdown]
# ## The SFT model and the pairs
#
# The sentiment world comes from `dpo_ref.worlds.sentiment` (`train_dpo.py` walks
# through it step by step): a tiny GPT-2 trained on generated reviews is the
# reference; its own completions of review prefixes, ranked by VADER, are the pairs.

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
reference = world.reference
preference = world.preference_pairs(seed=config.seed + 3)
print(f"{len(preference.pairs)} pairs from {len(world.prompts['train'])} prompts ({preference.dropped} dropped)")

# %% [markdown]
# ## The data each method reads
#
# `TrainingData` shapes the pairs for each method, as the method registry
# (`dpo_ref.methods`) says: DPO reads summed log-probs and IPO per-token means (its
# target margin is per token, as in TRL), with the reference's values computed once;
# KTO reads unpaired rows, each chosen completion desirable and each rejected one
# undesirable, and estimates its reference point $z_0$ from mismatched rows (this row's
# prompt, the next row's completion), as TRL does; ORPO and SimPO need no reference.

# %%
data = TrainingData(preference.tensors, reference=reference, pad_token_id=world.tokenizer.pad_token_id, device=device)

# %% [markdown]
# ## Five runs with the same budget

# %%
settings = {  # method: its hyperparameters (the papers' defaults where they transfer)
    "dpo": {"beta": config.dpo_beta},
    "ipo": {"beta": config.ipo_tau},  # IPO's beta is the paper's tau
    "kto": {"beta": config.kto_beta},
    "orpo": {"lam": config.orpo_lambda},
    "simpo": {"beta": config.simpo_beta, "gamma": config.simpo_gamma},
}


def evaluate(model):  # reward and KL on the held-out prefixes, the same sampling seed for every model
    return world.evaluate(model, "test", seed=config.seed + 4, num_samples=2)


table = [{"method": "reference (SFT)", "setting": "", "loss": float("nan"), "wall_s": 0.0, **evaluate(reference)}]
for name, params in settings.items():
    method = METHODS[name]
    rows = data.rows_for(method)
    batch_size = 2 * config.batch_size if method.data == "unpaired" else config.batch_size  # one row per completion
    bar = tqdm(total=config.steps, desc=method.label, disable=None)
    start = time.perf_counter()
    result = train_preference(
        world.new_policy(),
        method.objective(reference, **params),
        rows,
        TrainConfig(
            steps=config.steps,
            batch_size=min(batch_size, len(next(iter(rows.values())))),
            learning_rate=config.learning_rate,
            seed=config.seed,
            device=device,
        ),
        on_step=lambda step, record, bar=bar: bar.update(1),
    )
    wall = time.perf_counter() - start
    bar.close()
    setting = ", ".join(f"{key}={value:g}" for key, value in params.items())
    table.append(
        {
            "method": method.label,
            "setting": setting,
            "loss": result.history[-1]["loss"],
            "wall_s": wall,
            **evaluate(result.model.eval()),
        }
    )

# %% [markdown]
# ## The table
#
# Reward is VADER's mean score of the completed reviews (higher is more positive), KL
# is $\mathrm{KL}(\pi\,\|\,\pi_{\text{ref}})$ in nats per completion; both are sample
# means with standard errors over the same held-out prefixes.

# %%
header = (
    f"{'method':<16} {'setting':<20} {'final loss':>10} {'reward':>16} {'KL (nats)':>16} {'length':>7} {'train s':>8}"
)
print(header)
print("-" * len(header))
for row in table:
    loss = "" if math.isnan(row["loss"]) else f"{row['loss']:.4f}"
    print(
        f"{row['method']:<16} {row['setting']:<20} {loss:>10} "
        f"{row['reward']['mean']:>+8.3f} ± {row['reward']['stderr']:.3f} {row['kl']['mean']:>8.3f} ± {row['kl']['stderr']:.3f}"
        f" {row['length']['mean']:>7.1f} {row['wall_s']:>8.1f}"
    )
