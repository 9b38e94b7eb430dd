"""The exact world's studies beyond the frontier: what the field learned after the DPO paper.

Each is exact, which no sampled experiment can be: every reward, KL and probability is a
sum over the enumerated responses. :func:`run_all` runs them for one seed; their results
go under ``studies`` in ``exact_seed<k>.json``:

``recovery``
    DPO at ``beta`` on ``n`` fresh pairs for each ``n`` of ``recovery_n_pairs``: how close
    it gets to the closed-form optimum pi*_beta (``kl_to_optimum``) as data grows, at the
    same number of updates and at the same number of epochs.
``deterministic``
    DPO and IPO at ``beta`` on pairs labelled by the argmax of r* (IPO's argument, Azar et
    al. 2023, arXiv 2310.12036), trained 4x longer: does the KL keep growing?
``online``
    Online DPO (Guo et al. 2024, arXiv 2402.04792; Xiong et al. 2023, arXiv 2312.11456):
    ``online_rounds`` rounds, each labelling fresh pairs sampled from the current policy,
    the same number of labelled pairs and updates as offline DPO at ``beta``.
``shift``
    Pairs sampled from pi_ref at temperature ``shift_temperature`` instead of from pi_ref:
    DPO from pi_ref as it is, and DPO after Preferred-FT on the chosen answers (the DPO
    paper's recipe when the pairs do not come from the reference, section 4).

Likelihood displacement (Razin et al. 2024, arXiv 2410.08847; Pal et al. 2024, arXiv
2402.13228) is measured on every DPO run of the frontier: :func:`displacement` is part
of its evaluation, so its trajectory says, at each step, where the probability mass is.
"""

from __future__ import annotations

import torch

from dpo_ref.experiments.exact_runner import Runner
from dpo_ref.methods import DPO, IPO, PREFERRED_FT, TrainingData

__all__ = ["run_all", "count_runs", "displacement"]


def count_runs(cfg) -> int:
    return 2 * len(cfg.recovery_n_pairs) + 2 + cfg.online_rounds + 3  # recovery, deterministic, online, shift


def run_all(run: Runner, pairs: dict[str, torch.Tensor]) -> dict:
    return {
        "recovery": recovery(run),
        "deterministic": deterministic(run),
        "online": online(run),
        "shift": shift(run),
    }


def recovery(run: Runner) -> list[dict]:
    """DPO at ``beta`` on ``n`` fresh pairs, for each ``n``: its KL to pi*_beta, twice, so that data size is not
    read for epochs: with ``steps`` updates whatever ``n`` (``budget: "updates"``: fewer pairs are seen more
    often), and with the epochs the largest ``n`` gets in ``steps`` updates (``budget: "epochs"``)."""
    cfg, world = run.cfg, run.world
    out = []
    for n in cfg.recovery_n_pairs:
        data = TrainingData(
            world.preference_pairs(n, seed=1000 + run.seed),
            reference=world.reference,
            device=run.device,
            batch_size=1024,
        )
        same_epochs = max(1, round(cfg.steps * n / max(cfg.recovery_n_pairs)))
        for budget, steps in (("updates", cfg.steps), ("epochs", same_epochs)):
            out.append(
                run.offline(
                    DPO, data, beta=cfg.beta, steps=steps, record={"n_pairs": n, "budget": budget, "steps": steps}
                )
            )
    return out


def deterministic(run: Runner) -> list[dict]:
    """DPO and IPO at ``beta`` on argmax-labelled pairs, trained ``deterministic_steps`` updates."""
    cfg, world = run.cfg, run.world
    pairs = world.preference_pairs(cfg.n_pairs, seed=2000 + run.seed, deterministic=True)
    data = TrainingData(pairs, reference=world.reference, device=run.device, batch_size=1024)
    return [run.offline(name, data, beta=cfg.beta, steps=cfg.deterministic_steps) for name in (DPO, IPO)]


def online(run: Runner) -> dict:
    """Online DPO at ``beta``: each round samples pairs from the current policy, labels them by
    Bradley-Terry on r*, and trains on every pair labelled so far; the reference stays pi_ref.

    Same budget as offline DPO at ``beta`` (its run in the frontier): ``n_pairs`` labelled
    pairs and ``steps`` updates in all, split evenly over the rounds.
    """
    cfg, world = run.cfg, run.world
    policy, collected, rounds = world.new_policy(), [], []
    per_round = cfg.n_pairs // cfg.online_rounds
    for r in range(cfg.online_rounds):
        logps = world.policy_logps(policy)  # sample from the current policy, exactly
        collected.append(world.preference_pairs(per_round, seed=3000 + 100 * run.seed + r, logps=logps))
        pairs = {k: torch.cat([c[k] for c in collected]) for k in collected[0]}
        data = TrainingData(pairs, reference=world.reference, device=run.device, batch_size=1024)
        record, policy = run.train(
            DPO,
            data,
            policy=policy,
            steps=cfg.steps // cfg.online_rounds,
            beta=cfg.beta,
            record={"round": r, "n_pairs": len(pairs["prompt_index"])},
        )
        rounds.append(record)
    return {"beta": cfg.beta, "rounds": rounds, "final": rounds[-1]["final"]}


def shift(run: Runner) -> dict:
    """DPO on pairs from a policy other than pi_ref, with and without Preferred-FT first."""
    cfg, world = run.cfg, run.world
    shifted = (world.reference_logps / cfg.shift_temperature).log_softmax(-1)  # pi_ref at a temperature
    pairs = world.preference_pairs(cfg.n_pairs, seed=4000 + run.seed, logps=shifted)
    plain = TrainingData(pairs, reference=world.reference, device=run.device, batch_size=1024)
    as_is = run.offline(DPO, plain, beta=cfg.beta, record={"start": "reference"})
    sft_record, sft = run.train(PREFERRED_FT, plain, steps=cfg.shift_sft_steps)
    sft_reference = _frozen_copy(sft)
    data = TrainingData(pairs, reference=sft_reference, device=run.device, batch_size=1024)
    after_sft = run.train(DPO, data, policy=sft, beta=cfg.beta, record={"start": PREFERRED_FT})[0]
    return {
        "temperature": cfg.shift_temperature,
        "data_kl_to_reference": float((shifted.exp() * (shifted - world.reference_logps)).sum(1).mean()),
        DPO: as_is,
        "preferred_ft": sft_record,
        "dpo_after_preferred_ft": after_sft,
    }


def _frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(model).eval().requires_grad_(False)


# --------------------------------------------------------------------------- likelihood displacement


def displacement(world, logps: torch.Tensor, pairs: dict[str, torch.Tensor]) -> dict[str, float]:
    """Where a policy's probability mass is, against the answers of its training pairs.

    Every response of a prompt is in one class: chosen in some pair and never rejected,
    rejected and never chosen, both (chosen in one pair, rejected in another), or unseen
    (in no pair). Returns the policy's mass on each class (``mass/<class>``, averaged over
    prompts; the reference's is the starting point), the mass on unseen answers worse
    than the reference's average answer (``mass/unseen_low_reward``), and the mean change
    of the chosen and rejected answers' log-probabilities from the reference
    (``logp_change/chosen``, ``logp_change/rejected``): the chosen answers' probability
    can fall while DPO's margin grows.
    """
    classes = _answer_classes(world, pairs)
    p = logps.exp()  # (P, R)
    worse = world.true_rewards < (world.reference_logps.exp() * world.true_rewards).sum(1, keepdim=True)
    out = {f"mass/{name}": float((p * mask).sum(1).mean()) for name, mask in classes.items()}
    out["mass/unseen_low_reward"] = float((p * (classes["unseen"] & worse)).sum(1).mean())
    delta = logps - world.reference_logps
    prompt = pairs["prompt_index"]
    out["logp_change/chosen"] = float(delta[prompt, pairs["chosen_index"]].mean())
    out["logp_change/rejected"] = float(delta[prompt, pairs["rejected_index"]].mean())
    return out


def _answer_classes(world, pairs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    chosen = torch.zeros(world.n_prompts, world.n_responses, dtype=torch.bool)
    rejected = torch.zeros_like(chosen)
    chosen[pairs["prompt_index"], pairs["chosen_index"]] = True
    rejected[pairs["prompt_index"], pairs["rejected_index"]] = True
    return {
        "chosen": chosen & ~rejected,
        "rejected": rejected & ~chosen,
        "both": chosen & rejected,
        "unseen": ~chosen & ~rejected,
    }
