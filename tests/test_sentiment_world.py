"""The sentiment world: corpus, tokenizer, judge, pairs, sampled KL, and the smoke run."""

import copy
import itertools
import math

import pytest
import torch

from dpo_ref.experiments import get_config
from dpo_ref.models import tiny_gpt2
from dpo_ref.worlds import sentiment as world


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run faster on one thread (see ExperimentConfig.torch_threads)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer():
    return world.build_tokenizer()


def _model(tokenizer, seed=0):
    return tiny_gpt2(
        len(tokenizer),
        n_layer=1,
        n_embd=32,
        n_head=2,
        seed=seed,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ).eval()


# --------------------------------------------------------------------------- corpus


def test_corpus_is_deterministic_and_seed_dependent():
    assert world.generate_corpus(50, seed=3) == world.generate_corpus(50, seed=3)
    assert world.generate_corpus(50, seed=3) != world.generate_corpus(50, seed=4)


def test_corpus_is_varied_and_balanced():
    reviews = world.generate_corpus(2000, seed=0)
    assert len(set(reviews)) > 1950
    scores = world.VaderJudge()(reviews)
    positive = sum(s > 0 for s in scores) / len(scores)
    assert 0.35 < positive < 0.65  # both sentiments well represented
    assert all(2 <= r.count(".") + r.count("!") <= 4 for r in reviews)


def test_word_lists_agree_with_vader_lexicon():
    world.check_vocabulary()  # raises on a misfiled word


def test_word_choice_controls_sentiment():
    judge = world.VaderJudge()
    rng_words = {"positive": world.POSITIVE_ADJECTIVES, "negative": world.NEGATIVE_ADJECTIVES}
    for sign, words in ((1, rng_words["positive"]), (-1, rng_words["negative"])):
        scores = judge([f"the plot was {w} ." for w in words])
        assert all(s * sign > 0 for s in scores)


# --------------------------------------------------------------------------- tokenizer


def test_tokenizer_round_trips_every_review(tokenizer):
    reviews = world.generate_corpus(300, seed=1)
    ids = tokenizer(reviews, add_special_tokens=False)["input_ids"]
    assert all(tokenizer.unk_token_id not in row for row in ids)
    assert [tokenizer.decode(row) for row in ids] == reviews


def test_tokenizer_specials_and_no_automatic_tokens(tokenizer):
    specials = (tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id)
    assert specials == (0, 1, 2, 3)
    assert tokenizer("the film")["input_ids"] == tokenizer("the film", add_special_tokens=False)["input_ids"]
    assert tokenizer("the zyzzyva")["input_ids"][1] == tokenizer.unk_token_id
    assert world.build_tokenizer().get_vocab() == tokenizer.get_vocab()  # ids from the grammar only
    # prompt + completion tokenizes to the prompt's tokens followed by the completion's
    prompt, completion = "the acting was", " very good ."
    joint = tokenizer(prompt + completion)["input_ids"]
    assert joint == tokenizer(prompt)["input_ids"] + tokenizer(completion)["input_ids"]


# --------------------------------------------------------------------------- judge


def test_judge_ranks_positive_over_negative():
    judge = world.VaderJudge()
    good, bad = judge(["what a wonderful film ! i loved this movie .", "what a terrible film ! i hated this movie ."])
    assert good > 0.5 and bad < -0.5
    assert -1 <= bad < good <= 1
    # the prompt is part of what the judge reads: negation across the boundary counts
    assert judge.score("the plot was not", " good .") < 0 < judge.score("the plot was", " good .")


# --------------------------------------------------------------------------- prompts and pairs


def test_prompts_are_prefixes_of_two_to_eight_tokens(tokenizer):
    reviews = world.generate_corpus(200, seed=2)
    prompts = world.make_prompts(reviews, tokenizer, seed=0)
    lengths = {len(p.ids) for p in prompts}
    assert min(lengths) >= 2 and max(lengths) <= 8 and len(lengths) == 7
    assert all(r.startswith(p.text + " ") for p, r in zip(prompts, reviews))


def test_pairs_are_labelled_by_the_judge(tokenizer):
    judge = world.VaderJudge()
    reviews = ["the plot was good . i liked it ."] * 2
    prompts = world.make_prompts(reviews, tokenizer, seed=0, min_tokens=3, max_tokens=3)
    completions = [
        " great .",
        " awful .",
        " dull .",
        " superb !",  # prompt 0: four distinct scores
        " long .",
        " old .",
        " wonderful .",
        "",  # prompt 1: a tie (two neutral) and an empty one
    ]
    rewards = judge([world.join_text(prompts[i // 4].text, c) for i, c in enumerate(completions)])
    pairs, dropped = world.preference_pairs(prompts, completions, rewards, samples_per_prompt=4)
    assert dropped == {"ties": 1, "empty": 3}
    assert len(pairs) == 6 + 2
    for pair in pairs:
        assert pair["chosen_reward"] > pair["rejected_reward"]
        assert judge.score(pair["prompt"], pair["chosen"]) == pair["chosen_reward"]
        assert judge.score(pair["prompt"], pair["rejected"]) == pair["rejected_reward"]
    assert {(p["chosen"], p["rejected"]) for p in pairs[:6]} >= {(" superb !", " awful ."), (" great .", " dull .")}


# --------------------------------------------------------------------------- sampling and KL


def test_sampling_is_seeded_and_stops_at_eos(tokenizer):
    model = _model(tokenizer)
    prompts = world.make_prompts(world.generate_corpus(6, seed=0), tokenizer, seed=0)
    kwargs = dict(num_samples=3, temperature=1.0, max_new_tokens=12, eos_token_id=tokenizer.eos_token_id)
    a = world.sample_completions(model, prompts, seed=5, **kwargs)
    b = world.sample_completions(model, prompts, seed=5, **kwargs)
    c = world.sample_completions(model, prompts, seed=6, **kwargs)
    assert a.completion_ids == b.completion_ids != c.completion_ids
    assert a.prompt_index == [p for p in range(6) for _ in range(3)]
    for ids, cut in zip(a.completion_ids, a.truncated):
        assert (len(ids) == 12 and tokenizer.eos_token_id not in ids) if cut else ids[-1] == tokenizer.eos_token_id


@pytest.mark.parametrize("temperature", [1.0, 0.7, 0.0])
def test_samples_carry_the_log_probs_teacher_forcing_gives(tokenizer, temperature):
    """What the sampler reads off its own logits is the model's log pi(y|x) at temperature 1, EOS included,
    for completions cut at the length limit too: the evaluation's KL uses it instead of a second pass."""
    model = _model(tokenizer)
    head = torch.nn.Linear(model.config.n_embd, len(tokenizer))  # untied, so EOS can get a bias of its own
    with torch.no_grad():
        head.weight.copy_(model.lm_head.weight)
        head.bias.zero_()
        head.bias[tokenizer.eos_token_id] = 4.0  # about one token in five is EOS
    model.lm_head = head
    prompts = world.make_prompts(world.generate_corpus(6, seed=0), tokenizer, seed=0)
    samples = world.sample_completions(
        model,
        prompts,
        num_samples=3,
        temperature=temperature,
        max_new_tokens=6,
        eos_token_id=tokenizer.eos_token_id,
        seed=1,
    )
    if temperature == 1.0:  # completions that end at EOS and completions cut at the limit
        assert any(samples.truncated) and not all(samples.truncated)
    forced = world.completion_logps(model, prompts, samples, pad_token_id=tokenizer.pad_token_id)
    assert torch.tensor(samples.logps) == pytest.approx(forced, abs=1e-4)


def test_kl_of_reference_to_itself_is_zero(tokenizer):
    model = _model(tokenizer)
    prompts = world.make_prompts(world.generate_corpus(8, seed=0), tokenizer, seed=0)
    result = world.evaluate_policy(
        model, copy.deepcopy(model), prompts, tokenizer, world.VaderJudge(), num_samples=4, max_new_tokens=10, seed=0
    )
    assert abs(result["kl"]["mean"]) < 1e-5 and result["kl"]["stderr"] < 1e-5
    assert result["kl"]["n"] == result["reward"]["n"] == 32


def _tiny_tokenizer():
    """A word-level tokenizer of four tokens: <pad>, <eos> and two words."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(WordLevel(vocab={"<pad>": 0, "<eos>": 1, "good": 2, "bad": 3}, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="<eos>")


def _exact_kl(policy, reference, prompt_ids, eos, vocab, max_new_tokens):
    """KL(policy || reference) of the length-limited sampling process, summed over every completion.

    The completions are every sequence that ends at its first EOS, or runs to
    ``max_new_tokens`` without one; each is scored token by token by a plain forward pass.
    """
    words = [t for t in range(vocab) if t != eos]
    completions = [[*w, eos] for n in range(max_new_tokens) for w in itertools.product(words, repeat=n)]
    completions += [list(w) for w in itertools.product(words, repeat=max_new_tokens)]  # cut at the limit

    def logp(model, completion):
        ids = torch.tensor([list(prompt_ids) + completion])
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0, :-1]
        logps = torch.log_softmax(logits.double(), -1)
        start = len(prompt_ids) - 1  # logits at position t predict token t + 1
        return sum(logps[start + i, token].item() for i, token in enumerate(completion))

    p = torch.tensor([logp(policy, c) for c in completions], dtype=torch.float64)
    q = torch.tensor([logp(reference, c) for c in completions], dtype=torch.float64)
    assert p.exp().sum().item() == pytest.approx(1.0, abs=1e-5)  # every completion is there, once
    return float((p.exp() * (p - q)).sum())


def test_sampled_kl_matches_the_exact_kl_over_every_completion():
    """A 4-token vocabulary and completions of up to 3 tokens: 40 completions per prompt, enumerated."""
    tokenizer = _tiny_tokenizer()
    eos = tokenizer.eos_token_id

    def model(seed, scale):
        lm = tiny_gpt2(
            4, n_layer=1, n_embd=16, n_head=2, n_positions=8, seed=seed, eos_token_id=eos, pad_token_id=0
        ).eval()
        with torch.no_grad():  # the policy's logits 5x larger: the two models clearly differ
            lm.lm_head.weight.mul_(scale)
        return lm

    policy, reference = model(0, 5.0), model(1, 1.0)
    prompts = [world.Prompt(text="good bad", ids=(2, 3)), world.Prompt(text="bad", ids=(3,))]
    exact = sum(_exact_kl(policy, reference, p.ids, eos, 4, 3) for p in prompts) / len(prompts)
    result = world.evaluate_policy(
        policy,
        reference,
        prompts,
        tokenizer,
        lambda texts: [0.0] * len(texts),
        num_samples=3000,
        max_new_tokens=3,
        seed=0,
    )
    estimate = result["kl"]
    assert estimate["n"] == 6000 and 0 < result["truncated_fraction"] < 1
    assert exact > 0.1 and estimate["stderr"] < exact / 10  # the check below can tell the sign and the scale
    assert abs(estimate["mean"] - exact) < 4 * estimate["stderr"], (estimate, exact)


# --------------------------------------------------------------------------- win rates


def test_win_rate_counts_ties_as_half_and_samples_the_baseline_with_its_own_seed(monkeypatch):
    """The arithmetic, with the judged samples made up: who is sampled with which seed, and how outcomes count."""
    from dpo_ref.worlds.sentiment import evaluation

    judged = {  # (model, seed) -> the judge's scores of its completions, one per prompt
        ("policy", 7): [0.9, 0.1, 0.5, -0.2, 0.3],
        ("baseline", 8): [0.1, 0.1, 0.7, -0.2, 0.2],
    }
    calls = []

    def judge_samples(model, prompts, tokenizer, judge, *, temperature, max_new_tokens, seed):
        calls.append((model, temperature, seed))
        return judged[(model, seed)]

    monkeypatch.setattr(evaluation, "judge_samples", judge_samples)
    kwargs = dict(prompts=[], tokenizer=None, judge=None, max_new_tokens=3, seed=7)
    result = world.win_rates("policy", "baseline", temperatures=[0.5, 1.0], **kwargs)
    assert calls == [("policy", 0.5, 7), ("baseline", 0.5, 8), ("policy", 1.0, 7), ("baseline", 1.0, 8)]
    outcomes = [1.0, 0.5, 0.0, 0.5, 1.0]  # win, tie, loss, tie, win
    expected = world.mean_and_stderr(outcomes)
    for temperature in ("0.5", "1"):
        entry = result[temperature]
        assert entry["win_rate"] == pytest.approx(0.6) and entry["n"] == 5
        assert entry["stderr"] == pytest.approx(expected.stderr)
        assert entry["policy_reward"] == pytest.approx(0.32) and entry["baseline_reward"] == pytest.approx(0.18)
    # baseline scores given for a temperature are used as they are: the baseline is not sampled again
    calls.clear()
    given = world.win_rates(
        "policy", "baseline", temperatures=[1.0], baseline_rewards={1.0: judged[("baseline", 8)]}, **kwargs
    )
    assert calls == [("policy", 1.0, 7)] and given["1"] == result["1"]


@pytest.fixture(scope="module")
def eval_prompts(tokenizer):
    return world.make_prompts(world.generate_corpus(60, seed=5), tokenizer, seed=0)


def _leaning(tokenizer, words, bias):
    """The tiny model with a bias of ``bias`` on the logits of ``words`` (an untied LM head)."""
    lm = _model(tokenizer)
    head = torch.nn.Linear(lm.config.n_embd, len(tokenizer), bias=True)
    with torch.no_grad():
        head.weight.copy_(lm.lm_head.weight)
        head.bias.zero_()
        head.bias[tokenizer.convert_tokens_to_ids(list(words))] = bias
    lm.lm_head = head
    return lm


def test_win_rate_of_a_model_against_itself(tokenizer, eval_prompts):
    model = _model(tokenizer)
    kwargs = dict(max_new_tokens=6, seed=3)
    judge = world.VaderJudge()
    # greedy decoding: both sides write the same completions, every comparison is a tie
    greedy = world.win_rates(model, model, eval_prompts, tokenizer, judge, temperatures=[0.0], **kwargs)["0"]
    assert greedy["win_rate"] == 0.5 and greedy["stderr"] == 0.0
    # sampled: the baseline has a seed of its own, so its completions differ from the policy's
    sampled = world.win_rates(model, model, eval_prompts, tokenizer, judge, temperatures=[1.0], **kwargs)["1"]
    assert sampled["stderr"] > 0 and sampled["policy_reward"] != sampled["baseline_reward"]
    baseline = world.judge_samples(model, eval_prompts, tokenizer, judge, temperature=1.0, seed=4, max_new_tokens=6)
    assert sampled["baseline_reward"] == pytest.approx(sum(baseline) / len(baseline))


@pytest.mark.parametrize(
    ("words", "direction"),
    [(world.POSITIVE_ADJECTIVES, 1), (world.NEGATIVE_ADJECTIVES, -1)],
    ids=["leaning positive wins", "leaning negative loses"],
)
def test_win_rate_moves_with_the_judge(tokenizer, eval_prompts, words, direction):
    """A policy that leans towards positive words beats the reference under VADER; one leaning negative loses."""
    policy, reference = _leaning(tokenizer, words, 4.0), _model(tokenizer)
    entry = world.win_rates(
        policy, reference, eval_prompts, tokenizer, world.VaderJudge(), temperatures=[1.0], max_new_tokens=6, seed=0
    )["1"]
    assert direction * (entry["win_rate"] - 0.5) > 3 * entry["stderr"], entry
    assert direction * (entry["policy_reward"] - entry["baseline_reward"]) > 0


def test_mean_and_stderr():
    estimate = world.mean_and_stderr([1.0, 2.0, 3.0, 4.0])
    assert estimate.mean == 2.5 and estimate.n == 4
    assert math.isclose(estimate.stderr, math.sqrt(5 / 3) / 2)


# --------------------------------------------------------------------------- the smoke run


def test_smoke_seed_files_evaluate_on_validation_and_test_prompts(smoke_run):
    files, _ = smoke_run
    cfg = get_config("smoke").sentiment
    methods = {"dpo", "ipo", "kto", "orpo", "simpo", "dpop", "preferred-ft", "unlikelihood", "ppo", "ppo-gt"}
    for seed in cfg.seeds:
        data = files[f"sentiment_seed{seed}"]
        assert {row["method"] for row in data["runs"]} == methods and all(r["seed"] == seed for r in data["runs"])
        for row in data["runs"]:
            assert row["val"]["reward"]["n"] == cfg.world.n_val_prompts * cfg.eval_samples_per_prompt
            assert row["final"]["reward"]["n"] == cfg.world.n_test_prompts * cfg.eval_samples_per_prompt
        for method, choice in data["selected"].items():  # chosen on validation prompts, never on test prompts
            candidates = [r for r in data["runs"] if r["method"] == method and r.get("objective", {}).get("rose", True)]
            best = max(candidates, key=lambda r: r["val"]["reward"]["mean"])
            assert choice["params"] == best["params"]
        assert set(data["win_rates"]) == set(data["selected"])
        for temperature in map("{:g}".format, cfg.win_rate_temperatures):
            entries = [per_t[temperature] for per_t in data["win_rates"].values()]
            # one baseline sample, shared by every method, judged once per temperature
            assert len({entry["baseline_reward"] for entry in entries}) == 1
            for entry in entries:  # each comparison scores 1, 1/2 (a tie) or 0
                n = cfg.world.n_test_prompts
                assert entry["n"] == n and 2 * n * entry["win_rate"] == pytest.approx(round(2 * n * entry["win_rate"]))
        curve = data["curves"]["0.1"]
        assert math.isclose(curve["loss"][0], math.log(2), abs_tol=1e-4)  # policy == reference at step 1
        for row in data["runs"]:
            if row["method"].startswith("ppo"):
                objective = row["objective"]
                assert objective["rose"] == (objective["rise"] > 2 * objective["rise_stderr"])
    cost = files[f"sentiment_seed{cfg.seeds[0]}"]["cost"]  # measured once, on the first seed
    assert cost["rlhf"]["models_in_memory"] > cost["dpo"]["models_in_memory"]
    assert all("cost" not in files[f"sentiment_seed{s}"] for s in cfg.seeds[1:])


def test_smoke_summary_pairs_seeds_and_excludes_failed_ppo(smoke_run):
    files, _ = smoke_run
    summary = files["sentiment_summary"]
    failed = {(f["method"], f["params"]["kl_coef"]) for f in summary["failed"]}
    for row in summary["ppo"]:
        assert ((row["method"], row["kl_coef"]) in failed) == (row["rose_in_seeds"] != row["seeds"])
    for name, method in summary["methods"].items():
        for row in method["settings"]:
            assert (name, row["params"].get("kl_coef")) not in failed and row["reward"]["n"] == len(row["seeds"])
    for method, per_t in summary["win_rates"].items():
        for row in per_t.values():
            d = row["win_rate"]
            expected = "ahead" if d["low"] > 0.5 else "behind" if d["high"] < 0.5 else "level"
            assert row["verdict_vs_half"] == expected, method


def test_registered_with_reproduce():
    from dpo_ref.experiments import group
    from dpo_ref.experiments.sentiment import count_runs

    sentiment = group("sentiment")
    for part in sentiment.parts:
        assert sentiment.count_runs(get_config("smoke"), part) == count_runs(get_config("smoke").sentiment, part)
    assert sentiment.seeds(get_config("cpu")) == get_config("cpu").sentiment.seeds
