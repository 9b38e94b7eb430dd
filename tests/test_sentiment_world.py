"""The sentiment world: corpus, tokenizer, judge, pairs, sampled KL, and the smoke run."""

import copy
import json
import math

import pytest
import torch

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
        len(tokenizer), n_layer=1, n_embd=32, n_head=2, seed=seed,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ).eval()  # fmt: skip


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
        " great .", " awful .", " dull .", " superb !",  # prompt 0: four distinct scores
        " long .", " old .", " wonderful .", "",  # prompt 1: a tie (two neutral) and an empty one
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


def test_kl_of_reference_to_itself_is_zero(tokenizer):
    model = _model(tokenizer)
    prompts = world.make_prompts(world.generate_corpus(8, seed=0), tokenizer, seed=0)
    result = world.evaluate_policy(model, copy.deepcopy(model), prompts, tokenizer, world.VaderJudge(),
                                   num_samples=4, max_new_tokens=10, seed=0)  # fmt: skip
    assert abs(result["kl"]["mean"]) < 1e-5 and result["kl"]["stderr"] < 1e-5
    assert result["kl"]["n"] == 32 and -1 <= result["reward"]["mean"] <= 1


def _exact_kl_two_tokens(policy, reference, prompt_ids, eos):
    """KL over completions of at most two tokens, by enumerating the first token."""
    with torch.no_grad():
        x = torch.tensor([prompt_ids])
        p1 = torch.log_softmax(policy(input_ids=x).logits[0, -1].double(), -1)  # (V,)
        q1 = torch.log_softmax(reference(input_ids=x).logits[0, -1].double(), -1)
        vocab = p1.shape[0]
        seqs = torch.cat([x.repeat(vocab, 1), torch.arange(vocab)[:, None]], 1)  # (V, L+1)
        p2 = torch.log_softmax(policy(input_ids=seqs).logits[:, -1].double(), -1)  # (V, V)
        q2 = torch.log_softmax(reference(input_ids=seqs).logits[:, -1].double(), -1)
    second = (p2.exp() * (p2 - q2)).sum(-1)  # KL of the second token given the first
    second[eos] = 0.0  # stopped
    return float((p1.exp() * (p1 - q1 + second)).sum())


def test_sampled_kl_matches_exact_kl(tokenizer):
    policy, reference = _model(tokenizer, seed=0), _model(tokenizer, seed=1)
    with torch.no_grad():  # sharpen the policy so the two models clearly differ
        policy.lm_head.weight.mul_(5.0)
    prompt = world.make_prompts(["the plot was good ."], tokenizer, seed=0, min_tokens=3, max_tokens=3)
    exact = _exact_kl_two_tokens(policy, reference, list(prompt[0].ids), tokenizer.eos_token_id)
    result = world.evaluate_policy(policy, reference, prompt, tokenizer, world.VaderJudge(),
                                   num_samples=2000, max_new_tokens=2, seed=0)  # fmt: skip
    assert exact > 0.01
    assert abs(result["kl"]["mean"] - exact) < 4 * result["kl"]["stderr"]


def test_mean_and_stderr():
    estimate = world.mean_and_stderr([1.0, 2.0, 3.0, 4.0])
    assert estimate.mean == 2.5 and estimate.n == 4
    assert math.isclose(estimate.stderr, math.sqrt(5 / 3) / 2)


# --------------------------------------------------------------------------- the smoke run


def _without_timings(obj):
    if isinstance(obj, dict):
        return {k: _without_timings(v) for k, v in obj.items()
                if "wall" not in k and "cpu_time" not in k
                and k not in ("provenance", "peak_rss_bytes_whole_process")}  # fmt: skip
    if isinstance(obj, list):
        return [_without_timings(v) for v in obj]
    return obj


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    from dpo_ref.experiments import reproduce

    results = []
    for name in ("a", "b"):
        paths = reproduce("smoke", out=tmp_path_factory.mktemp(name), device="cpu", groups=["sentiment"])
        assert [p.name for p in paths] == [f"sentiment_{k}.json" for k in ("frontier", "win_rates", "curves", "cost")]
        assert all(p.parent.name == "smoke" for p in paths)
        results.append({p.stem: json.loads(p.read_text()) for p in paths})
    return results


def test_smoke_run_writes_valid_files(smoke_results):
    files = smoke_results[0]
    for data in files.values():
        prov = data["provenance"]
        assert prov["seeds"] == {"sentiment": 0} and prov["config"]["name"] == "smoke"
        assert prov["config"]["sentiment"]["steps"] == 4  # the sentiment config of `smoke` is what ran
        assert prov["versions"]["torch"] == torch.__version__ and prov["wall_time_s"] > 0
    frontier = files["sentiment_frontier"]
    assert {"world", "pairs", "runs", "frontier", "matched_kl"} <= set(frontier)
    methods = {"dpo", "ipo", "kto", "orpo", "simpo", "preferred-ft", "unlikelihood", "ppo", "ppo-gt"}
    assert {row["method"] for row in frontier["runs"]} == methods == set(frontier["frontier"])
    assert set(files["sentiment_win_rates"]["methods"]) == methods
    for row in frontier["runs"]:
        assert -1 <= row["reward"]["mean"] <= 1 and row["kl"]["stderr"] >= 0
    for method in files["sentiment_win_rates"]["methods"].values():
        for entry in method["by_temperature"].values():
            assert 0 <= entry["win_rate"] <= 1
    curve = files["sentiment_curves"]["dpo"]["0.1"]
    assert math.isclose(curve["loss"][0], math.log(2), abs_tol=1e-4)  # policy == reference at step 1
    assert {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
            "logps/rejected"} <= set(curve)  # fmt: skip
    assert frontier["pairs"]["n_pairs"] > 0
    cost = files["sentiment_cost"]
    assert cost["rlhf"]["models_in_memory"] > cost["dpo"]["models_in_memory"]
    assert cost["rlhf"]["samples_generated"] > cost["dpo"]["samples_generated"]


def test_smoke_run_is_deterministic(smoke_results):
    first, second = (_without_timings(r) for r in smoke_results)
    assert first == second


def test_registered_with_reproduce():
    from dpo_ref.experiments import get_config, group
    from dpo_ref.experiments.sentiment import count_runs

    sentiment = group("sentiment")
    assert sentiment.count_runs(get_config("smoke")) == count_runs(get_config("smoke").sentiment)
    assert sentiment.seeds(get_config("cpu")) == {"sentiment": get_config("cpu").sentiment.seed}
