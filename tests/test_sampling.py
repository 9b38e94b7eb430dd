"""The one sampler (dpo_ref.sampling), pinned on a scripted model whose logits each test chooses.

The rules it keeps for PPO and the sentiment world alike: draws come from the caller's
CPU generator, one multinomial over the batch per step; temperature 0 is greedy; a row
ends at its first EOS, which stays attended, and everything after it is EOS filler with
attention 0; sampling stops once every row has ended; log-probs are read at temperature 1.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from dpo_ref.errors import UserError
from dpo_ref.models import tiny_gpt2
from dpo_ref.sampling import sample

PAD, EOS, A, B = 0, 1, 2, 3  # the scripted vocabulary
NEVER = -math.inf


class ScriptedLM(torch.nn.Module):
    """Row ``b``'s next-token logits at step ``t`` are ``script[b, t]``, whatever the input.

    The cache it hands back is the index of the step, so the sampler's calls can be
    counted; every call's attention mask and position ids are recorded.
    """

    def __init__(self, script: torch.Tensor):
        super().__init__()
        self.script = script  # (rows, steps, vocabulary)
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # a parameter, so the model has a device and a mode
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, input_ids, attention_mask, position_ids, use_cache, logits_to_keep=0, cache=None):
        step = 0 if cache is None else cache + 1
        self.calls.append((attention_mask.clone(), position_ids.clone()))
        return SimpleNamespace(logits=self.script[:, step, None, :], cache=step)


def _logits(*rows: list[float], steps: int) -> torch.Tensor:
    """The same logits at every step for each row: ``(rows, steps, 4)``."""
    return torch.tensor(rows, dtype=torch.float32)[:, None, :].expand(-1, steps, -1).clone()


PROMPTS = torch.tensor([[PAD, A], [A, B]])  # row 0 left-padded
PROMPT_MASK = torch.tensor([[0, 1], [1, 1]])


def test_draws_are_one_multinomial_per_step_from_the_callers_cpu_generator():
    """Tokens A and B at odds 1:3 (EOS impossible): the draws are exactly those of the same seed's
    generator, one ``multinomial`` over the batch per step, and the global RNG is untouched."""
    steps = 6
    model = ScriptedLM(_logits([NEVER, NEVER, 0.0, math.log(3)], [NEVER, NEVER, 0.0, math.log(3)], steps=steps))
    global_state = torch.get_rng_state()
    got = sample(model, PROMPTS, PROMPT_MASK, max_new_tokens=steps, generator=torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), global_state)

    replay = torch.Generator().manual_seed(7)
    probs = torch.tensor([[0.0, 0.0, 0.25, 0.75]] * 2)
    expected = torch.cat([torch.multinomial(probs, 1, generator=replay) for _ in range(steps)], 1)
    assert torch.equal(got.input_ids[:, 2:], expected)
    assert {A, B} <= set(expected.flatten().tolist())  # the seed exercises both outcomes
    # log pi of each drawn token: log 1/4 for A, log 3/4 for B
    n_a = (expected == A).sum(1)
    assert got.logps.tolist() == pytest.approx((n_a * math.log(0.25) + (steps - n_a) * math.log(0.75)).tolist())
    assert got.attention_mask[:, 2:].eq(1).all() and not got.ended.any()


def test_temperature_sharpens_the_draws_and_log_probs_stay_at_temperature_one():
    """At temperature 1/2 the odds 1:3 become 1:9; the log-probs are still the model's own (1:3)."""
    steps = 5
    model = ScriptedLM(_logits([NEVER, NEVER, 0.0, math.log(3)], [NEVER, NEVER, 0.0, math.log(3)], steps=steps))
    got = sample(
        model, PROMPTS, PROMPT_MASK, max_new_tokens=steps, generator=torch.Generator().manual_seed(3), temperature=0.5
    )
    replay = torch.Generator().manual_seed(3)
    probs = torch.tensor([[0.0, 0.0, 0.1, 0.9]] * 2)
    expected = torch.cat([torch.multinomial(probs, 1, generator=replay) for _ in range(steps)], 1)
    assert torch.equal(got.input_ids[:, 2:], expected)
    n_a = (expected == A).sum(1)
    assert got.logps.tolist() == pytest.approx((n_a * math.log(0.25) + (steps - n_a) * math.log(0.75)).tolist())


def test_temperature_zero_is_greedy_and_draws_nothing():
    model = ScriptedLM(_logits([0.0, -1.0, 2.0, 1.0], [0.0, -1.0, 1.0, 2.0], steps=3))
    generator = torch.Generator().manual_seed(0)
    before = generator.get_state()
    got = sample(model, PROMPTS, PROMPT_MASK, max_new_tokens=3, generator=generator, temperature=0)
    assert got.input_ids[:, 2:].tolist() == [[A, A, A], [B, B, B]]
    assert torch.equal(generator.get_state(), before)


def test_after_eos_a_row_holds_masked_filler_that_no_later_token_attends_to():
    """Row 0 is certain to say A, then EOS, then A again if it could; row 1 says B throughout."""
    script = _logits([NEVER, NEVER, 0.0, NEVER], [NEVER, NEVER, NEVER, 0.0], steps=4)
    script[0, 1] = torch.tensor([NEVER, 0.0, NEVER, NEVER])  # step 1 of row 0: EOS
    model = ScriptedLM(script)
    got = sample(
        model, PROMPTS, PROMPT_MASK, max_new_tokens=4, generator=torch.Generator().manual_seed(0), eos_token_id=EOS
    )
    assert got.input_ids.tolist() == [[PAD, A, A, EOS, EOS, EOS], [A, B, B, B, B, B]]
    assert got.attention_mask.tolist() == [[0, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]  # the EOS is attended
    assert got.ended.tolist() == [True, False]
    assert got.completion_ids(prompt_length=2) == [[A, EOS], [B, B, B, B]]
    assert got.logps.tolist() == [0.0, 0.0]  # every token was certain; the filler adds nothing
    # the model saw the same mask while sampling: the last call reads the filler at column 4 as masked
    assert len(model.calls) == 4
    assert torch.equal(model.calls[-1][0], got.attention_mask[:, :5])
    # positions count attended tokens only: the left-padded row's first sampled token sits at position 1
    assert model.calls[1][1].tolist() == [[1], [2]]


def test_sampling_stops_once_every_row_has_ended():
    model = ScriptedLM(_logits([NEVER, 0.0, NEVER, NEVER], [NEVER, 0.0, NEVER, NEVER], steps=5))
    got = sample(model, PROMPTS, PROMPT_MASK, max_new_tokens=5, generator=torch.Generator(), eos_token_id=EOS)
    assert got.input_ids.shape == (2, 3) and got.input_ids[:, 2].eq(EOS).all() and got.ended.all()
    assert len(model.calls) == 1


def test_without_an_eos_token_every_row_runs_to_the_limit():
    model = ScriptedLM(_logits([NEVER, 0.0, NEVER, NEVER], [NEVER, NEVER, 0.0, NEVER], steps=3))
    got = sample(model, PROMPTS, PROMPT_MASK, max_new_tokens=3, generator=torch.Generator())
    assert got.input_ids[:, 2:].tolist() == [[EOS] * 3, [A] * 3]  # EOS is an ordinary token here
    assert got.attention_mask[:, 2:].eq(1).all() and not got.ended.any()


def test_repeated_calls_give_the_same_samples_and_restore_the_models_mode():
    lm = tiny_gpt2(8, n_layer=1, n_embd=16, n_head=2, n_positions=16, seed=0, eos_token_id=EOS).train()
    prompts, mask = torch.tensor([[PAD, 2, 3], [4, 5, 6]]), torch.tensor([[0, 1, 1], [1, 1, 1]])
    runs = [
        sample(lm, prompts, mask, max_new_tokens=6, generator=torch.Generator().manual_seed(s), eos_token_id=EOS)
        for s in (5, 5, 6)
    ]
    assert lm.training, "the sampler runs in eval mode and puts the model back as it was"
    assert torch.equal(runs[0].input_ids, runs[1].input_ids) and torch.equal(runs[0].logps, runs[1].logps)
    assert not torch.equal(runs[0].input_ids, runs[2].input_ids)


def test_the_kv_cache_samples_what_running_the_whole_sequence_again_would():
    """A tiny GPT-2 whose EOS gets a third of the mass: rows end at different steps, and the cached,
    masked sampler draws the same tokens with the same log-probs as a plain loop over full sequences."""
    lm = tiny_gpt2(6, n_layer=1, n_embd=16, n_head=2, n_positions=16, seed=0, eos_token_id=EOS).eval()
    head = torch.nn.Linear(16, 6)
    with torch.no_grad():
        head.weight.copy_(lm.lm_head.weight)
        head.bias.zero_()
        head.bias[EOS] = 1.5
    lm.lm_head = head
    prompts = torch.tensor([[PAD, 2], [3, 4], [2, 2], [PAD, 4]])
    mask = prompts.ne(PAD).long()
    got = sample(lm, prompts, mask, max_new_tokens=5, generator=torch.Generator().manual_seed(1), eos_token_id=EOS)

    generator, ids, attention = torch.Generator().manual_seed(1), prompts, mask
    ended, logps = torch.zeros(4, dtype=torch.bool), torch.zeros(4)
    with torch.no_grad():
        for _ in range(got.input_ids.shape[1] - 2):
            positions = (attention.cumsum(1) - 1).clamp(min=0)
            logits = lm(input_ids=ids, attention_mask=attention, position_ids=positions).logits[:, -1]
            token = torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)
            token = torch.where(ended, EOS, token)
            logps += torch.where(ended, 0.0, logits.log_softmax(-1).gather(1, token[:, None]).squeeze(1))
            ids, attention = torch.cat([ids, token[:, None]], 1), torch.cat([attention, (~ended).long()[:, None]], 1)
            ended |= token == EOS
    assert torch.equal(got.input_ids, ids) and torch.equal(got.attention_mask, attention)
    assert got.logps.tolist() == pytest.approx(logps.tolist(), abs=1e-5)
    assert len({len(c) for c in got.completion_ids(prompt_length=2)}) > 1, (
        "the seed should give rows of several lengths"
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        pytest.param({"temperature": -0.5}, UserError, "temperature must be", id="negative temperature"),
        pytest.param({"temperature": math.nan}, UserError, "temperature must be", id="NaN temperature"),
        pytest.param({"max_new_tokens": 0}, UserError, "max_new_tokens must be", id="no new tokens"),
        pytest.param({"generator": None}, ValueError, "CPU torch.Generator", id="no generator"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, words):
    model = ScriptedLM(_logits([0.0] * 4, [0.0] * 4, steps=2))
    arguments = {"max_new_tokens": 2, "generator": torch.Generator(), **kwargs}
    with pytest.raises(error, match=words):
        sample(model, PROMPTS, PROMPT_MASK, **arguments)
