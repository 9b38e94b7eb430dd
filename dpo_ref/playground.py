"""The playground's world and trainer: DPO and its relatives on a table of logits, in float64.

The playground page trains in the reader's browser (``docs/assets/javascripts/playground-core.js``);
this module is its twin, step for step, and the browser tests hold the two equal to 1e-9.
The JavaScript writes every gradient out by hand; here the losses are the functions of
:mod:`dpo_ref.losses` and the gradients come from autograd, so agreement checks the
hand-written gradients as well as the bookkeeping.

* **The world.** One prompt with ``answers`` enumerable answers. Answer ``i`` has a
  reference logit in [-2, 2), a true reward ``r*_i`` in [-1, 1) and a length of 1 to 8
  tokens (SimPO divides by it), all drawn from one seeded generator. ``pi_ref`` is the
  softmax of the reference logits and ``pi*_beta ∝ pi_ref · exp(r*/beta)`` is the
  optimum of the KL-regularised objective (DPO paper, eq. 4).
* **The policy** is a logit per answer, starting at ``log pi_ref``, trained by full-batch
  gradient descent with a fixed learning rate.
* **The data** is a list of (chosen, rejected, weight) with weights summing to one.
  ``data="exact"`` is the expectation over every pair of distinct answers drawn from
  ``pi_ref`` (infinite data); an integer ``N`` draws ``N`` pairs from ``pi_ref`` with the
  seeded generator, each of weight ``1/N``. Labels follow Bradley-Terry on ``r*``
  (``P(i ≻ j) = σ(r*_i - r*_j)``) or the higher reward (``"deterministic"``); a flip rate
  then swaps each label with that probability.
* **The methods** are five of the registry's (:mod:`dpo_ref.methods`), under their registry
  names, and two of the playground's own: RLHF as gradient ascent on the exact objective
  ``E_π[r] - beta·KL(π‖π_ref)``, with ``r`` the true reward (:data:`RLHF_GT`) or a
  Bradley-Terry reward model fitted to the same pairs (:data:`RLHF`): one reward per answer,
  ``rm_steps`` steps of gradient descent from 0 on the weighted Bradley-Terry loss plus
  ``rm_l2/2 · ||r||²``.

The generator is the murmur3 finaliser over a Weyl sequence, written with 32-bit integer
operations only, so Python and JavaScript draw identical numbers from a seed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import torch

from dpo_ref import losses
from dpo_ref.errors import UserError
from dpo_ref.methods import CDPO, DPO, IPO, KTO, SIMPO

__all__ = [
    "PLAYGROUND_METHODS",
    "REGISTRY_METHODS",
    "RLHF",
    "RLHF_GT",
    "PRESETS",
    "PlaygroundConfig",
    "Generator",
    "World",
    "Dataset",
    "Run",
    "build_world",
    "build_dataset",
    "train",
    "metrics",
    "frontier",
]

# RLHF with exact gradients, on the true reward or on a reward model: the playground's own, not the registry's
# PPO and PPO-GT, which sample.
RLHF_GT = "rlhf-gt"
RLHF = "rlhf"
# The methods the playground trains, in the order of its menu: the registry's, under their names there, then its own.
REGISTRY_METHODS = (DPO, CDPO, IPO, KTO, SIMPO)
PLAYGROUND_METHODS = (*REGISTRY_METHODS, RLHF_GT, RLHF)
LABEL_RULES = ("bradley-terry", "deterministic")
_MASK32 = 0xFFFFFFFF


class Generator:
    """Uniform numbers in [0, 1) from a 32-bit seed, the same in Python and JavaScript."""

    def __init__(self, seed: int):
        self.state = int(seed) & _MASK32

    def next_uint32(self) -> int:
        self.state = (self.state + 0x9E3779B9) & _MASK32  # Weyl step: the golden ratio in 32 bits
        z = self.state
        z = ((z ^ (z >> 16)) * 0x85EBCA6B) & _MASK32  # murmur3's finaliser mixes every bit
        z = ((z ^ (z >> 13)) * 0xC2B2AE35) & _MASK32
        return z ^ (z >> 16)

    def uniform(self) -> float:
        return self.next_uint32() / 4294967296.0


@dataclass
class PlaygroundConfig:
    """One playground run: the world, the data, the method and its optimiser.

    ``compare`` names a second method trained beside the first on the same data
    (``compare_beta`` and ``compare_lr`` its beta and step size); ``""`` trains one.
    """

    answers: int = 16
    world_seed: int = 1
    data: int | str = "exact"  # "exact" (every pair, weighted) or a number of sampled pairs
    data_seed: int = 0
    labels: str = "bradley-terry"
    flip: float = 0.0  # probability that a label is swapped
    method: str = DPO
    beta: float = 0.5  # DPO/cDPO/KTO/RLHF beta; IPO's tau; SimPO's beta
    compare: str = ""
    compare_beta: float = 0.5
    compare_lr: float = 10.0
    epsilon: float = 0.1  # cDPO's assumed flip rate (label smoothing)
    gamma_ratio: float = 0.5  # SimPO's gamma / beta (gamma = beta / 2, as in the site's experiments)
    lr: float = 10.0  # gradient descent's step size (IPO's squared loss needs about 1 or less)
    steps: int = 500
    rm_steps: int = 500
    rm_lr: float = 5.0
    rm_l2: float = 0.0  # >0 keeps the reward model finite under deterministic labels and many steps
    preset: str = field(default="", compare=False)  # the preset it came from, for the page only

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`UserError` naming the first field that is out of range."""
        if not isinstance(self.answers, int) or not 2 <= self.answers <= 64:
            raise UserError(f"answers must be a whole number from 2 to 64, got {self.answers!r}")
        if self.data != "exact" and (not isinstance(self.data, int) or not 1 <= self.data <= 100_000):
            raise UserError(f"data must be 'exact' or a number of pairs from 1 to 100000, got {self.data!r}")
        if self.labels not in LABEL_RULES:
            raise UserError(f"labels must be one of {', '.join(LABEL_RULES)}, got {self.labels!r}")
        if not 0 <= self.flip < 0.5:
            raise UserError(f"flip must lie in [0, 0.5), got {self.flip!r}")
        for name in ("method", "compare"):
            value = getattr(self, name)
            if value not in PLAYGROUND_METHODS and not (name == "compare" and value == ""):
                raise UserError(f"{name} must be one of {', '.join(PLAYGROUND_METHODS)}, got {value!r}")
        for name in ("beta", "compare_beta", "lr", "compare_lr", "rm_lr"):
            if not getattr(self, name) > 0:
                raise UserError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if not 0 <= self.epsilon < 0.5:
            raise UserError(f"epsilon must lie in [0, 0.5), got {self.epsilon!r}")
        if not self.gamma_ratio >= 0 or not self.rm_l2 >= 0:
            raise UserError("gamma_ratio and rm_l2 must be non-negative numbers")
        if not isinstance(self.steps, int) or not 1 <= self.steps <= 100_000:
            raise UserError(f"steps must be a whole number from 1 to 100000, got {self.steps!r}")

    @classmethod
    def from_dict(cls, values: dict) -> PlaygroundConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown playground setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


# Each preset reproduces, in seconds, a claim the site makes elsewhere; `section` is
# the page it illustrates. The page shows `title` and `claim`; the rest is the run.
PRESETS: dict[str, dict] = {
    "meet-at-optimum": {
        "title": "DPO and RLHF meet at π*β",
        "claim": "On the same preferences, DPO and RLHF with a reward model take different roads to the same policy.",
        "section": "dpo-vs-rlhf.md",
        "config": {"method": DPO, "compare": RLHF, "steps": 300},
    },
    "beta-trade-off": {
        "title": "β's trade-off",
        "claim": "A larger β keeps the policy closer to π_ref: less reward, much less KL.",
        "section": "beta.md",
        "config": {
            "method": DPO,
            "compare": DPO,
            "beta": 0.2,
            "lr": 40.0,
            "compare_beta": 2.0,
            "compare_lr": 1.0,
            "steps": 400,
        },
    },
    "displacement": {
        "title": "Likelihood displacement",
        "claim": "The margin grows while the probability of the answers that were only ever chosen falls.",
        "section": "dpo-loss.md",
        "config": {"method": DPO, "data": 16, "data_seed": 4, "steps": 300},
    },
    "deterministic-labels": {
        "title": "IPO against DPO, deterministic labels",
        "claim": "When the better answer always wins, DPO keeps moving away from π_ref; IPO stops at its target margin.",
        "section": "bigger-picture.md",
        "config": {"method": DPO, "compare": IPO, "labels": "deterministic", "compare_lr": 0.5, "steps": 1000},
    },
}


def preset_config(name: str) -> PlaygroundConfig:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return PlaygroundConfig(**PRESETS[name]["config"], preset=name)


# --------------------------------------------------------------------------- world and data


@dataclass(frozen=True)
class World:
    reference_logps: torch.Tensor  # (n,) float64, log pi_ref
    rewards: torch.Tensor  # (n,) true rewards r*
    lengths: torch.Tensor  # (n,) tokens per answer, 1..8

    @property
    def n(self) -> int:
        return len(self.rewards)

    def optimum_logps(self, beta: float) -> torch.Tensor:
        """``log pi*_beta``: pi_ref tilted by ``exp(r*/beta)``, normalised."""
        return torch.log_softmax(self.reference_logps + self.rewards / beta, 0)


def build_world(config: PlaygroundConfig) -> World:
    g = Generator(config.world_seed)
    n = config.answers
    logits = [4.0 * g.uniform() - 2.0 for _ in range(n)]
    rewards = [2.0 * g.uniform() - 1.0 for _ in range(n)]
    lengths = [1 + math.floor(8.0 * g.uniform()) for _ in range(n)]
    logits = torch.tensor(logits, dtype=torch.float64)
    return World(
        torch.log_softmax(logits, 0),
        torch.tensor(rewards, dtype=torch.float64),
        torch.tensor(lengths, dtype=torch.float64),
    )


@dataclass(frozen=True)
class Dataset:
    chosen: torch.Tensor  # (m,) answer indices
    rejected: torch.Tensor  # (m,)
    weights: torch.Tensor  # (m,) float64, summing to one

    def only_chosen(self, n: int) -> torch.Tensor:
        """Boolean mask of the answers that are chosen in some pair and rejected in none."""
        chosen, rejected = self._seen(self.chosen, n), self._seen(self.rejected, n)
        return chosen & ~rejected

    def only_rejected(self, n: int) -> torch.Tensor:
        chosen, rejected = self._seen(self.chosen, n), self._seen(self.rejected, n)
        return rejected & ~chosen

    def both(self, n: int) -> torch.Tensor:
        return self._seen(self.chosen, n) & self._seen(self.rejected, n)

    def _seen(self, index: torch.Tensor, n: int) -> torch.Tensor:
        mask = torch.zeros(n, dtype=torch.bool)
        mask[index[self.weights > 0]] = True
        return mask


def _preference(config: PlaygroundConfig, r_i: float, r_j: float) -> float:
    """P(i is labelled the winner over j), flips included."""
    if config.labels == "deterministic":
        p = 1.0 if r_i > r_j else 0.0 if r_i < r_j else 0.5
    else:
        p = 1.0 / (1.0 + math.exp(r_j - r_i))
    return (1.0 - config.flip) * p + config.flip * (1.0 - p)


def _draw(cdf: list[float], u: float) -> int:
    for i, c in enumerate(cdf):
        if u < c:
            return i
    return len(cdf) - 1


def build_dataset(config: PlaygroundConfig, world: World) -> Dataset:
    pi = world.reference_logps.exp().tolist()
    r = world.rewards.tolist()
    n = world.n
    chosen, rejected, weights = [], [], []
    if config.data == "exact":
        distinct = 1.0 - sum(p * p for p in pi)  # probability that two draws differ
        for i in range(n):
            for j in range(n):
                if i != j:
                    # drawn as (i, j) or (j, i), then labelled i: 2 pi_i pi_j P(i wins), given i != j
                    w = 2.0 * pi[i] * pi[j] / distinct * _preference(config, r[i], r[j])
                    if w > 0:
                        chosen.append(i), rejected.append(j), weights.append(w)
    else:
        g = Generator(config.data_seed)
        cdf, total = [], 0.0
        for p in pi:
            total += p
            cdf.append(total)
        for _ in range(config.data):
            i, j = _draw(cdf, g.uniform()), _draw(cdf, g.uniform())
            while j == i:  # both drawn again: a pair of distinct answers, as the exact data weighs them
                i, j = _draw(cdf, g.uniform()), _draw(cdf, g.uniform())
            first_wins = g.uniform() < _preference(config, r[i], r[j])
            chosen.append(i if first_wins else j), rejected.append(j if first_wins else i)
            weights.append(1.0 / config.data)
    as_index = lambda v: torch.tensor(v, dtype=torch.long)  # noqa: E731
    return Dataset(as_index(chosen), as_index(rejected), torch.tensor(weights, dtype=torch.float64))


# --------------------------------------------------------------------------- objectives


def fit_reward_model(config: PlaygroundConfig, world: World, data: Dataset) -> torch.Tensor:
    """One reward per answer: gradient descent on the weighted Bradley-Terry loss plus L2."""
    r = torch.zeros(world.n, dtype=torch.float64, requires_grad=True)
    for _ in range(config.rm_steps):
        loss = (data.weights * losses.bradley_terry_loss(r[data.chosen], r[data.rejected])).sum()
        loss = loss + 0.5 * config.rm_l2 * (r * r).sum()
        (grad,) = torch.autograd.grad(loss, r)
        r = (r - config.rm_lr * grad).detach().requires_grad_(True)
    return r.detach()


def objective(method: str, beta: float, config: PlaygroundConfig, world: World, data: Dataset, reward_model):
    """The loss of ``method`` as a function of the policy's log-probs ``(n,)``."""
    ref = world.reference_logps
    c, j, w = data.chosen, data.rejected, data.weights

    def pairs(loss_fn, **kw):
        return lambda logp: (w * loss_fn(logp[c], logp[j], ref[c], ref[j], beta=beta, **kw)).sum()

    if method == DPO:
        return pairs(losses.dpo_loss)
    if method == CDPO:
        return pairs(losses.dpo_loss, label_smoothing=config.epsilon)
    if method == IPO:
        return pairs(losses.ipo_loss)
    if method == KTO:

        def kto(logp):
            kl = (logp.exp() * (logp - ref)).sum().clamp(min=0).detach()  # z0: the exact KL, no gradient
            rows = torch.cat([c, j])
            desirable = torch.cat([torch.ones_like(c, dtype=torch.bool), torch.zeros_like(j, dtype=torch.bool)])
            per_row = losses.kto_loss(logp[rows], ref[rows], desirable, kl, beta=beta)
            return (torch.cat([w, w]) * per_row).sum() / 2

        return kto
    if method == SIMPO:
        lengths = world.lengths
        gamma = beta * config.gamma_ratio
        return lambda logp: (
            w * losses.simpo_loss(logp[c] / lengths[c], logp[j] / lengths[j], beta=beta, gamma=gamma)
        ).sum()
    if method in (RLHF_GT, RLHF):
        reward = world.rewards if method == RLHF_GT else reward_model
        # minus the KL-regularised objective E_pi[r] - beta KL(pi || pi_ref)
        return lambda logp: -(logp.exp() * (reward - beta * (logp - ref))).sum()
    raise UserError(f"unknown playground method {method!r}")


# --------------------------------------------------------------------------- training


@dataclass
class Run:
    """One method's run: the loss before each update, the final log-probs, and its metrics along the way."""

    method: str
    beta: float
    losses: list[float]
    logps: torch.Tensor
    path: list[dict[str, float]] = field(default_factory=list)  # metrics every `every` updates, and at the end


def train(config: PlaygroundConfig, steps: int | None = None, *, every: int = 0) -> list[Run]:
    """Train ``config.method`` (and ``config.compare``) for ``steps`` updates (default ``config.steps``).

    With ``every > 0`` each run also records :func:`metrics` before every ``every``-th
    update and after the last.
    """
    world = build_world(config)
    data = build_dataset(config, world)
    needs_rm = RLHF in (config.method, config.compare)
    reward_model = fit_reward_model(config, world, data) if needs_rm else None
    runs = [(config.method, config.beta, config.lr)]
    if config.compare:
        runs.append((config.compare, config.compare_beta, config.compare_lr))
    out = []
    for method, beta, lr in runs:
        loss_of = objective(method, beta, config, world, data, reward_model)
        theta = world.reference_logps.clone()
        history, path = [], []
        for t in range(config.steps if steps is None else steps):
            if every and t % every == 0:
                path.append(metrics(world, data, torch.log_softmax(theta, 0), beta))
            theta.requires_grad_(True)
            loss = loss_of(torch.log_softmax(theta, 0))
            (grad,) = torch.autograd.grad(loss, theta)
            history.append(loss.item())
            theta = (theta - lr * grad).detach()
        logps = torch.log_softmax(theta, 0)
        if every:
            path.append(metrics(world, data, logps, beta))
        out.append(Run(method, beta, history, logps, path))
    return out


def metrics(world: World, data: Dataset, logps: torch.Tensor, beta: float) -> dict[str, float]:
    """What the playground shows of a policy: its reward and KLs, implicit rewards, and where its mass sits.

    ``chosen_reward`` and ``rejected_reward`` are the data-weighted means of
    ``beta * log(pi/pi_ref)`` over the pairs' chosen and rejected answers; ``mass_*`` is the
    policy's probability on the answers only ever chosen, only ever rejected, or both.
    """
    p = logps.exp()
    implicit = beta * (logps - world.reference_logps)
    chosen = float((data.weights * implicit[data.chosen]).sum() / data.weights.sum())
    rejected = float((data.weights * implicit[data.rejected]).sum() / data.weights.sum())
    n = world.n
    return {
        "reward": float((p * world.rewards).sum()),
        "kl_ref": float((p * (logps - world.reference_logps)).sum()),
        "kl_optimum": float((p * (logps - world.optimum_logps(beta))).sum()),
        "chosen_reward": chosen,
        "rejected_reward": rejected,
        "margin": chosen - rejected,
        "mass_only_chosen": float(p[data.only_chosen(n)].sum()),
        "mass_only_rejected": float(p[data.only_rejected(n)].sum()),
        "mass_both": float(p[data.both(n)].sum()),
    }


def frontier(world: World, betas) -> list[tuple[float, float]]:
    """(KL(pi*_beta || pi_ref), E[r*] under pi*_beta) for each beta: the best any policy can do."""
    points = []
    for beta in betas:
        logps = world.optimum_logps(beta)
        p = logps.exp()
        points.append((float((p * (logps - world.reference_logps)).sum()), float((p * world.rewards).sum())))
    return points
