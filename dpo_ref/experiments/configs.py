"""Named experiment configurations: ``smoke`` (tests, about a minute), ``cpu`` (committed
results, 2 cores), ``gpu`` (larger, one GPU). Plain dataclasses; every field says why.

An :class:`ExperimentConfig` holds one configuration per world: ``exact``
(:class:`ExactExperimentConfig`) and ``sentiment`` (:class:`SentimentConfig`).

Every method gets the same training budget (``steps`` updates of ``batch_size`` pairs at
``learning_rate``) and a grid of the same size, over the hyperparameter its paper
recommends (``grids``). Choices made after a first run are in the dated change log the
results pages render (``docs/data/results_changes.yml``), and the comment where each is
set says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dpo_ref.errors import UnknownNameError, UserError
from dpo_ref.train import PPOConfig
from dpo_ref.worlds.exact import ExactWorldConfig


def check_grids(grids: dict[str, tuple[float, ...]], owner: str) -> None:
    """A world's grids name registered methods, each with the same number of values (the same tuning budget)."""
    from dpo_ref.methods import METHODS

    unknown = sorted(set(grids) - set(METHODS))
    if unknown:
        raise UserError(f"{owner}.grids: unknown method {unknown[0]!r}; the methods are {', '.join(METHODS)}")
    sizes = {name: len(values) for name, values in grids.items()}
    if len(set(sizes.values())) > 1:
        raise UserError(
            f"{owner}.grids: every method needs as many values as the others (the same tuning budget); got {sizes}"
        )


@dataclass
class ExactExperimentConfig:
    """The exact-world experiments (ARCHITECTURE.md, "The two worlds").

    Each seed draws its own preference pairs and runs everything once; the world itself
    (prompts, r*, the reference model) is the same for every seed. Every method gets the
    same budget (``steps`` updates at ``learning_rate``) and a grid over its main
    hyperparameter, log-spaced over the range its paper or TRL recommends, so each
    method's best trade-off (its upper envelope) can be compared at matched KL.
    """

    world: ExactWorldConfig = field(default_factory=ExactWorldConfig)  # sizes and the reference model
    seeds: tuple[int, ...] = (0, 1, 2)  # each seed: its own pairs, batch order and sampling (3 on cpu, 5 on gpu)
    n_pairs: int = 4000  # preference pairs per seed that every offline method and the reward model see
    # the shared budget: every offline method, the reward model and PPO make `steps` updates
    steps: int = 240  # at batch 128: 7.7 epochs of the pairs, long enough to over-optimise at small beta
    batch_size: int = 128  # pairs (or rows) per update
    learning_rate: float = 1e-3  # AdamW, every offline method and the reward model (set for the reference's SFT)
    eval_every: int = 40  # exact evaluation every this many steps: the trajectories of the over-optimisation study
    # the optimal frontier: pi*_beta on a log grid of beta, from KL near 0 to past every method
    frontier_log10_beta: tuple[float, float] = (-2.0, 2.0)  # log10 of the smallest and largest beta
    frontier_points: int = 81  # betas on that grid
    # each method's grid: 4 values of the hyperparameter the registry says it sweeps (Method.swept), the others
    # at their paper's value (cDPO's label smoothing 0.1, SimPO's gamma = beta / 2: Method.derived). Equal sizes
    # since 2026-12-07 (DPO had 6 values, IPO, KTO, SimPO and PPO 3, the rest 2; the change log says why); the
    # values kept every earlier one where 4 allowed, and extend each grid where its runs left the KL range
    grids: dict[str, tuple[float, ...]] = field(
        default_factory=lambda: {
            "dpo": (0.05, 0.1, 0.5, 2.0),  # the paper's 0.1 and 0.5, and a decade around
            "ipo": (0.0625, 0.25, 1.0, 4.0),  # tau on per-token means (TRL); summed tau = tau / 4 here
            "cdpo": (0.05, 0.1, 0.5, 2.0),  # conservative DPO: DPO's grid, label smoothing 0.1
            "hinge": (0.05, 0.1, 0.5, 2.0),  # the hinge closes at margin 1/beta
            "kto": (0.02, 0.05, 0.1, 0.5),  # the KTO paper finds 0.1 close to best
            "orpo": (0.1, 0.3, 1.0, 3.0),  # lambda: the ORPO paper uses about 0.1
            "simpo": (1.0, 2.5, 5.0, 10.0),  # beta: the SimPO paper uses 2 to 2.5
            "dpop": (0.05, 0.1, 0.5, 2.0),  # DPO's grid, lambda 50 (the registry's default)
            "preferred-ft": (0.25, 0.5, 1.0, 2.0),  # the learning rate's multiple: its only knob
            "unlikelihood": (0.1, 0.3, 1.0, 3.0),  # alpha: Welleck et al. use 1
            "ppo": (0.1, 0.2, 0.5, 1.0),  # the KL coefficient, PPO against the reward model ...
            "ppo-gt": (0.1, 0.2, 0.5, 1.0),  # ... and against r*
        }
    )
    # the beta of the studies run at one value: recovery, deterministic labels, displacement, shift, online
    beta: float = 0.5
    # PPO (RLHF): the reward model is trained on the same pairs, then PPO against it, and PPO-GT against r*
    ppo: PPOConfig = field(default_factory=PPOConfig)  # kl_coef is set per run
    ppo_learning_rate: float = 3e-4  # PPO's own rate: a third of the offline one, as PPO for LMs runs lower
    # DPO recovers pi*_beta: KL(pi_DPO || pi*_beta) against the number of pairs, at `beta`, twice: with `steps`
    # updates whatever the pairs (fewer pairs, more epochs), and with as many epochs as the most pairs get
    recovery_n_pairs: tuple[int, ...] = (500, 2000, 8000)
    # deterministic preferences (IPO's argument): DPO and IPO at `beta`, trained 4x longer
    deterministic_steps: int = 960
    # online DPO: `online_rounds` rounds, each labels n_pairs / rounds fresh pairs sampled from the policy
    online_rounds: int = 4
    # distribution shift: pairs sampled from pi_ref at this temperature instead of from pi_ref itself
    shift_temperature: float = 2.0
    shift_sft_steps: int = 60  # Preferred-FT on the chosen answers before DPO (the paper's recipe)

    def __post_init__(self):
        check_grids(self.grids, "ExactExperimentConfig")
        if self.beta not in self.grids["dpo"]:  # online DPO and displacement compare with the frontier's run there
            raise UserError(f"ExactExperimentConfig.beta ({self.beta}) must be in grids['dpo'] {self.grids['dpo']}")


@dataclass
class SentimentConfig:
    """The sentiment world (the DPO paper's IMDb experiment). Paper values cite arXiv 2305.18290.

    The world (corpus, prompts, the pretrained reference) is built once from
    ``world_seed``; each seed of ``seeds`` samples its own preference pairs, trains every
    method and evaluates it with its own samples. Settings are selected on validation
    prompts and reported on held-out test prompts. The beta grid and PPO's learning rate
    were changed after a first run (their comments say why).
    """

    world_seed: int = 0  # the corpus, the prompts and the reference model
    seeds: tuple[int, ...] = (0, 1, 2)  # each seed: its own pairs, training order and evaluation samples
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
    # --- evaluation: settings are chosen on validation prompts, reported on test prompts
    n_val_prompts: int = 128  # held-out prefixes that select each method's setting
    n_test_prompts: int = 192  # other held-out prefixes that every reported number comes from
    eval_samples_per_prompt: int = 2  # samples per prefix for reward and KL (temperature 1)
    win_rate_temperatures: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # the paper's TL;DR sweep
    # --- training budget, the same for every offline method
    steps: int = 96  # optimiser updates per run (2 epochs of about 1,500 pairs at batch 32)
    batch_size: int = 32  # pairs per update (the paper: 64)
    learning_rate: float = 1e-3  # AdamW; the paper's 1e-6 RMSprop is for gpt2-large
    warmup_steps: int = 10  # the paper warms up over 150 steps of a much longer run
    # batches of pairs of similar length (dpo_ref.batching.TensorBatches), for every offline method and the
    # reward model alike: 41% less padding, 17% fewer positions computed (measured, seed 0's pairs); which
    # pairs meet in an epoch stays random
    group_by_length: bool = True
    # --- each method's grid: 3 values of the hyperparameter the registry says it sweeps (Method.swept)
    # DPO, IPO and KTO: decades up from the paper's 0.5. The first grid, (0.05, 0.5, 5), left DPO's lowest KL at
    # 6-10 nats, above every PPO run, so matched-KL comparisons had no DPO run there; a one-seed probe (seed 0,
    # before this grid ran) put beta 50 near 5 nats and beta 500 at 8.8: a larger beta did not go lower. IPO
    # and KTO move with DPO, so the three keep the same grid.
    grids: dict[str, tuple[float, ...]] = field(
        default_factory=lambda: {
            "dpo": (0.5, 5.0, 50.0),
            "ipo": (0.5, 5.0, 50.0),  # IPO's tau on per-token mean log-ratios (TRL)
            "kto": (0.5, 5.0, 50.0),  # the KTO paper finds 0.1 close to best
            "orpo": (0.05, 0.2, 1.0),  # lambda: the ORPO paper uses about 0.1
            "simpo": (1.0, 2.5, 5.0),  # beta: the SimPO paper uses 2 to 2.5
            "dpop": (0.5, 5.0, 50.0),  # DPO's grid, lambda 50 (the registry's default)
            "preferred-ft": (0.5, 1.0, 2.0),  # the learning rate's multiple: its only knob
            "unlikelihood": (0.1, 0.3, 1.0),  # alpha, the weight of the unlikelihood term
            # the KL coefficient, on normalised rewards: both rewards are normalised to mean 0, standard deviation 1
            # over pi_ref's samples of the training prompts (as Ziegler et al. normalise their reward model)
            "ppo": (0.05, 0.2, 1.0),
            "ppo-gt": (0.05, 0.2, 1.0),
        }
    )
    # every trained policy is also evaluated on the test prompts this many times along training (evenly spaced,
    # before its end): the envelopes and matched-KL comparisons then have trained points from near pi_ref out
    checkpoints: int = 3
    # --- RLHF: a reward model on the same pairs, then PPO; PPO-GT with VADER as the reward (grids above)
    ppo_rollout_batch_size: int = 64  # completions sampled per rollout
    ppo_minibatch_size: int = 32  # rows per PPO update
    ppo_epochs: int = 4  # passes over each rollout (Ziegler et al. use 4)
    ppo_steps: int = 240  # updates: 30 rollouts of 64, about twice the completions that made the pairs
    # PPO's own rate, a tenth of the offline one. At 3e-4 its approx-KL per update reached 0.07 and at
    # kl_coef 1 its own objective fell (measured); at 1e-4 approx-KL stays near 0.005, the usual range.
    ppo_learning_rate: float = 1e-4
    # PPO's objective at its start and end, estimated on this many samples per validation prompt: the
    # gain at a strong KL coefficient is a tenth of a standard deviation, so it needs more than 2
    objective_samples_per_prompt: int = 8
    reward_model_steps: int = 96  # Bradley-Terry reward model on the same pairs
    # --- logging
    curve_every: int = 4  # keep every n-th logged step of the DPO curves

    def __post_init__(self):
        check_grids(self.grids, "SentimentConfig")


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
        vocab_size=4,
        response_length=3,
        n_prompts=3,
        n_embd=16,
        n_head=2,
        pretrain_samples=2000,
        pretrain_steps=60,
        pretrain_batch_size=64,
        pretrain_learning_rate=1e-2,
    )
    exact = ExactExperimentConfig(
        world=world,
        seeds=(0, 1),
        n_pairs=256,
        steps=16,
        batch_size=32,
        eval_every=8,
        frontier_points=21,
        grids={
            "dpo": (0.1, 0.5),
            "ipo": (0.5, 2.0),
            "cdpo": (0.1, 0.5),
            "hinge": (0.1, 0.5),
            "kto": (0.1, 0.5),
            "orpo": (0.1, 1.0),
            "simpo": (2.0, 5.0),
            "dpop": (0.1, 0.5),
            "preferred-ft": (0.5, 1.0),
            "unlikelihood": (0.3, 1.0),
            "ppo": (0.2, 0.5),
            "ppo-gt": (0.2, 0.5),
        },
        ppo=PPOConfig(rollout_batch_size=32, minibatch_size=16, ppo_epochs=2, max_new_tokens=3),
        recovery_n_pairs=(64, 256),
        deterministic_steps=32,
        online_rounds=2,
        shift_sft_steps=8,
    )
    # seconds: tiny everything; what the tests run
    sentiment = SentimentConfig(
        seeds=(0, 1),
        n_reviews=600,
        n_layer=1,
        n_embd=32,
        n_head=2,
        pretrain_steps=30,
        n_train_prompts=12,
        n_val_prompts=8,
        n_test_prompts=8,
        eval_samples_per_prompt=2,
        max_new_tokens=16,
        steps=4,
        batch_size=8,
        warmup_steps=0,
        win_rate_temperatures=(0.0, 1.0),
        grids={
            "dpo": (0.1, 1.0),
            "ipo": (0.1, 1.0),
            "kto": (0.1, 1.0),
            "orpo": (0.1, 1.0),
            "simpo": (2.0, 5.0),
            "dpop": (0.1, 1.0),
            "preferred-ft": (0.5, 1.0),
            "unlikelihood": (0.3, 1.0),
            "ppo": (0.1, 1.0),
            "ppo-gt": (0.1, 1.0),
        },
        checkpoints=1,
        ppo_rollout_batch_size=8,
        ppo_minibatch_size=8,
        ppo_epochs=1,
        ppo_steps=4,
        objective_samples_per_prompt=2,
        reward_model_steps=4,
        curve_every=1,
    )
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
            world=world,
            seeds=(0, 1, 2, 3, 4),
            n_pairs=16000,
            steps=1000,
            batch_size=256,
            eval_every=100,
            frontier_points=121,
            grids={
                "dpo": (0.02, 0.1, 0.5, 2.0, 10.0),
                "ipo": (0.0625, 0.25, 1.0, 4.0, 16.0),
                "cdpo": (0.02, 0.1, 0.5, 2.0, 10.0),
                "hinge": (0.02, 0.1, 0.5, 2.0, 10.0),
                "kto": (0.02, 0.05, 0.1, 0.5, 2.0),
                "orpo": (0.03, 0.1, 0.3, 1.0, 3.0),
                "simpo": (0.5, 1.0, 2.5, 5.0, 10.0),
                "dpop": (0.02, 0.1, 0.5, 2.0, 10.0),
                "preferred-ft": (0.25, 0.5, 1.0, 2.0, 4.0),
                "unlikelihood": (0.1, 0.3, 1.0, 3.0, 10.0),
                "ppo": (0.1, 0.2, 0.5, 1.0, 2.0),
                "ppo-gt": (0.1, 0.2, 0.5, 1.0, 2.0),
            },
            ppo=PPOConfig(rollout_batch_size=256, minibatch_size=64, max_new_tokens=4),
            recovery_n_pairs=(500, 2000, 8000, 32000, 128000),
            deterministic_steps=4000,
        ),
        # a larger model, more data and longer training
        sentiment=SentimentConfig(
            seeds=(0, 1, 2, 3, 4),
            n_reviews=100_000,
            n_layer=4,
            n_embd=256,
            n_head=4,
            pretrain_steps=3000,
            pretrain_batch_size=128,
            pretrain_learning_rate=1e-3,
            n_train_prompts=2048,
            n_val_prompts=512,
            n_test_prompts=1024,
            eval_samples_per_prompt=4,
            steps=600,
            batch_size=64,
            learning_rate=3e-4,
            warmup_steps=50,
            reward_model_steps=600,
            ppo_rollout_batch_size=128,
            ppo_minibatch_size=64,
            ppo_steps=1600,
            ppo_learning_rate=1e-4,
            curve_every=10,
        ),
    )


CONFIGS = {"smoke": _smoke, "cpu": _cpu, "gpu": _gpu}


def get_config(name: str) -> ExperimentConfig:
    if name not in CONFIGS:
        raise UnknownNameError(f"unknown config {name!r}; choose one of {sorted(CONFIGS)}")
    return CONFIGS[name]()
