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

import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from dpo_ref.errors import UnknownNameError, UserError
from dpo_ref.methods import DPO
from dpo_ref.train import PPOConfig
from dpo_ref.worlds.exact import ExactWorldConfig
from dpo_ref.worlds.sentiment.recipe import SentimentWorldConfig

GRIDS_FILE = Path(__file__).with_name("grids.toml")


@cache
def _grid_file() -> dict:
    with open(GRIDS_FILE, "rb") as file:
        return tomllib.load(file)


def grids(world: str, config: str) -> dict[str, tuple[float, ...]]:
    """The grids of ``world`` ("exact" or "sentiment") in configuration ``config``, from ``grids.toml``:
    ``{method: values}`` in the file's order."""
    table = _grid_file()[world][config]
    return {method: tuple(float(v) for v in values) for method, values in table.items()}


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


def offline_grid(grids: dict[str, tuple[float, ...]]) -> list[tuple[str, float]]:
    """Every offline run of a seed, in either world: ``(method, value of its swept hyperparameter)``, each offline
    method over its grid, in the grids' order."""
    from dpo_ref.methods import OFFLINE_METHODS

    return [(name, value) for name, values in grids.items() if name in OFFLINE_METHODS for value in values]


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
    # each method's grid: the values of the hyperparameter the registry says it sweeps (Method.swept), the others
    # at their paper's value (Method.derived); grids.toml holds them, with what each value is for
    grids: dict[str, tuple[float, ...]] = field(default_factory=lambda: grids("exact", "cpu"))
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
        if self.beta not in self.grids[DPO]:  # online DPO and displacement compare with the frontier's run there
            raise UserError(f"ExactExperimentConfig.beta ({self.beta}) must be in grids[{DPO!r}] {self.grids[DPO]}")


@dataclass
class SentimentConfig:
    """The sentiment world (the DPO paper's IMDb experiment). Paper values cite arXiv 2305.18290.

    The world (corpus, prompts, the pretrained reference) is built once from
    ``world`` (:class:`~dpo_ref.worlds.sentiment.SentimentWorldConfig`); each seed of ``seeds`` samples its own preference pairs, trains every
    method and evaluates it with its own samples. Settings are selected on validation
    prompts and reported on held-out test prompts. The beta grid and PPO's learning rate
    were changed after a first run (their comments say why).
    """

    # the corpus, the reference and how it is pretrained, the prompts, how pairs are sampled: built once
    world: SentimentWorldConfig = field(default_factory=SentimentWorldConfig)
    seeds: tuple[int, ...] = (0, 1, 2)  # each seed: its own pairs, training order and evaluation samples
    # --- evaluation: settings are chosen on validation prompts, reported on test prompts
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
    # --- each method's grid: 3 values of the hyperparameter the registry says it sweeps (Method.swept), from
    # grids.toml, which says why each grid is where it is
    grids: dict[str, tuple[float, ...]] = field(default_factory=lambda: grids("sentiment", "cpu"))
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
        grids=grids("exact", "smoke"),
        ppo=PPOConfig(rollout_batch_size=32, minibatch_size=16, ppo_epochs=2, max_new_tokens=3),
        recovery_n_pairs=(64, 256),
        deterministic_steps=32,
        online_rounds=2,
        shift_sft_steps=8,
    )
    # seconds: tiny everything; what the tests run
    sentiment = SentimentConfig(
        world=SentimentWorldConfig(
            n_reviews=600,
            n_layer=1,
            n_embd=32,
            n_head=2,
            pretrain_steps=30,
            n_train_prompts=12,
            n_val_prompts=8,
            n_test_prompts=8,
            max_new_tokens=16,
        ),
        seeds=(0, 1),
        eval_samples_per_prompt=2,
        steps=4,
        batch_size=8,
        warmup_steps=0,
        win_rate_temperatures=(0.0, 1.0),
        grids=grids("sentiment", "smoke"),
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
            grids=grids("exact", "gpu"),
            ppo=PPOConfig(rollout_batch_size=256, minibatch_size=64, max_new_tokens=4),
            recovery_n_pairs=(500, 2000, 8000, 32000, 128000),
            deterministic_steps=4000,
        ),
        # a larger model, more data and longer training
        sentiment=SentimentConfig(
            world=SentimentWorldConfig(
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
            ),
            seeds=(0, 1, 2, 3, 4),
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
