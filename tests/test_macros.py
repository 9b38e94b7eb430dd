"""The pages' measured sentences: numbers through dpo_ref/site/macros.py, verdicts only from the files.

Every page with ``render_macros: true`` is rendered here as mkdocs-macros renders it (a
Jinja template over :func:`dpo_ref.site.macros.define_env`), and every "ahead", "behind"
or "level" that a reader would see must be a verdict the helpers wrote from a row of the
summaries: a writer cannot type a claim the intervals do not support.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest
import yaml

import dpo_ref.results as results_module
from dpo_ref.results import ResultsFileError
from dpo_ref.site import macros

DOCS = Path(__file__).resolve().parent.parent / "docs"
SPAN = re.compile(r'<span class="dpo-verdict" data-verdict="(ahead|behind|level)">(.*?)</span>')
NUMBER = re.compile(r'<span class="dpo-number">(.*?)</span>')
# a verdict word a reader would take as a claim
VERDICT_WORD = re.compile(r"\b(ahead|behind|level with|on a par|outperform\w*|beats?)\b", re.IGNORECASE)


class Env:
    """The part of mkdocs-macros' environment that define_env uses."""

    def __init__(self):
        self.variables, self.macros = {}, {}

    def macro(self, function, name=None):
        self.macros[name or function.__name__] = function
        return function


def front_matter(path: Path) -> tuple[dict, str]:
    text = path.read_text(encoding="utf-8")
    if text.startswith("---\n"):
        head, body = text[4:].split("\n---\n", 1)
        return yaml.safe_load(head) or {}, body
    return {}, text


MACRO_PAGES = [p for p in sorted(DOCS.glob("*.md")) if front_matter(p)[0].get("render_macros")]


@pytest.fixture(scope="module")
def env() -> Env:
    env = Env()
    macros.define_env(env)
    return env


def ids_in(value, found: set[int]) -> set[int]:
    """The ids of every dict and list inside the summaries: the rows a verdict may come from."""
    if isinstance(value, (dict, list)):
        found.add(id(value))
        for item in value.values() if isinstance(value, dict) else value:
            ids_in(item, found)
    return found


def render(page: Path, env: Env, calls: list) -> str:
    """The page as mkdocs-macros renders it, recording the rows each verdict was asked about."""

    def watched(function):
        def call(rows, *args, **kwargs):
            calls.append(rows)
            return function(rows, *args, **kwargs)

        return call

    helpers = {**env.macros, "verdict": watched(macros.verdict), "verdict_counts": watched(macros.verdict_counts)}
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(front_matter(page)[1])
    return template.render(**env.variables, **helpers)


def test_the_measured_pages_opt_in():
    names = {p.name for p in MACRO_PAGES}
    assert {
        "experimental-results.md",
        "ppo-problem.md",
        "key-insight.md",
        "beta.md",
        "dpo-vs-rlhf.md",
        "bigger-picture.md",
        "dpo-loss.md",
    } <= names
    for page in sorted(DOCS.glob("*.md")):
        if page not in MACRO_PAGES:
            assert "{{" not in page.read_text(encoding="utf-8"), f"{page.name} uses macros without render_macros: true"


@pytest.mark.parametrize("page", MACRO_PAGES, ids=lambda p: p.name)
def test_every_verdict_shown_comes_from_the_files(page, env):
    calls: list = []
    text = render(page, env, calls)
    rows = ids_in({k: v for k, v in env.variables.items() if k in ("exact", "sentiment", "gpu")}, set())
    for argument in calls:  # a verdict is asked of a row of the summaries, never of a typed-in dict
        for row in argument if isinstance(argument, list) else [argument]:
            assert id(row) in rows, f"{page.name}: a verdict of {row!r}, which is not a row of the summaries"
    for word, shown in SPAN.findall(text):
        own_terms = [said[macros.VERDICTS.index(word)] for said in macros.VERDICT_WORDS.values()]
        assert shown.split(" ")[0] == word or shown.startswith(macros._PHRASES[word]) or shown in own_terms, shown
    outside = SPAN.sub("", text)
    outside = re.sub(r"```.*?```", "", outside, flags=re.DOTALL)  # code and figure fences
    outside = re.sub(r'"(ahead|behind|level)"', "", outside)  # the words defined, in quotes
    assert not VERDICT_WORD.findall(outside), f"{page.name}: a hand-typed verdict: {VERDICT_WORD.findall(outside)}"


def test_no_placeholder_is_left_on_a_page(env):
    for page in MACRO_PAGES:
        text = render(page, env, [])
        assert "not been run yet" not in text and "coming from" not in text.lower(), page.name
        assert "None" not in re.sub(r"```.*?```", "", text, flags=re.DOTALL), page.name


# --------------------------------------------------------------------------- the helpers


def test_interval_and_percent_read_as_sentences():
    iv = {"mean": 0.6212, "sem": 0.01, "low": 0.5801, "high": 0.6633, "n": 3}
    text = lambda html: NUMBER.sub(r"\1", html)  # noqa: E731  (the numbers are marked as the files')
    assert text(macros.interval(iv)) == "0.62 (95% interval 0.58 to 0.66)"
    assert text(macros.interval(iv, 1, "nats")) == "0.6 nats (95% interval 0.6 to 0.7 nats)"
    assert text(macros.percent(iv)) == "62% (95% interval 58% to 66%)"
    assert text(macros.num(-0.0001, 2)) == "0.00" and text(macros.num(-1.5, 1)) == "−1.5"
    assert macros.num(0.5) == '<span class="dpo-number">0.50</span>'  # what the results page's test reads


def test_verdicts_take_rows_never_words():
    assert macros.verdict({"verdict": "ahead"}, "PPO") == (
        '<span class="dpo-verdict" data-verdict="ahead">ahead of PPO</span>'
    )
    assert "level with PPO-GT" in macros.verdict({"verdict": "level"}, "PPO-GT")
    with pytest.raises(TypeError, match="verdict"):
        macros.verdict("ahead", "PPO")
    rows = [{"verdict": v} for v in ("ahead", "ahead", "level")]
    text = NUMBER.sub(r"\1", SPAN.sub(r"\1", macros.verdict_counts(rows, "matched KLs")))
    assert text == "ahead at 2, level at 1 and behind at none of 3 matched KLs"
    assert macros.verdict_counts([], "matched KLs") == "not compared (no matched KLs in common)"
    assert macros.count(rows, "ahead") == 2
    assert NUMBER.sub(
        r"\1",
        SPAN.sub(r"\1", macros.verdict_counts([{"verdict_vs_half": "behind"}], "temperatures", key="verdict_vs_half")),
    ) == ("ahead at none, level at none and behind at 1 of 1 temperatures")
    said = macros.verdict_counts(rows, "values of β", words="change")
    assert NUMBER.sub(r"\1", SPAN.sub(r"\2", said)) == "rises at 2, holds level at 1 and falls at none of 3 values of β"
    assert '<span class="dpo-verdict" data-verdict="ahead">rises</span>' in said  # coloured as its verdict
    with pytest.raises(ValueError, match="takes words from"):
        macros.verdict_counts(rows, words="grows")


def test_direction_follows_the_interval():
    up = {"mean": 1.0, "low": 0.2, "high": 1.8, "n": 3, "sem": 0.2}
    flat = {**up, "low": -0.1}
    assert macros.direction(up) == "rises" and macros.direction(flat) == "does not move measurably"
    assert macros.direction({**up, "mean": -1, "low": -2, "high": -0.5}, down="is smaller") == "is smaller"


def test_settings_labels_and_failed_runs_are_written_from_the_files(env):
    exact = env.variables["exact"]
    assert NUMBER.sub(r"\1", macros.setting({"params": {"beta": 0.5}}, "ipo")) == "τ = 0.5"
    assert NUMBER.sub(r"\1", macros.setting({"params": {"lam": 0.1}}, "orpo")) == "λ = 0.1"
    assert macros.label("ppo-gt") == "PPO-GT"
    failed = macros.failed(exact)
    assert len(failed) == len(exact["failed"])
    assert all(NUMBER.sub(r"\1", f).startswith(("PPO ", "PPO-GT ")) for f in failed)
    assert macros.join([]) == "none" and macros.join(["a", "b", "c"]) == "a, b and c"


def test_provenance_says_what_was_run_and_links_the_data(env):
    text = macros.provenance(env.variables["exact"], "exact")
    prov = env.variables["exact"]["provenance"]
    assert prov["command"] in text and prov["device"] in text
    assert "(results/data/cpu/exact_summary.json)" in text and "95% Student-t interval" in text


def test_a_missing_summary_stops_the_build_with_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.setattr(results_module, "RESULTS_DIR", tmp_path)
    with pytest.raises(
        ResultsFileError, match=r"exact_summary\.json: is missing; run `dpo-ref reproduce --config cpu`"
    ):
        macros.define_env(Env())


def test_matched_comparison_is_one_sentence():
    result = {
        "low": 0.137,
        "high": 1.026,
        "verdict": "ahead",
        "mean_difference": {"mean": 0.0571, "low": 0.0042, "high": 0.1171, "sem": 0.01, "n": 3},
    }
    text = NUMBER.sub(r"\1", macros.matched(result, "PPO"))
    assert text == (
        'DPO is <span class="dpo-verdict" data-verdict="ahead">ahead of PPO</span>: over the KLs that trained '
        "policies of both reach (0.14 to 1.03 nats), DPO's reward minus PPO's, averaged over that range, is "
        "0.057 (95% interval 0.004 to 0.117)"
    )
    none = macros.matched(None, "SimPO")
    assert none.startswith("DPO is not compared with SimPO: no KL is reached by trained policies of both")


def test_ktos_reference_point_is_reported_from_the_files(env):
    """The KTO tab says where z0 ended in the measured runs, with the estimates before the clamp."""
    text = render(DOCS / "bigger-picture.md", env, [])
    points = [env.variables[world]["kto_reference_point"] for world in ("exact", "sentiment")]
    if all(p["z0_max"] == 0 for p in points):
        plain = NUMBER.sub(r"\1", text)
        assert f"In all {sum(p['n_runs'] for p in points)} KTO runs of the results pages" in plain
        for p in points:
            assert macros.num(p["estimate_min"], 1) in text and macros.num(p["estimate_max"], 1) in text
    else:
        assert "KTO runs of the results pages" not in text


def test_least_is_the_row_of_lowest_mean():
    rows = [
        {"kl": {"mean": 3.0}, "params": {"beta": 0.5}},
        {"kl": {"mean": 1.0}, "params": {"beta": 5.0}},
        {"kl": {"mean": 2.0}, "params": {"beta": 50}},
    ]
    assert macros.least(rows, "kl")["params"] == {"beta": 5.0} and macros.best(rows, "kl")["params"] == {"beta": 0.5}


def test_protocol_lists_every_grid_and_the_budget_from_the_config():
    summary = {
        "seeds": [0, 1, 2],
        "provenance": {
            "config": {
                "exact": {
                    "steps": 240,
                    "batch_size": 128,
                    "learning_rate": 0.001,
                    "ppo_learning_rate": 0.0003,
                    "eval_every": 40,
                    "grids": {"dpo": [0.1, 0.5], "ipo": [1.0, 4.0], "preferred-ft": [0.5, 1.0], "ppo-gt": [0.2, 1.0]},
                    "n_pairs": 4000,
                }
            }
        },
    }
    text = NUMBER.sub(r"\1", macros.protocol(summary, "exact"))
    assert "DPO, 2 values of β: 0.1, 0.5; IPO, 2 values of τ: 1, 4; Preferred-FT, 2 values of learning-rate " in text
    assert "scale: 0.5, 1; PPO-GT, 2 values of β: 0.2, 1" in text and "n_pairs" not in text
    assert "240 updates of 128 pairs at learning rate 0.001 (KTO: 256 unpaired rows, the rows of the same 128 " in text
    assert "PPO at learning rate 0.0003" in text and "evaluated every 40 updates" in text
    assert "- **Seeds:** 0, 1, 2, each with its own preference pairs" in text
    assert '<span class="dpo-number">40</span>' in macros.protocol(summary, "exact")  # numbers marked as the files'


def test_changes_are_listed_newest_first_and_need_every_field(tmp_path):
    log = tmp_path / "changes.yml"
    log.write_text(
        "- {date: 2026-01-02, world: exact, what: Grid moved., why: Too low.}\n"
        "- {date: 2026-03-04, world: both, what: Summaries recomputed., why: A fix.}\n"
    )
    assert macros.changes(log) == (
        "- **2026-03-04, both:** Summaries recomputed. *Why:* A fix.\n- **2026-01-02, exact:** Grid moved. *Why:* Too low."
    )
    log.write_text("- {date: 2026-01-02, world: exact, what: Grid moved.}\n")
    with pytest.raises(ValueError, match="lacks why"):
        macros.changes(log)
    assert macros.changes().count("*Why:*") >= 4  # the repository's own log


def test_provenance_keeps_the_dirty_flag_and_names_the_summarising_commit():
    assert macros._short_commit("02cffcf2d1f79be90f7347fe344e58d6c0bb8db6-dirty") == "02cffcf2d1f7-dirty"
    assert macros._short_commit("02cffcf2d1f79be90f7347fe344e58d6c0bb8db6") == "02cffcf2d1f7"
    assert macros._short_commit(None) == "not recorded"


def test_standing_groups_methods_by_verdict_in_one_phrase():
    results = {"ipo": {"verdict": "ahead"}, "kto": {"verdict": "ahead"}, "cdpo": {"verdict": "level"}, "simpo": None}
    text = re.sub(r"<[^>]+>", "", macros.standing(results, ["ipo", "cdpo", "kto", "simpo"]))
    assert text == (
        "ahead of IPO and KTO, level with cDPO and not compared with SimPO (no KL that trained policies of both reach)"
    )
    assert re.sub(r"<[^>]+>", "", macros.standing({"ppo": {"verdict": "behind"}}, ["ppo"])) == "behind PPO"
    assert 'data-verdict="level"' in macros.standing(results, ["cdpo"])
    with pytest.raises(ValueError, match="at least one method"):
        macros.standing(results, [])


def test_widest_names_the_setting_whose_seeds_disagree_most():
    def row(value, low, mean, high):
        return {"params": {"beta": value}, "kl": {"mean": mean, "low": low, "high": high}}

    summary = {
        "methods": {
            # high / low 4 and 5; the second's mean sits near its high, as one far seed puts it
            "dpo": {"settings": [row(0.5, 2.0, 3.0, 8.0), row(5.0, 1.0, 4.9, 5.0)]},
            "kto": {"settings": [row(50.0, 1.0, 1.1, 6.0)]},  # high / low 6: the widest, with the lowest mean
        }
    }
    assert NUMBER.sub(r"\1", macros.widest(summary)) == "KTO at β = 50: its KL's 95% interval runs from 1.0 to 6.0"


def test_variants_are_the_summarys_methods_beside_the_papers_in_grid_order():
    summary = {"methods": {"dpo": {}, "simpo": {}, "ppo": {}, "ipo": {}, "preferred-ft": {}, "dpop": {}}}
    assert macros.variants(summary) == ["simpo", "ipo", "dpop"]


# --------------------------------------------------------------------------- derived values the pages print

# Jinja that builds data rather than filling in a value: the derivation belongs in dpo_ref/site/macros.py
DATA_BUILDING = re.compile(r"selectattr|rejectattr|\|\s*(?:map|sort|max|min|sum|groupby|unique)\b|\.append\(")


def test_no_page_builds_data_in_its_jinja():
    built = [
        f"{page.name}:{number}: {line.strip()}"
        for page in sorted(DOCS.glob("*.md"))
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if ("{{" in line or "{%" in line) and DATA_BUILDING.search(line)
    ]
    assert built == []


def _point(regime: str, n_params: int, speedup: float, runs: list[float], positions=(60.0, 100.0)) -> dict:
    return {
        "point": {"regime": regime, "n_params": n_params, "n_layer": 4 if n_params < 5e6 else 8, "n_embd": 128},
        "speedup": speedup,
        "speedup_runs": runs,
        "trainers": {"dpo_ref": {"positions_per_step": positions[0]}, "trl": {"positions_per_step": positions[1]}},
    }


# two sizes of each kind of pair, listed largest first: dpo_ref is slower than TRL at the largest size with
# short pairs (0.8×, down from 2.0×); with chat-like pairs its ratio rises from 1.2× to 1.5×
POINTS = [
    _point("short", 10_000_000, 0.8, [0.7, 0.9, 0.85]),
    _point("short", 1_000_000, 2.0, [1.9, 2.1]),
    _point("chat", 10_000_000, 1.5, [1.6, 1.4]),
    _point("chat", 1_000_000, 1.2, [1.2, 1.2], positions=(75.0, 100.0)),
]


def test_scaling_regimes_compare_each_kind_of_pair_at_its_smallest_and_largest_size():
    short, chat = macros.scaling_regimes(POINTS)
    assert (short["regime"], short["words"], chat["words"]) == ("short", "short pairs", "chat-like pairs")
    assert short["smallest"] == {"params_m": 1.0, "speedup": 2.0}
    assert short["largest"] == {"params_m": 10.0, "speedup": 0.8, "runs": {"n": 3, "low": 0.7, "high": 0.9}}
    assert short["ratio_fell"] and short["slower_at_largest"]
    assert not chat["ratio_fell"] and not chat["slower_at_largest"]
    assert chat["largest"]["runs"] == {"n": 2, "low": 1.4, "high": 1.6}
    assert short["positions_saved_percent"] == pytest.approx(40.0) and chat["positions_saved_percent"] == 25.0
    # a kind of pair the study did not run is left out
    assert [r["regime"] for r in macros.scaling_regimes(POINTS[2:])] == ["chat"]


def _bench(points=POINTS, wall_s: float = 1200.0, web: dict | None = None) -> dict:
    trainer = lambda mfu: {"mfu": mfu}  # noqa: E731
    return {
        "scaling": {"points": points},
        "training": {
            "workload": {"workload": {"regime": "short", "n_layer": 4, "n_embd": 128}},
            "trainers": {"dpo_ref": trainer(0.36), "trl": trainer(0.25)},
        },
        "rollouts": {"speedup_runs": [3.0, 4.5, 1.5, 3.2]},
        "reproduction": {
            "configs": {
                "cpu": {
                    "wall_time_s": wall_s,
                    "sequential_s": 2400.0,
                    "sequential_by_world_s": {"exact": 900.0, "sentiment": 1500.0},
                }
            }
        },
        "web": web
        or {
            "versions": {"lighthouse": "12.8.2", "axe": "4.14.1"},
            "lighthouse": {"status": "ok", "pages": {"/": {"performance_runs": [99, 98, 100]}}},
        },
    }


def test_the_performance_page_reads_derived_values():
    view = macros.performance_view(_bench())
    assert view["headline_params_m"] == 1.0  # the short pairs' point of the headline model's depth and width
    assert view["slower_at_largest"]  # with short pairs
    assert view["mfu_percent"] == {"dpo_ref": 36.0, "trl": 25.0}
    assert view["rollout_runs"] == {"n": 4, "low": 1.5, "high": 4.5}
    assert view["reproduction"] == {
        "wall_min": 20.0,
        "work_min": 40.0,
        "by_world_min": {"exact": 15.0, "sentiment": 25.0},
        "split_min": 20.0,  # over the two parts make reproduce runs at once
        "goal_min": 25.0,
        "within_goal": True,
    }
    assert view["tools"] == {"lighthouse": "12.8.2", "axe": "4.14.1"}
    assert view["lighthouse_runs"] == 3
    # faster at the largest size with both kinds of pairs; a reproduction over its goal; no Lighthouse run
    faster = [_point("short", 10_000_000, 1.1, [1.0, 1.2]), *POINTS[1:]]
    view = macros.performance_view(_bench(faster, wall_s=1800.0, web={"lighthouse": {"status": "skipped"}}))
    assert not view["slower_at_largest"]
    assert view["reproduction"]["wall_min"] == 30.0 and not view["reproduction"]["within_goal"]
    assert view["tools"] == {"lighthouse": "", "axe": ""} and view["lighthouse_runs"] is None


def test_the_headline_model_must_be_a_point_of_the_scaling_study():
    with pytest.raises(ValueError, match="headline workload"):
        macros.headline_params_m(POINTS, {"regime": "short", "n_layer": 6, "n_embd": 256})


def test_the_reproduction_goal_is_the_benchmarks_own():
    from benchmarks.run import GOALS

    assert GOALS["reproduce_cpu_min"] == (macros.REPRODUCTION_GOAL_MIN, "max")


def test_ordered_and_setting_at_read_settings_by_their_hyperparameter():
    rows = [{"params": {"beta": b}, "kl": {"mean": k}} for b, k in ((0.5, 1.0), (0.05, 9.0), (5.0, 0.1))]
    assert [row["params"]["beta"] for row in macros.ordered(rows)] == [0.05, 0.5, 5.0]
    assert macros.setting_at(rows, 0.05)["kl"]["mean"] == 9.0
    with pytest.raises(ValueError, match="no setting of beta = 1 .*0.5, 0.05, 5"):
        macros.setting_at(rows, 1.0)
    unlikelihood = [{"params": {"alpha": v}} for v in (2.0, 0.5)]
    assert [row["params"]["alpha"] for row in macros.ordered(unlikelihood, "alpha")] == [0.5, 2.0]
    assert macros.setting_at(unlikelihood, 2.0, "alpha") is unlikelihood[0]
