"""The exact world: a response space small enough to enumerate, so nothing is estimated.

* Tokens ``0 .. K-1`` serve for prompts and responses alike, and the model's vocabulary
  is exactly these ``K`` tokens, so a policy's probabilities over the ``K**L`` responses
  of length ``L`` sum to one (no probability leaks to other tokens or lengths).
* A few prompts of ``prompt_length`` tokens, drawn uniformly.
* A *known* distribution ``q(y|x)``, a prompt-specific Markov chain; a tiny GPT-2 trained
  by SFT on samples of ``q`` is the reference policy ``pi_ref``. Everything afterwards
  is measured against the trained model's own exact probabilities, not against ``q``.
* A known reward ``r*(x, y) = sum_t w_x[t, y_t]`` (a weight per prompt, position and token).
* The optimum of the RLHF objective (DPO paper eq. 4),
  ``pi*_beta(y|x) = pi_ref(y|x) exp(r*(x,y)/beta) / Z(x)``, is a softmax over the
  enumerated responses; sweeping ``beta`` gives the optimal reward-versus-KL frontier.
* Preference pairs: two responses sampled from ``pi_ref``, labelled by Bradley-Terry on
  ``r*`` (``P(y1 > y2) = sigma(r*1 - r*2)``, DPO paper eq. 1) or deterministically (the
  higher ``r*`` wins), the setting of IPO's argument against DPO.

Arrays over the world are ``(P, R)``: prompt index by response index, where response
``i`` is the ``i``-th tuple of ``itertools.product(range(K), repeat=L)``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from dpo_ref.errors import UserError
from dpo_ref.evaluate import optimal_logps
from dpo_ref.logps import IGNORE_INDEX, label_logps
from dpo_ref.models import tiny_gpt2
from dpo_ref.runtime import resolve_device, seeded_generator
from dpo_ref.train import TrainConfig, train_sft

__all__ = ["ExactWorldConfig", "ExactWorld", "build_exact_world"]


@dataclass
class ExactWorldConfig:
    """The world's sizes, its reference model and how that model is trained."""

    vocab_size: int = 6  # K tokens; with L = 4 that is 1,296 responses per prompt (6 to 8 keep one forward pass)
    response_length: int = 4  # L, every response has exactly this many tokens (4 or 5)
    n_prompts: int = 4  # distinct prompts, drawn uniformly ("a handful")
    prompt_length: int = 2  # tokens per prompt
    reward_std: float = 0.5  # std of each weight w_x[t, y]; r* sums L of them, so std(r*) = 1 for L = 4
    reference_logit_std: float = 1.5  # std of q's Markov logits: larger makes pi_ref peakier
    n_layer: int = 2  # the reference GPT-2's depth
    n_embd: int = 32  # and width: about 30k parameters, enough to fit q closely
    n_head: int = 4  # attention heads (n_embd must be divisible by it)
    pretrain_samples: int = 20000  # SFT rows sampled from q
    pretrain_steps: int = 400  # SFT updates of the reference
    pretrain_batch_size: int = 128  # rows per SFT update
    pretrain_learning_rate: float = 3e-3  # AdamW; fits q to KL ~0.07 in 400 steps (measured)
    seed: int = 0  # one seed for prompts, q, r*, the SFT data and the model's initialisation


class ExactWorld:
    """A built exact world. Use :func:`build_exact_world` to make one."""

    def __init__(self, config: ExactWorldConfig, reference: torch.nn.Module, device: torch.device):
        self.config, self.device = config, device
        self.reference = reference.to(device).eval() if reference is not None else None
        K, L, P = config.vocab_size, config.response_length, config.n_prompts
        g = seeded_generator(config.seed, 1)
        if K**config.prompt_length < P:
            raise UserError(f"n_prompts={P} exceeds the {K**config.prompt_length} distinct prompts")
        codes = torch.randperm(K**config.prompt_length, generator=g)[:P]
        self.prompts = _digits(codes, K, config.prompt_length)  # (P, Lp)
        self.responses = torch.tensor(list(itertools.product(range(K), repeat=L)))  # (R, L)
        weights = torch.randn(P, L, K, generator=g, dtype=torch.float64) * config.reward_std  # w_x[t, y]
        self.true_rewards = weights[:, torch.arange(L)[None, :], self.responses].sum(-1)  # (P, R)
        first = torch.randn(P, K, generator=g, dtype=torch.float64) * config.reference_logit_std
        transition = torch.randn(P, K, K, generator=g, dtype=torch.float64) * config.reference_logit_std
        log_first, log_trans = first.log_softmax(-1), transition.log_softmax(-1)
        y = self.responses
        q = log_first[:, y[:, 0]]  # (P, R)
        for t in range(1, L):
            q = q + log_trans[:, y[:, t - 1], y[:, t]]
        self.known_logps = q  # log q(y|x), (P, R): what the reference was trained to imitate
        self.reference_logps = self.policy_logps(self.reference) if reference is not None else None

    # ---------------------------------------------------------------- sizes and sequences

    @property
    def n_prompts(self) -> int:
        return self.prompts.shape[0]

    @property
    def n_responses(self) -> int:
        return self.responses.shape[0]

    def rows(self, prompt_index: torch.Tensor, response_index: torch.Tensor) -> dict[str, torch.Tensor]:
        """``input_ids``, ``attention_mask``, ``labels`` (prompt masked) of the given pairs of indices."""
        ids = torch.cat([self.prompts[prompt_index], self.responses[response_index]], 1)  # (N, Lp + L)
        labels = ids.clone()
        labels[:, : self.config.prompt_length] = IGNORE_INDEX
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}

    def all_rows(self) -> dict[str, torch.Tensor]:
        """Every (prompt, response) sequence, prompt-major: row ``p * R + i``."""
        P, R = self.n_prompts, self.n_responses
        return self.rows(torch.arange(P).repeat_interleave(R), torch.arange(R).repeat(P))

    def index_of(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt and response indices of ``(N, Lp + L)`` token rows (the inverse of :meth:`rows`)."""
        K, Lp = self.config.vocab_size, self.config.prompt_length
        ids = input_ids.cpu()
        prompt_codes = _code(ids[:, :Lp], K)
        table = _code(self.prompts, K)
        match = prompt_codes[:, None] == table[None, :]  # (N, P)
        if not bool(match.any(1).all()):
            raise ValueError("a row's prompt is not one of the world's prompts")
        return match.float().argmax(1), _code(ids[:, Lp:], K)

    # ---------------------------------------------------------------- exact quantities

    @torch.no_grad()
    def policy_logps(self, model: torch.nn.Module, *, batch_size: int = 8192) -> torch.Tensor:
        """``log pi(y|x)`` for every prompt and response, ``(P, R)`` float64, by enumeration.

        A causal model's next-token distribution after a prefix does not depend on what
        follows it, so the last token needs no rows of its own: one pass over each prompt
        with each response minus its last token scores all K last tokens at once, K times
        fewer rows than scoring every response (the exact evaluation of every run).
        """
        model.eval()
        P, K, Lp = self.n_prompts, self.config.vocab_size, self.config.prompt_length
        stems = self.responses[::K, :-1]  # responses count their last token fastest: every stem once, in order
        ids = torch.cat([self.prompts.repeat_interleave(len(stems), 0), stems.repeat(P, 1)], 1)
        out = []
        for start in range(0, len(ids), batch_size):
            part = ids[start : start + batch_size].to(self.device)
            logits = model(input_ids=part, attention_mask=torch.ones_like(part)).logits
            if logits.shape[-1] != K:
                raise ValueError(
                    f"the policy has {logits.shape[-1]} tokens and the world {K}: its vocabulary must be "
                    "exactly the world's tokens"
                )
            # positions Lp-1 .. Lp+L-2 predict response tokens 1 .. L: the stem's tokens, then every last token
            logits = logits[:, Lp - 1 :].float()  # (n, L, K)
            stem = label_logps(logits[:, :-1], part[:, Lp:]).sum(1)  # (n,)
            n = len(part)  # the last position scored with each of the K tokens as its label:
            every_last = label_logps(logits[:, -1:].expand(n, K, K), torch.arange(K, device=part.device).expand(n, K))
            out.append((stem[:, None] + every_last).double().cpu())  # (n, K): one row per stem
        logps = torch.cat(out).view(self.n_prompts, self.n_responses)
        return logps - logps.logsumexp(1, keepdim=True)  # remove float32 rounding so sums are exact to float64

    def optimal_logps(self, beta: float) -> torch.Tensor:
        """``log pi*_beta(y|x)``, DPO paper eq. (4): ``pi_ref exp(r*/beta) / Z``."""
        return optimal_logps(self.reference_logps, self.true_rewards, beta)

    def optimal_point(self, beta: float) -> dict[str, float]:
        """Exact reward and KL to the reference of ``pi*_beta``."""
        from dpo_ref.evaluate import expected_value, kl_divergence

        logps = self.optimal_logps(beta)
        return {
            "beta": beta,
            "kl": kl_divergence(logps, self.reference_logps),
            "reward": expected_value(logps, self.true_rewards),
        }

    def frontier(self, betas) -> list[dict[str, float]]:
        """The optimal reward-versus-KL frontier: one exact point per beta."""
        return [self.optimal_point(float(b)) for b in betas]

    def optimal_reward_at_kl(self, kl: float) -> float:
        """The largest exact expected reward any policy reaches with ``KL(pi || pi_ref) <= kl``.

        The frontier's policies are ``pi*_beta``; their KL falls as beta grows, so beta is
        found by bisection on ``log beta``. Beyond the largest reachable KL the answer
        is the best reward at all (the argmax policy).
        """
        if kl <= 0:
            return self.optimal_point(1e6)["reward"]
        lo, hi = math.log(1e-4), math.log(1e6)  # KL(lo) large, KL(hi) ~ 0
        if self.optimal_point(math.exp(lo))["kl"] <= kl:
            return self.optimal_point(math.exp(lo))["reward"]
        for _ in range(60):
            mid = (lo + hi) / 2
            if self.optimal_point(math.exp(mid))["kl"] > kl:
                lo = mid
            else:
                hi = mid
        return self.optimal_point(math.exp(hi))["reward"]

    def true_reward_fn(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``r*(x, y)`` of token rows, ``(N,)`` float32: the ground-truth reward for PPO-GT."""
        p, i = self.index_of(input_ids)
        return self.true_rewards[p, i].float().to(input_ids.device)

    # ---------------------------------------------------------------- data

    def sample_responses(self, n: int, generator: torch.Generator, *, logps: torch.Tensor | None = None):
        """``n`` prompts drawn uniformly and one response each from ``exp(logps)`` (default pi_ref)."""
        logps = self.reference_logps if logps is None else logps
        prompt_index = torch.randint(self.n_prompts, (n,), generator=generator)
        probs = logps.exp()[prompt_index]  # (n, R)
        return prompt_index, torch.multinomial(probs, 1, generator=generator).squeeze(1)

    def preference_pairs(
        self, n: int, *, seed: int, deterministic: bool = False, logps: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """``n`` pairs ``y1, y2 ~ pi(.|x)``, labelled by Bradley-Terry on ``r*`` or by its argmax.

        ``pi`` is ``exp(logps)`` (``(P, R)``), by default the reference.

        Pairs with ``y1 == y2`` are redrawn (chosen == rejected teaches nothing and is
        rejected by data validation). Deterministic ties (equal ``r*``) are redrawn too.
        Columns: the paired keys of :mod:`dpo_ref.logps`, plus ``prompt_index``,
        ``chosen_index``, ``rejected_index``.
        """
        g = seeded_generator(self.config.seed, seed, 2)
        sampled = (self.reference_logps if logps is None else logps).exp()  # (P, R)
        prompt, first, second = [], [], []
        while sum(len(p) for p in prompt) < n:
            p = torch.randint(self.n_prompts, (n,), generator=g)
            probs = sampled[p]  # (n, R)
            y = torch.multinomial(probs, 2, replacement=True, generator=g)  # (n, 2)
            r = self.true_rewards[p[:, None], y]  # (n, 2)
            keep = (y[:, 0] != y[:, 1]) & (r[:, 0] != r[:, 1])
            prompt.append(p[keep])
            first.append(y[keep, 0])
            second.append(y[keep, 1])
        p, y1, y2 = (torch.cat(t)[:n] for t in (prompt, first, second))
        margin = self.true_rewards[p, y1] - self.true_rewards[p, y2]
        if deterministic:
            first_wins = margin > 0
        else:
            first_wins = torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(margin)
        chosen, rejected = torch.where(first_wins, y1, y2), torch.where(first_wins, y2, y1)
        c, r = self.rows(p, chosen), self.rows(p, rejected)
        return {
            **{f"chosen_{k}": v for k, v in c.items()},
            **{f"rejected_{k}": v for k, v in r.items()},
            "prompt_index": p,
            "chosen_index": chosen,
            "rejected_index": rejected,
        }

    def new_policy(self) -> torch.nn.Module:
        """A copy of the reference, the starting point of every fine-tuning method."""
        import copy

        policy = copy.deepcopy(self.reference)
        for p in policy.parameters():
            p.requires_grad_(True)
        return policy


def _digits(codes: torch.Tensor, base: int, length: int) -> torch.Tensor:
    """Integers -> their ``length`` base-``base`` digits, most significant first."""
    powers = base ** torch.arange(length - 1, -1, -1)
    return (codes[:, None] // powers) % base


def _code(digits: torch.Tensor, base: int) -> torch.Tensor:
    powers = base ** torch.arange(digits.shape[1] - 1, -1, -1)
    return (digits.long() * powers).sum(1)


def build_exact_world(
    config: ExactWorldConfig | None = None, *, device: str = "auto", reference_state: dict | None = None
) -> ExactWorld:
    """Make the world: prompts, ``q``, ``r*``, and the reference GPT-2 trained by SFT on samples of ``q``.

    ``reference_state``: the state dict of a reference already trained for this ``config``
    (another seed's), loaded instead of training it again.
    """
    config = config or ExactWorldConfig()
    dev = resolve_device(device)
    world = ExactWorld(config, reference=None, device=dev)  # q and r* need no model
    g = seeded_generator(config.seed, 3)
    prompt_index, response_index = world.sample_responses(config.pretrain_samples, g, logps=world.known_logps)
    data = world.rows(prompt_index, response_index)
    model = tiny_gpt2(
        config.vocab_size,
        n_layer=config.n_layer,
        n_embd=config.n_embd,
        n_head=config.n_head,
        n_positions=config.prompt_length + config.response_length,
        seed=config.seed,
    )
    train = TrainConfig(
        steps=config.pretrain_steps,
        batch_size=config.pretrain_batch_size,
        learning_rate=config.pretrain_learning_rate,
        seed=config.seed,
        device=str(dev),
        log_every=config.pretrain_steps,
    )
    if reference_state is None:
        reference = train_sft(model, data, train).model
    else:
        model.load_state_dict(reference_state)
        reference = model.to(dev)
    for p in reference.parameters():
        p.requires_grad_(False)
    world.reference = reference.eval()
    world.reference_logps = world.policy_logps(reference)
    return world
