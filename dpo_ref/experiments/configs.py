"""Named experiment configurations: ``smoke`` (tests, about a minute), ``cpu`` (committed
results, 2 cores), ``gpu`` (larger, one GPU). Plain dataclasses; every field says why.

An :class:`ExperimentConfig` holds one configuration per world: ``exact``
(:class:`ExactExperimentConfig`) and ``sentiment`` (:class:`SentimentConfig`).

Every method gets the same training budget (``steps``, ``batch_size``,
``learning_rate``) and the hyperparameters its paper recommends; nothing is tuned per
method, and nothing is tuned toward a result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dpo_ref.errors import UnknownNameError
from dpo_ref.train import PPOConfig
from dpo_ref.worlds.exact import ExactWorldConfig


@dataclass
class ExactExperimentConfig:
    """The exact-world experiments (DESIGN section 5)."""

    world: ExactWorldConfig = field(default_factory=ExactWorldConfig)  # sizes and the reference model
    seed: int = 0  # seeds the pairs, the batch order and PPO's sampling (runs add their own seed)
    n_pairs: int = 4000  # preference pairs every offline method and the reward model see
    # shared budget of every offline method (and of the reward model)
    steps: int = 600  # optimiser updates per run
    batch_size: int = 64  # pairs (or rows) per update; the DPO paper's 64 (Appendix B)
    learning_rate: float = 1e-3  # AdamW; one value for all methods, chosen for the reference's SFT
    eval_every: int = 100  # exact evaluation of the policy every this many steps (a trajectory)
    # the optimal frontier: pi*_beta on a log grid of beta, from KL near 0 to past every method
    frontier_log10_beta: tuple[float, float] = (-2.0, 2.0)  # log10 of the smallest and largest beta
    frontier_points: int = 81  # betas on that grid
    # DPO's beta grid; the paper's IMDb sweep (secondary sources) is {0.05, 0.1, 1, 5}
    dpo_betas: tuple[float, ...] = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
    # the beta shared by the variants that have one (IPO's tau, cDPO, hinge), the recovery
    # experiment, the deterministic-preference experiment and the PPO seed runs
    beta: float = 0.5
    cdpo_label_smoothing: float = 0.1  # assumed label-flip rate of conservative DPO
    kto_beta: float = 0.1  # KTO paper: 0.1 is close to best
    orpo_lambda: float = 0.1  # ORPO paper: lambda around 0.1
    simpo_beta: float = 2.0  # SimPO paper: beta 2.0 to 2.5
    simpo_gamma: float = 1.0  # SimPO paper: gamma / beta around 0.5
    unlikelihood_alpha: float = 1.0  # weight of the unlikelihood term (Welleck et al. use 1)
    # PPO (RLHF): the reward model is trained on the same n_pairs pairs
    ppo: PPOConfig = field(default_factory=PPOConfig)  # kl_coef is overwritten per run
    ppo_steps: int = 600  # minibatch updates (ppo.updates_per_rollout() per rollout)
    ppo_betas: tuple[float, ...] = (0.2, 0.5, 1.0)  # KL coefficients of the PPO frontier points
    ppo_seeds: tuple[int, ...] = (0, 1, 2)  # seeds of the PPO runs at `beta` (trajectories)
    ppo_eval_every: int = 40  # exact evaluation interval of PPO runs (frames of the animation)
    # DPO recovers pi*_beta: KL(pi_DPO || pi*_beta) against the number of pairs, at `beta`
    recovery_n_pairs: tuple[int, ...] = (500, 2000, 8000, 32000)
    # deterministic preferences (IPO's argument): DPO and IPO at `beta`, trained longer
    deterministic_steps: int = 1500
    deterministic_eval_every: int = 100  # evaluation interval of those runs


@dataclass
class SentimentConfig:
    """Everything that sets a sentiment-world run. Paper values cite the DPO paper (arXiv 2305.18290)."""

    seed: int = 0  # seeds the corpus, prompts, sampling and every training run
    # --- corpus and the SFT / reference model
    n_reviews: int = 20_000  # pretraining corpus (the paper fine-tunes on the IMDb train split)
    n_layer: int = 2  # tiny GPT-2: 2 layers of width 64 train in about a minute on 2 CPU cores
    n_embd: int = 64  # width
    n_head: int = 4  # attention heads
    n_positions: int = 64  # reviews are at most 44 words, prompts at most 8
    pretrain_steps: int = 300  # SFT updates on the corpus (the loss plateaus near 1.35 by step 200)
    pretrain_batch_size: int = 64  # reviews per SFT update
    pretrain_learning_rate: float = 3e-3  # AdamW, with a short warm-up
    # --- prompts and preference pairs
    n_train_prompts: int = 256  # prefixes that get 4 samples each: the preference data
    samples_per_prompt: int = 4  # the paper: 4 samples per prefix, 6 pairs (section 6.1)
    min_prompt_tokens: int = 2  # the paper's prefixes are 2 to 8 tokens
    max_prompt_tokens: int = 8  # (the upper end)
    max_new_tokens: int = 40  # completions are at most 42 words; longer samples are cut
    # --- evaluation
    n_eval_prompts: int = 256  # held-out prefixes
    eval_samples_per_prompt: int = 2  # samples per prefix for reward and KL (temperature 1)
    win_rate_temperatures: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # the paper's TL;DR sweep
    # --- training budget, the same for every method
    steps: int = 96  # optimiser updates per run (2 epochs of about 1,500 pairs at batch 32)
    batch_size: int = 32  # pairs per update (the paper: 64)
    learning_rate: float = 1e-3  # AdamW; the paper's 1e-6 RMSprop is for gpt2-large
    warmup_steps: int = 10  # the paper warms up over 150 steps of a much longer run
    # --- each method's grid (4 values each: the same tuning budget)
    dpo_betas: tuple[float, ...] = (0.05, 0.1, 1.0, 5.0)  # secondary sources' grid for the paper (unconfirmed)
    ipo_taus: tuple[float, ...] = (0.05, 0.1, 1.0, 5.0)  # IPO's tau on per-token mean log-ratios (TRL)
    kto_betas: tuple[float, ...] = (0.05, 0.1, 1.0, 5.0)  # the KTO paper finds 0.1 close to best
    orpo_lambdas: tuple[float, ...] = (0.05, 0.1, 0.5, 1.0)  # the ORPO paper uses about 0.1
    simpo_betas: tuple[float, ...] = (1.0, 2.0, 2.5, 5.0)  # the SimPO paper: 2 to 2.5, gamma = beta / 2
    unlikelihood_alphas: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0)  # weight of the unlikelihood term
    preferred_ft_lr_scales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)  # Preferred-FT has only its learning rate
    ppo_kl_coefs: tuple[float, ...] = (0.05, 0.1, 1.0, 5.0)  # PPO with the reward model: beta on its BT scale
    ppo_gt_kl_coefs: tuple[float, ...] = (0.005, 0.01, 0.03, 0.1)  # PPO-GT: VADER lies in [-1, 1]
    # --- PPO (Ziegler et al. 2019 settings, scaled down)
    ppo_rollout_batch_size: int = 64  # completions sampled per rollout
    ppo_minibatch_size: int = 32  # rows per PPO update
    ppo_epochs: int = 4  # passes over each rollout (Ziegler et al. use 4)
    reward_model_steps: int = 96  # Bradley-Terry reward model on the same pairs
    # --- logging
    curve_every: int = 4  # keep every n-th logged step of the DPO curves


@dataclass
class ExperimentConfig:
    name: str  # "smoke", "cpu" or "gpu"; also the results sub-folder
    # CPU threads for torch: these models are tiny, a second thread buys little, and on
    # shared cores spinning threads made runs ten times slower (measured). None: torch's default.
    torch_threads: int | None = 1
    exact: ExactExperimentConfig = field(default_factory=ExactExperimentConfig)  # the exact-world experiments
    sentiment: SentimentConfig = field(default_factory=SentimentConfig)  # the sentiment world (IMDb analogue)


def _smoke() -> ExperimentConfig:
    world = ExactWorldConfig(
        vocab_size=4, response_length=3, n_prompts=3, n_embd=16, n_head=2, pretrain_samples=2000,
        pretrain_steps=60, pretrain_batch_size=64, pretrain_learning_rate=1e-2,
    )  # fmt: skip
    exact = ExactExperimentConfig(
        world=world, n_pairs=256, steps=20, batch_size=32, eval_every=10, frontier_points=21,
        dpo_betas=(0.1, 1.0), ppo=PPOConfig(rollout_batch_size=32, minibatch_size=16, ppo_epochs=2, max_new_tokens=3),
        ppo_steps=8, ppo_betas=(0.5,), ppo_seeds=(0, 1), ppo_eval_every=4, recovery_n_pairs=(64, 256),
        deterministic_steps=30, deterministic_eval_every=10,
    )  # fmt: skip
    # seconds: tiny everything; what the tests run
    sentiment = SentimentConfig(
        n_reviews=600, n_layer=1, n_embd=32, n_head=2, pretrain_steps=30,
        n_train_prompts=12, n_eval_prompts=12, eval_samples_per_prompt=2, max_new_tokens=16,
        steps=4, batch_size=8, warmup_steps=0, win_rate_temperatures=(0.0, 1.0),
        dpo_betas=(0.1, 1.0), ipo_taus=(0.1,), kto_betas=(0.1,), orpo_lambdas=(0.1,), simpo_betas=(2.0,),
        unlikelihood_alphas=(1.0,), preferred_ft_lr_scales=(1.0,), ppo_kl_coefs=(0.1,), ppo_gt_kl_coefs=(0.03,),
        ppo_rollout_batch_size=8, ppo_minibatch_size=8, ppo_epochs=1, reward_model_steps=4, curve_every=1,
    )  # fmt: skip
    return ExperimentConfig(name="smoke", exact=exact, sentiment=sentiment)


def _cpu() -> ExperimentConfig:
    return ExperimentConfig(
        name="cpu",
        exact=ExactExperimentConfig(ppo=PPOConfig(rollout_batch_size=64, minibatch_size=32, max_new_tokens=4)),
        sentiment=SentimentConfig(),
    )


def _gpu() -> ExperimentConfig:
    # a larger response space (8**4 = 4,096 per prompt), more data, longer runs, more seeds
    world = ExactWorldConfig(vocab_size=8, n_prompts=6, n_embd=64, pretrain_samples=100000, pretrain_steps=2000)
    return ExperimentConfig(
        name="gpu",
        exact=ExactExperimentConfig(
            world=world, n_pairs=16000, steps=2000, eval_every=200, frontier_points=121,
            dpo_betas=(0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0),
            ppo=PPOConfig(rollout_batch_size=256, minibatch_size=64, max_new_tokens=4), ppo_steps=4000,
            ppo_betas=(0.1, 0.2, 0.5, 1.0, 2.0), ppo_seeds=(0, 1, 2, 3, 4), ppo_eval_every=160,
            recovery_n_pairs=(500, 2000, 8000, 32000, 128000), deterministic_steps=6000, deterministic_eval_every=300,
        ),  # fmt: skip
        # a larger model, more data and longer training
        sentiment=SentimentConfig(
            n_reviews=100_000, n_layer=4, n_embd=256, n_head=4, pretrain_steps=3000,
            pretrain_batch_size=128, pretrain_learning_rate=1e-3, n_train_prompts=2048, n_eval_prompts=1024,
            eval_samples_per_prompt=4, steps=600, batch_size=64, learning_rate=3e-4, warmup_steps=50,
            reward_model_steps=600, ppo_rollout_batch_size=128, ppo_minibatch_size=64, curve_every=10,
        ),  # fmt: skip
    )


CONFIGS = {"smoke": _smoke, "cpu": _cpu, "gpu": _gpu}


def get_config(name: str) -> ExperimentConfig:
    if name not in CONFIGS:
        raise UnknownNameError(f"unknown config {name!r}; choose one of {sorted(CONFIGS)}")
    return CONFIGS[name]()
