"""PPO's rollouts before and after the KV cache: sampled tokens per second.

A rollout samples ``max_new_tokens`` tokens after each of ``rollout_batch_size`` prompts.
Before, every new token ran the whole sequence through the model again (O(T^2) work per
completion); :func:`dpo_ref.sampling.sample` runs only the new token and reads
the earlier keys and values from the cache. Both are timed here on the sentiment world's
PPO rollouts (the ``cpu`` configuration's model, 64 left-padded review prefixes, 40 new
tokens), interleaved, and checked to sample the same tokens from the same generator.
"""

from __future__ import annotations

import statistics
import time

import torch

__all__ = ["full_recompute", "with_cache", "measure_rollouts"]


@torch.no_grad()
def full_recompute(lm, ids, attention, cfg, generator):
    """The rollout loop as it was before the cache: the whole sequence again for every token."""
    from dpo_ref.models import position_ids

    finished = torch.zeros(len(ids), dtype=torch.bool, device=ids.device)
    for _ in range(cfg.max_new_tokens):
        logits = lm(input_ids=ids, attention_mask=attention, position_ids=position_ids(attention)).logits
        probs = torch.softmax(logits[:, -1].float() / cfg.temperature, dim=-1).cpu()
        token = torch.multinomial(probs, 1, generator=generator).squeeze(1).to(ids.device)
        ids = torch.cat([ids, token[:, None]], 1)
        attention = torch.cat([attention, (~finished).long()[:, None]], 1)
        if cfg.eos_token_id is not None:
            finished |= token == cfg.eos_token_id
    return ids, attention


@torch.no_grad()
def with_cache(lm, ids, attention, cfg, generator):
    """The package's sampler (:func:`dpo_ref.sampling.sample`), called as :func:`full_recompute` is."""
    from dpo_ref.sampling import sample

    sampled = sample(
        lm,
        ids,
        attention,
        max_new_tokens=cfg.max_new_tokens,
        generator=generator,
        temperature=cfg.temperature,
        eos_token_id=cfg.eos_token_id,
    )
    return sampled.input_ids, sampled.attention_mask


def measure_rollouts(repeats: int = 5, log=print) -> dict:
    from dpo_ref.experiments.configs import get_config
    from dpo_ref.models import tiny_gpt2
    from dpo_ref.runtime import seeded_generator
    from dpo_ref.train.ppo import PPOConfig
    from dpo_ref.worlds import sentiment

    experiment = get_config("cpu").sentiment
    world = experiment.world
    tokenizer = sentiment.build_tokenizer()
    lm = tiny_gpt2(
        len(tokenizer),
        n_layer=world.n_layer,
        n_embd=world.n_embd,
        n_head=world.n_head,
        n_positions=world.n_positions,
        seed=0,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ).eval()
    prompts = sentiment.make_prompts(
        sentiment.generate_corpus(experiment.ppo_rollout_batch_size, seed=1), tokenizer, seed=2
    )
    ids, attention = sentiment.left_padded_prompts(prompts, tokenizer.pad_token_id)
    cfg = PPOConfig(
        max_new_tokens=world.max_new_tokens, rollout_batch_size=len(ids), minibatch_size=len(ids), eos_token_id=None
    )  # fmt: skip  (no early stop: both loops sample every token)
    tokens = len(ids) * cfg.max_new_tokens
    rates = {"before": [], "after": []}
    samples = {}
    for r in range(repeats):
        for name, sample in (("before", full_recompute), ("after", with_cache))[:: 1 if r % 2 == 0 else -1]:
            start = time.perf_counter()
            with torch.no_grad():
                samples[name] = sample(lm, ids, attention, cfg, seeded_generator(r))[0]
            rates[name].append(tokens / (time.perf_counter() - start))
        log(f"rollouts {r + 1}/{repeats}: {rates['before'][-1]:.0f} -> {rates['after'][-1]:.0f} tokens/s")
    paired = [a / b for a, b in zip(rates["after"], rates["before"])]
    return {
        "model": {"n_layer": world.n_layer, "n_embd": world.n_embd, "vocab_size": len(tokenizer)},
        "rollout_batch_size": len(ids),
        "max_new_tokens": cfg.max_new_tokens,
        "tokens_per_s_before": statistics.median(rates["before"]),
        "tokens_per_s_after": statistics.median(rates["after"]),
        "speedup": statistics.median(paired),
        "speedup_runs": paired,
        "identical_samples_last_run": bool(torch.equal(samples["before"], samples["after"])),
        "torch_threads": torch.get_num_threads(),
    }
