"""The playground's Python twin (dpo_ref.playground): its world, data, gradients and presets.

Known answers: a two-answer world worked by hand, the infinite-data optimum of DPO and of
RLHF (pi*_beta, DPO paper eq. 4), and the claims each preset makes on its page. The
JavaScript trainer is held equal to this twin by tests/test_playground_browser.py.
"""

from __future__ import annotations

import math

import pytest
import torch

from dpo_ref import playground as pg
from dpo_ref.errors import UserError
from dpo_ref.figures import playground as figures


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_generator_is_uniform_and_seeded():
    draws = [pg.Generator(7).uniform() for _ in range(3)]
    assert draws[0] == draws[1] == draws[2]  # a seed fixes the stream
    g = pg.Generator(7)
    values = [g.uniform() for _ in range(20000)]
    assert all(0 <= v < 1 for v in values)
    assert abs(sum(values) / len(values) - 0.5) < 0.01
    assert abs(sum(v < 0.1 for v in values) / len(values) - 0.1) < 0.01
    assert pg.Generator(8).uniform() != values[0]


def test_world_ranges_and_optimum():
    world = pg.build_world(pg.PlaygroundConfig(answers=32, world_seed=5))
    assert world.n == 32
    assert math.isclose(float(world.reference_logps.exp().sum()), 1.0, abs_tol=1e-12)
    assert float(world.rewards.min()) >= -1 and float(world.rewards.max()) < 1
    assert set(world.lengths.tolist()) <= set(range(1, 9))
    # pi*_beta is pi_ref tilted by exp(r/beta): the log-ratio to pi_ref is r/beta plus a constant
    ratio = world.optimum_logps(0.25) - world.reference_logps - world.rewards / 0.25
    assert float(ratio.max() - ratio.min()) < 1e-12


def test_exact_data_of_two_answers_is_the_bradley_terry_probability():
    """Two answers: the only pairs are (0, 1) and (1, 0), weighted by who wins."""
    config = pg.PlaygroundConfig(answers=2, world_seed=3)
    world = pg.build_world(config)
    data = pg.build_dataset(config, world)
    r0, r1 = world.rewards.tolist()
    by_pair = {(int(c), int(j)): float(w) for c, j, w in zip(data.chosen, data.rejected, data.weights)}
    assert by_pair[(0, 1)] == pytest.approx(sigmoid(r0 - r1), abs=1e-15)
    assert by_pair[(1, 0)] == pytest.approx(sigmoid(r1 - r0), abs=1e-15)
    flipped = pg.build_dataset(pg.PlaygroundConfig(answers=2, world_seed=3, flip=0.25), world)
    assert float(flipped.weights[0]) == pytest.approx(0.75 * sigmoid(r0 - r1) + 0.25 * sigmoid(r1 - r0), abs=1e-15)
    deterministic = pg.build_dataset(pg.PlaygroundConfig(answers=2, world_seed=3, labels="deterministic"), world)
    assert len(deterministic.weights) == 1 and float(deterministic.weights[0]) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("labels", ["bradley-terry", "deterministic"])
def test_exact_weights_sum_to_one(labels):
    config = pg.PlaygroundConfig(answers=16, labels=labels, flip=0.1)
    data = pg.build_dataset(config, pg.build_world(config))
    assert float(data.weights.sum()) == pytest.approx(1.0, abs=1e-12)


def test_sampled_pairs_follow_pi_ref_and_the_flip_rate():
    config = pg.PlaygroundConfig(answers=8, data=20000, labels="deterministic", flip=0.2, data_seed=11)
    world = pg.build_world(config)
    data = pg.build_dataset(config, world)
    assert bool((data.chosen != data.rejected).all())
    assert float(data.weights.sum()) == pytest.approx(1.0)
    wrong = (world.rewards[data.chosen] < world.rewards[data.rejected]).double().mean()
    assert float(wrong) == pytest.approx(0.2, abs=0.01)  # each label swapped with probability 0.2
    # answers appear in proportion to pi_ref conditioned on two distinct draws
    pi = world.reference_logps.exp()
    counts = torch.bincount(torch.cat([data.chosen, data.rejected]), minlength=8).double() / (2 * 20000)
    expected = pi * (1 - pi) / (pi * (1 - pi)).sum()  # P(i in a pair of distinct draws), normalised
    assert float((counts - expected).abs().max()) < 0.01


def test_one_dpo_update_by_hand():
    """Two answers, one pair (0 wins): at pi_ref, h = 0 and dL/dh = -beta/2, so the logits move by lr*beta/2."""
    config = pg.PlaygroundConfig(answers=2, world_seed=3, labels="deterministic", beta=0.4, lr=3.0)
    world = pg.build_world(config)
    winner = int(world.rewards.argmax())
    (run,) = pg.train(config, steps=1)
    assert run.losses == [pytest.approx(math.log(2), abs=1e-15)]
    step = torch.zeros(2, dtype=torch.float64)
    step[winner], step[1 - winner] = 3.0 * 0.4 / 2, -3.0 * 0.4 / 2
    expected = torch.log_softmax(world.reference_logps + step, 0)
    assert float((run.logps - expected).abs().max()) < 1e-14


def test_one_rlhf_update_by_hand():
    """At pi_ref the KL term's gradient vanishes: the logits move by lr * pi * (r - E_pi[r])."""
    config = pg.PlaygroundConfig(answers=5, method="rlhf-gt", lr=0.7)
    world = pg.build_world(config)
    (run,) = pg.train(config, steps=1)
    p, r = world.reference_logps.exp(), world.rewards
    assert run.losses[0] == pytest.approx(-float((p * r).sum()), abs=1e-15)
    expected = torch.log_softmax(world.reference_logps + 0.7 * p * (r - (p * r).sum()), 0)
    assert float((run.logps - expected).abs().max()) < 1e-14


@pytest.mark.parametrize("method", ["dpo", "rlhf-gt", "rlhf"])
def test_infinite_data_reaches_the_rlhf_optimum(method):
    """The optimum of DPO's loss on every pair, and of the KL-regularised objective, is pi*_beta."""
    config = pg.PlaygroundConfig(method=method, beta=0.5, lr=10.0, steps=600)
    world = pg.build_world(config)
    data = pg.build_dataset(config, world)
    (run,) = pg.train(config)
    assert pg.metrics(world, data, run.logps, 0.5)["kl_optimum"] < 1e-6


def test_deterministic_labels_keep_dpo_moving_and_stop_ipo():
    config = pg.preset_config("deterministic-labels")
    dpo, ipo = pg.train(config, every=100)
    late = lambda run, key: run.path[-1][key] - run.path[-4][key]  # noqa: E731  (the last 300 updates)
    assert late(dpo, "kl_ref") > 0.05 and late(dpo, "margin") > 0.1
    assert abs(late(ipo, "kl_ref")) < 1e-6 and abs(late(ipo, "margin")) < 1e-6


def test_each_preset_shows_what_its_page_says():
    world = pg.build_world(pg.PlaygroundConfig())
    # DPO and RLHF through a reward model meet at pi*_beta
    dpo, rlhf = pg.train(pg.preset_config("meet-at-optimum"), every=300)
    assert dpo.path[-1]["kl_optimum"] < 1e-3 and rlhf.path[-1]["kl_optimum"] < 1e-3
    assert abs(dpo.path[-1]["reward"] - rlhf.path[-1]["reward"]) < 0.01
    # the larger beta ends closer to pi_ref, with less reward
    small, large = pg.train(pg.preset_config("beta-trade-off"), every=400)
    assert large.path[-1]["kl_ref"] < small.path[-1]["kl_ref"] / 5
    assert large.path[-1]["reward"] < small.path[-1]["reward"]
    for run in (small, large):
        (optimum,) = pg.frontier(world, [run.beta])
        assert abs(run.path[-1]["kl_ref"] - optimum[0]) < 0.02
    # displacement: the margin grows while the only-chosen answers lose probability
    (run,) = pg.train(pg.preset_config("displacement"), every=50)
    margins = [m["margin"] for m in run.path]
    assert all(b > a for a, b in zip(margins, margins[1:]))
    assert run.path[-1]["chosen_reward"] < 0
    assert run.path[-1]["mass_only_chosen"] < run.path[0]["mass_only_chosen"] / 10


def test_metrics_by_hand():
    config = pg.PlaygroundConfig(answers=2, world_seed=3, beta=2.0)
    world = pg.build_world(config)
    data = pg.build_dataset(config, world)
    logps = torch.log(torch.tensor([0.3, 0.7], dtype=torch.float64))
    m = pg.metrics(world, data, logps, 2.0)
    ref, r = world.reference_logps, world.rewards
    assert m["reward"] == pytest.approx(0.3 * float(r[0]) + 0.7 * float(r[1]), abs=1e-15)
    assert m["kl_ref"] == pytest.approx(
        0.3 * math.log(0.3 / float(ref[0].exp())) + 0.7 * math.log(0.7 / float(ref[1].exp()))
    )
    implicit = 2.0 * (logps - ref)
    w01 = sigmoid(float(r[0] - r[1]))  # weight of "0 beats 1"
    chosen = w01 * float(implicit[0]) + (1 - w01) * float(implicit[1])
    rejected = w01 * float(implicit[1]) + (1 - w01) * float(implicit[0])
    assert m["chosen_reward"] == pytest.approx(chosen) and m["margin"] == pytest.approx(chosen - rejected)
    assert m["mass_both"] == pytest.approx(1.0) and m["mass_only_chosen"] == 0


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"answers": 1}, "answers"),
        ({"data": "all"}, "data"),
        ({"labels": "random"}, "labels"),
        ({"flip": 0.5}, "flip"),
        ({"method": "ppo"}, "method"),
        ({"beta": 0}, "beta"),
        ({"compare_lr": -1.0}, "compare_lr"),
        ({"steps": 0}, "steps"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_settings_name_the_field(values, field):
    with pytest.raises(UserError, match=field):
        pg.PlaygroundConfig.from_dict(values)


def test_widgets_carry_the_twins_settings():
    html = figures.playground()
    for name, preset in pg.PRESETS.items():
        assert f'data-preset="{name}"' in html
        for field, value in preset["config"].items():  # every preset value is one its controls offer
            assert field in figures.SEEDS or value in figures.CHOICES[field], (name, field, value)
    assert 'data-action="play"' in html and "<label for=" in html


def test_twin_figure_ends_on_the_frontier():
    fig = figures.twin_beta_paths()
    paths = [t for t in fig.data if t.mode == "lines" and t.name.startswith("DPO")]
    stars = [t for t in fig.data if t.mode == "markers"]
    assert len(paths) == len(stars) == 4
    for path, star in zip(paths, stars):
        assert abs(path.x[-1] - star.x[0]) < 0.01 and abs(path.y[-1] - star.y[0]) < 0.01
