"""Named experiment configurations: ``smoke`` (tests, about a minute), ``cpu`` (committed
results, 2 cores), ``gpu`` (larger, one GPU). Plain dataclasses; every field says why.

Every method gets the same training budget (``steps``, ``batch_size``,
``learning_rate``) and the hyperparameters its paper recommends; nothing is tuned per
method, and nothing is tuned toward a result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
class ExperimentConfig:
    name: str  # "smoke", "cpu" or "gpu"; also the results sub-folder
    # CPU threads for torch: these models are tiny, a second thread buys little, and on
    # shared cores spinning threads made runs ten times slower (measured). None: torch's default.
    torch_threads: int | None = 1
    exact: ExactExperimentConfig = field(default_factory=ExactExperimentConfig)  # the exact-world experiments


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
    return ExperimentConfig(name="smoke", exact=exact)


def _cpu() -> ExperimentConfig:
    return ExperimentConfig(
        name="cpu",
        exact=ExactExperimentConfig(ppo=PPOConfig(rollout_batch_size=64, minibatch_size=32, max_new_tokens=4)),
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
    )


CONFIGS = {"smoke": _smoke, "cpu": _cpu, "gpu": _gpu}


def get_config(name: str) -> ExperimentConfig:
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; choose one of {sorted(CONFIGS)}")
    return CONFIGS[name]()
