"""Numbers from the results summaries in the pages' sentences: the mkdocs-macros module.

A page opts in with front matter ``render_macros: true`` (``mkdocs.yml`` sets
``render_by_default: false``); its Markdown is then a Jinja template that can read the
summaries and call the helpers below. Every sentence stays in the page, where a writer
edits it; only the numbers and the verdicts come from the files::

    DPO is {{ verdict(exact.online.online_minus_offline.reward, "offline DPO") }}: its reward
    differs by {{ interval(exact.online.online_minus_offline.reward.difference, 3) }}.

renders as "DPO is level with offline DPO: its reward differs by 0.012 (95% interval
−0.020 to 0.044)." The variables:

``exact``, ``sentiment``
    ``exact_summary.json`` and ``sentiment_summary.json`` of the ``cpu`` configuration
    (their keys: :mod:`dpo_ref.experiments.exact_summary`,
    :mod:`dpo_ref.experiments.sentiment_summary`). A missing or stale summary stops the
    build with one message naming the file and ``dpo-ref reproduce``.
``gpu``
    the same two summaries of the ``gpu`` configuration, ``{"exact": ..., "sentiment": ...}``,
    each ``None`` where it has not been run.
``bench``
    what ``make bench`` last measured, ``benchmarks/results/<part>.json`` by part
    (``summary``, ``training``, ``scaling``, ``rollouts``, ``reproduction``, ``site``,
    ``web``): the performance page reads it.
``performance``
    what the performance page says of ``bench`` beyond its raw numbers, derived here so that the
    page only prints it (:func:`performance_view`).
``overoptimised_threshold``
    the fall of true reward from its peak beyond which a run counts as over-optimised
    (:data:`dpo_ref.experiments.exact_summary.OVER_OPTIMISED`).

The helpers (each documented below): :func:`interval`, :func:`percent`, :func:`num`,
:func:`verdict`, :func:`verdict_counts`, :func:`count`, :func:`direction`, :func:`label`,
:func:`setting`, :func:`best`, :func:`least`, :func:`ordered`, :func:`setting_at`, :func:`failed`,
:func:`by_temperature`, :func:`join`, :func:`seeds`, :func:`provenance` and :func:`data_file`. A page
only fills in values: what it needs derived from the files (a sort, a selection, a sum, a share) is
derived here, by a helper or in a variable such as ``performance``, never in the page's Jinja.

A page says "ahead", "behind" or "level" only through :func:`verdict` and
:func:`verdict_counts`, which take the file's rows, never a word: each writes its verdict
inside ``<span class="dpo-verdict" data-verdict="...">``, and ``tests/test_macros.py``
fails on any verdict word outside one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path

from dpo_ref import paths
from dpo_ref.analysis import verdict as analysis_verdict
from dpo_ref.experiments.exact_summary import OVER_OPTIMISED
from dpo_ref.figures._util import fmt
from dpo_ref.figures.measured.common import FILES, REQUIRED, param_name, params_text, variant_names
from dpo_ref.figures.measured.common import label as method_label
from dpo_ref.figures.performance import bench_results
from dpo_ref.methods import DPOP, METHODS, PPO
from dpo_ref.results import load_results, results_path

__all__ = ["define_env", "MACROS", "variables"]

VERDICTS = ("ahead", "level", "behind")
BENCH_PARTS = ("summary", "training", "scaling", "rollouts", "reproduction", "site", "web")
_PHRASES = {"ahead": "ahead of", "behind": "behind", "level": "level with"}  # verdict -> words before the other


def variables(config: str = "cpu") -> dict:
    """The summaries the pages read: ``exact``, ``sentiment`` (``config``), and ``gpu`` where it exists."""
    out = {world: load_results(name, config=config, require=REQUIRED[world]) for world, name in FILES.items()}
    out["overoptimised_threshold"] = OVER_OPTIMISED
    out["bench"] = {part: bench_results(part) for part in BENCH_PARTS}
    out["performance"] = performance_view(out["bench"])
    out["gpu"] = {
        world: load_results(name, config="gpu", require=REQUIRED[world])
        if results_path(name, config="gpu").is_file()
        else None
        for world, name in FILES.items()
    }
    return out


# --------------------------------------------------------------------------- numbers


def _number(text: str) -> str:
    """Numbers from the files are marked, so a test can tell them from numbers typed into a page."""
    return f'<span class="dpo-number">{text}</span>'


def num(value: float, digits: int = 2) -> str:
    """A number as the pages write it: ``−0.12`` (a true minus sign, no negative zero)."""
    return _number(fmt(value, digits))


def interval(iv: Mapping, digits: int = 2, unit: str = "") -> str:
    """A mean and its 95% interval over seeds: ``0.62 (95% interval 0.58 to 0.66)``; ``unit`` follows each number."""
    unit = f" {unit}" if unit else ""
    return _number(
        f"{fmt(iv['mean'], digits)}{unit} (95% interval {fmt(iv['low'], digits)} to {fmt(iv['high'], digits)}{unit})"
    )


def percent(iv: Mapping, digits: int = 0) -> str:
    """A share as a percentage with its interval: ``62% (95% interval 48% to 76%)``."""
    return _number(
        f"{fmt(100 * iv['mean'], digits)}% (95% interval {fmt(100 * iv['low'], digits)}% to "
        f"{fmt(100 * iv['high'], digits)}%)"
    )


def seeds(summary: Mapping) -> str:
    """How many seeds a summary averages: ``3 seeds``."""
    n = len(summary["seeds"])
    return _number(f"{n} seed" if n == 1 else f"{n} seeds")


# --------------------------------------------------------------------------- verdicts


def _span(verdict_word: str, text: str) -> str:
    return f'<span class="dpo-verdict" data-verdict="{verdict_word}">{text}</span>'


def verdict(row: Mapping, other: str = "") -> str:
    """The verdict of a row of the files (a mapping with ``"verdict"``), as words: ``ahead of PPO``,
    ``behind PPO``, ``level with PPO`` (or ``ahead``, ``behind``, ``level`` without ``other``)."""
    if not isinstance(row, Mapping) or row.get("verdict") not in VERDICTS:
        raise TypeError(f"verdict() takes a row of a summary with a 'verdict' ({VERDICTS}), got {row!r}")
    word = row["verdict"]
    return _span(word, f"{_PHRASES[word]} {escape(other)}" if other else word)


# ahead, level and behind in the terms of a claim that is not "DPO against another method" (verdict_counts' words)
VERDICT_WORDS = {
    "change": ("rises", "holds level", "falls"),
    "distance": ("closer", "level", "farther"),
    "against half": ("above one half", "level with it", "below it"),
    "probable": ("more probable", "level", "less probable"),
}


def verdict_counts(rows: Sequence[Mapping], what: str = "matched KLs", key: str = "verdict", words: str = "") -> str:
    """How the verdicts of several rows fall: ``ahead at 2, level at 4 and behind at none of 6 matched KLs``
    (``key`` names the rows' verdict, e.g. ``verdict_vs_half`` of the win rates; ``words`` names an entry of
    :data:`VERDICT_WORDS` that says ahead, level and behind in the claim's own terms: ``rises at 2, ...``)."""
    if words and words not in VERDICT_WORDS:
        raise ValueError(f"verdict_counts() takes words from {sorted(VERDICT_WORDS)}, got {words!r}")
    said = VERDICT_WORDS[words] if words else VERDICTS
    if not rows:
        return f"not compared (no {what} in common)"
    rows = [{"verdict": row[key]} for row in rows]
    for row in rows:
        verdict(row)  # each row must carry a verdict
    counts = {word: sum(row["verdict"] == word for row in rows) for word in VERDICTS}
    parts = [f"{_span(word, text)} at {_number(str(counts[word] or 'none'))}" for word, text in zip(VERDICTS, said)]
    return f"{parts[0]}, {parts[1]} and {parts[2]} of {_number(str(len(rows)))} {what}"


def standing(results: Mapping, names: Sequence[str]) -> str:
    """Where DPO stands against several methods at matched KL (``exact.matched_kl``), as the words of one
    takeaway: ``ahead of IPO and KTO, level with cDPO, and not compared with SimPO (no KL that trained policies of
    both reach)``; the groups in the order ahead, level, behind, not compared, empty groups left out."""
    groups: dict[str, list[str]] = {word: [] for word in (*VERDICTS, "none")}
    for name in names:
        result = results.get(name)
        groups["none" if result is None else result["verdict"]].append(label(name))
    parts = [_span(word, f"{_PHRASES[word]} {join(groups[word])}") for word in VERDICTS if groups[word]]
    if groups["none"]:
        parts.append(f"not compared with {join(groups['none'])} (no KL that trained policies of both reach)")
    if not parts:
        raise ValueError("standing() needs at least one method")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def direction(iv: Mapping, up: str = "rises", down: str = "falls", flat: str = "does not move measurably") -> str:
    """Which way an interval of a change points: ``up`` when all of it is above 0, ``down`` when all of it
    is below, ``flat`` otherwise (the rule of :func:`dpo_ref.analysis.verdict`)."""
    return {"ahead": up, "behind": down, "level": flat}[analysis_verdict(iv)]


def count(rows: Sequence[Mapping], word: str) -> int:
    """How many rows have verdict ``word``."""
    if word not in VERDICTS:
        raise ValueError(f"count() takes one of {VERDICTS}, got {word!r}")
    return sum(row["verdict"] == word for row in rows)


# --------------------------------------------------------------------------- methods and settings


def variants(summary: Mapping) -> list[str]:
    """The variants of DPO a world's summary holds, in its grid's order (``variants(exact)``)."""
    return variant_names(summary)


def label(name: str) -> str:
    """A method's label from :mod:`dpo_ref.methods`, by its registry name: PPO-GT's (``ppo-gt``) is ``PPO-GT``."""
    return method_label(name)


def setting(row: Mapping, method: str) -> str:
    """A setting of the files as the figures write it: ``β = 0.5`` (``τ`` for IPO)."""
    return _number(params_text(row["params"], method))


def best(rows: Sequence[Mapping], quantity: str = "reward") -> Mapping:
    """The row with the highest mean ``quantity`` (``best(exact.methods.dpo.settings)``)."""
    return max(rows, key=lambda row: row[quantity]["mean"])


def least(rows: Sequence[Mapping], quantity: str = "reward") -> Mapping:
    """The row with the lowest mean ``quantity`` (``least(sentiment.methods.dpo.settings, "kl")``)."""
    return min(rows, key=lambda row: row[quantity]["mean"])


def _param(row: Mapping, name: str) -> float:
    """A setting's value of hyperparameter ``name``."""
    return row["params"][name]


def ordered(rows: Sequence[Mapping], name: str = "beta") -> list[Mapping]:
    """A method's settings from the lowest value of hyperparameter ``name`` to the highest
    (``ordered(exact.methods.dpo.settings)[0]`` is DPO's setting of smallest β)."""
    return sorted(rows, key=lambda row: _param(row, name))


def setting_at(rows: Sequence[Mapping], value: float, name: str = "beta") -> Mapping:
    """The setting whose hyperparameter ``name`` is ``value`` (``setting_at(exact.methods.dpop.settings,
    exact.displacement.beta)``); an error naming the values there are if none is."""
    for row in rows:
        if _param(row, name) == value:
            return row
    raise ValueError(f"no setting of {name} = {value:g} (there are {', '.join(f'{_param(r, name):g}' for r in rows)})")


def failed(summary: Mapping) -> list[str]:
    """The PPO settings whose own objective did not rise in every seed: ``["PPO at β = 0.5 (rose in 1 of 3 seeds)"]``."""
    return [
        _number(
            f"{label(row['method'])} at β = {row['kl_coef']:g} (rose in {len(row['rose_in_seeds'])} of "
            f"{len(row['seeds'])} seeds)"
        )
        for row in summary[PPO]
        if row["rose_in_seeds"] != row["seeds"]
    ]


def ppo_budget(summary: Mapping) -> str:
    """How far PPO got in its budget of updates (exact world), as one sentence: how many runs' own objective was
    still higher at the end than two thirds of the way in, and the share of the achievable rise of that objective
    the settings reached (the lowest and highest setting mean)."""
    rows = summary[PPO]
    rising, runs = (sum(len(row[key]) for row in rows) for key in ("rising_at_end_in_seeds", "seeds"))
    by_share = sorted(rows, key=lambda row: row["share_of_gain"]["mean"])

    def reached(row: Mapping) -> tuple[str, str]:
        kl_coef = _number(f"{row['kl_coef']:g}")
        return percent(row["share_of_gain"]), f"{label(row['method'])} at β = {kl_coef}"

    low, high = reached(by_share[0]), reached(by_share[-1])
    return (
        f"PPO's own objective was still higher at the end than two thirds of the way in {_number(str(rising))} of "
        f"the {_number(str(runs))} PPO and PPO-GT runs, and the settings reached from {low[0]} ({low[1]}) to "
        f"{high[0]} ({high[1]}) of the rise to the best objective any policy reaches"
    )


def widest(summary: Mapping, quantity: str = "kl") -> str:
    """The setting whose seeds disagree most about ``quantity`` (the largest ratio of its interval's high to its
    low, a spread on the log scale the interval was taken on), as a sentence: ``KTO at β = 50: its KL's 95%
    interval runs from 19.6 to 148.1 nats``."""
    rows = [(name, row) for name, entry in summary["methods"].items() for row in entry["settings"]]
    name, row = max(rows, key=lambda item: item[1][quantity]["high"] / max(item[1][quantity]["low"], 1e-12))
    iv = row[quantity]
    return (
        f"{label(name)} at {setting(row, name)}: its {quantity.upper() if quantity == 'kl' else quantity}'s 95% "
        f"interval runs from {num(iv['low'], 1)} to {num(iv['high'], 1)}"
    )


def share_range(summary: Mapping) -> str:
    """The lowest and highest mean share of the achievable rise of PPO's own objective over its settings (exact
    world): ``58% to 80%``."""
    shares = [row["share_of_gain"]["mean"] for row in summary[PPO]]
    return _number(f"{fmt(100 * min(shares), 0)}% to {fmt(100 * max(shares), 0)}%")


def only_chosen(summary: Mapping) -> list[Mapping]:
    """The displacement study's change of the mass on answers only ever chosen, one row per beta, each with its
    verdict ("ahead": the mass rose over training)."""
    return [row["only_chosen_change"] for row in summary["displacement"]["per_beta"].values()]


def dpop_kept(summary: Mapping) -> list[Mapping]:
    """DPOP's chosen answers' log-probability at the end of training minus DPO's on the same pairs, one row per
    beta of DPOP's grid, each with its verdict ("ahead": DPOP leaves them more probable)."""
    return [row["chosen_kept"] for row in summary["displacement"][DPOP].values()]


def over_optimised(summary: Mapping) -> list[str]:
    """The settings of the over-optimisation study whose true reward fell measurably after its peak, as the pages
    write them: ``["DPO at β = 0.05"]``."""
    return [
        f"{label(name)} at {setting(row, name)}"
        for name, rows in summary["overoptimisation"].items()
        for row in rows
        if row["over_optimised"]
    ]


def matched(result: Mapping | None, other: str) -> str:
    """A matched-KL comparison of the summaries (DPO against ``other``) as one sentence: ``DPO is ahead of
    PPO: over the KLs that trained policies of both reach (0.14 to 1.03 nats), DPO's reward minus PPO's,
    averaged over that range, is 0.057 (95% interval 0.004 to 0.117)``; without a shared range, says so."""
    if result is None:
        return (
            f"DPO is not compared with {escape(other)}: no KL is reached by trained policies of both in every "
            "seed (a straight line from π<sub>ref</sub> is not a trained policy)"
        )
    return (
        f"DPO is {verdict(result, other)}: over the KLs that trained policies of both reach "
        f"({num(result['low'], 2)} to {num(result['high'], 2)} nats), DPO's reward minus {escape(other)}'s, "
        f"averaged over that range, is {interval(result['mean_difference'], 3)}"
    )


def by_temperature(per_temperature: Mapping, part: str = "") -> list[Mapping]:
    """A method's win rates (``sentiment.win_rates.dpo``) as a list in temperature order; ``part``
    picks a key of each (``"dpo_minus"``: DPO's win rate minus the method's, with its verdict)."""
    rows = [per_temperature[t] for t in sorted(per_temperature, key=float)]
    return [row[part] for row in rows] if part else rows


def join(items: Sequence[str], empty: str = "none") -> str:
    """``a``, ``a and b``, ``a, b and c``; ``empty`` for none."""
    items = list(items)
    if not items:
        return empty
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------- provenance


def data_file(world: str, config: str = "cpu") -> str:
    """The link from a top-level page to a world's summary: ``results/data/cpu/exact_summary.json``."""
    return f"results/data/{config}/{FILES[world]}.json"


def provenance(summary: Mapping, world: str, config: str = "cpu") -> str:
    """What was run, as a Markdown list for a collapsed ``??? info`` block: command, world, seeds, device,
    commit, wall time, date and the data file (indent it under the block with ``| indent(4)``)."""
    prov = summary["provenance"]
    settings = prov["config"][world]
    commit = _short_commit(prov.get("git_commit"))
    if prov.get("summarised_at_commit"):
        commit += f"`, summarised again from its seed files at `{_short_commit(prov['summarised_at_commit'])}"
    lines = [
        f"- **Command:** `{prov['command']}`",
        f"- **World:** {_world_text(summary, settings, world)}",
        f"- **Seeds:** {', '.join(str(s) for s in summary['seeds'])}; every interval is a 95% Student-t interval "
        "over seeds, every difference paired by seed",
        f"- **Device:** {prov['device']}; **commit** `{commit}`; **date** {prov['date'][:10]}",
        f"- **Wall time:** {prov['wall_time_s'] / 60:.0f} min, all seeds together",
        f"- **Data:** [`{FILES[world]}.json`]({data_file(world, config)}) and one file per seed beside it",
    ]
    return "\n".join(lines)


CHANGES_FILE = "data/results_changes.yml"  # under docs/: the dated log of changes made after a first run


def protocol(summary: Mapping, world: str) -> str:
    """What every run of a world got, from the configuration that ran it, as a Markdown list for a
    collapsed block: the grid of each method, the budget, the seeds, how settings are read and the intervals."""
    settings = summary["provenance"]["config"][world]
    n = lambda value: _number(f"{value:g}" if isinstance(value, float) else str(value))  # noqa: E731
    grids = [
        f"{label(method)}, {n(len(values))} values of {param_name(METHODS[method].swept, method)}: "
        f"{_number(', '.join(f'{v:g}' for v in values))}"
        for method, values in settings["grids"].items()
    ]
    rows = settings["batch_size"]
    budget = f"{n(settings['steps'])} updates of {n(rows)} pairs at learning rate {n(settings['learning_rate'])}"
    # KTO trains on unpaired rows, two per pair: its batches hold twice the rows (Method.rows_per_pair)
    budget += f" (KTO: {n(2 * rows)} unpaired rows, the rows of the same {n(rows)} pairs)"
    if "ppo_learning_rate" in settings:
        budget += f"; PPO at learning rate {n(settings['ppo_learning_rate'])}"
    along = (
        f"every {n(settings['eval_every'])} updates along training"
        if world == "exact"
        else f"on the test prompts at {n(settings['checkpoints'])} points along training"
    )
    reading = (
        (
            "every setting is shown"
            if world == "exact"
            else "each seed's setting of highest validation reward gives the win rates and the length table"
        )
        + "; envelopes and matched-KL comparisons use every "
        f"trained policy: each setting evaluated {along} and at its end, never a line from pi_ref"
    )
    lines = [
        "- **Grids:** " + "; ".join(grids),
        f"- **Budget, the same for every offline method:** {budget}",
        f"- **Seeds:** {_number(', '.join(str(s) for s in summary['seeds']))}, each with its own preference pairs",
        f"- **Reading:** {reading}",
        "- **Intervals:** 95% Student-t over seeds, on the log or logit scale for a bounded quantity "
        "([conventions](conventions.md#intervals)); differences paired by seed",
    ]
    return "\n".join(lines)


def changes(path: Path | None = None) -> str:
    """The dated log of changes made after a first run (``docs/data/results_changes.yml``), newest first,
    as a Markdown list."""
    import yaml

    entries = yaml.safe_load((path or paths.docs_dir() / CHANGES_FILE).read_text(encoding="utf-8"))
    lines = []
    for entry in sorted(entries, key=lambda e: str(e["date"]), reverse=True):
        missing = {"date", "world", "what", "why"} - set(entry)
        if missing:
            raise ValueError(f"{CHANGES_FILE}: an entry lacks {', '.join(sorted(missing))}: {entry}")
        lines.append(
            f"- **{entry['date']}, {escape(str(entry['world']))}:** {escape(entry['what'].strip())} "
            f"*Why:* {escape(entry['why'].strip())}"
        )
    return "\n".join(lines)


def _short_commit(commit: str | None) -> str:
    """A commit's first 12 characters, keeping ``-dirty`` (uncommitted changes were in the tree)."""
    if not commit:
        return "not recorded"
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")


def _world_text(summary: Mapping, settings: Mapping, world: str) -> str:
    w = settings["world"]
    if world == "exact":
        n_responses = summary["world"]["n_responses_per_prompt"]
        return (
            f"{w['n_prompts']} prompts, each with all {n_responses} answers of {w['response_length']} tokens over "
            f"{w['vocab_size']} words; π<sub>ref</sub> a GPT-2 of {w['n_layer']} layers and width {w['n_embd']}; "
            f"{settings['n_pairs']} preference pairs per seed; every method {settings['steps']} updates of batch "
            f"{settings['batch_size']}"
        )
    return (
        f"a GPT-2 of {summary['world']['n_parameters']:,} parameters pretrained on {w['n_reviews']:,} "
        f"generated reviews; {w['n_train_prompts']} training prompts × {w['samples_per_prompt']} "
        f"samples judged by VADER; settings chosen on {w['n_val_prompts']} validation prompts, reported on "
        f"{w['n_test_prompts']} test prompts; every offline method {settings['steps']} updates of batch "
        f"{settings['batch_size']}"
    )


# --------------------------------------------------------------------------- the performance page

# the scaling study's two kinds of pairs, as the page's sentences name them, in the order it takes them
REGIME_WORDS = {"short": "short pairs", "chat": "chat-like pairs"}
# `make reproduce CONFIG=cpu`: its goal in minutes (benchmarks/run.py, GOALS["reproduce_cpu_min"]) and how many
# parts it runs at once (the Makefile's JOBS, `--jobs 2`)
REPRODUCTION_GOAL_MIN = 25.0
REPRODUCTION_JOBS = 2


def spread(runs: Sequence[float]) -> dict:
    """How many paired runs a median ratio comes from, and their lowest and highest ratio: ``{"n", "low", "high"}``."""
    if not runs:
        raise ValueError("spread() needs at least one run")
    return {"n": len(runs), "low": min(runs), "high": max(runs)}


def scaling_regimes(points: Sequence[Mapping]) -> list[dict]:
    """Each kind of pair of the scaling study (``bench.scaling.points``) as the page reads it, in the order of
    :data:`REGIME_WORDS` (a kind with no point left out).

    ``words``: its name in a sentence; ``smallest`` and ``largest``: its points of fewest and most parameters,
    each with ``params_m`` (millions) and ``speedup`` (dpo_ref's tokens/s over TRL's), the largest also with
    ``runs`` (:func:`spread` of its paired runs); ``ratio_fell``: the ratio is lower at the largest size than at
    the smallest; ``slower_at_largest``: below 1 at the largest size; ``positions_saved_percent``: the share of
    the positions per step that prompt sharing saves (at the smallest size; it is the same at every size).
    """
    out = []
    for regime, words in REGIME_WORDS.items():
        rows = sorted((p for p in points if p["point"]["regime"] == regime), key=lambda p: p["point"]["n_params"])
        if not rows:
            continue
        small, large = rows[0], rows[-1]
        positions = {name: trainer["positions_per_step"] for name, trainer in small["trainers"].items()}
        out.append(
            {
                "regime": regime,
                "words": words,
                "smallest": {"params_m": small["point"]["n_params"] / 1e6, "speedup": small["speedup"]},
                "largest": {
                    "params_m": large["point"]["n_params"] / 1e6,
                    "speedup": large["speedup"],
                    "runs": spread(large["speedup_runs"]),
                },
                "ratio_fell": large["speedup"] < small["speedup"],
                "slower_at_largest": large["speedup"] < 1.0,
                "positions_saved_percent": 100 * (1 - positions["dpo_ref"] / positions["trl"]),
            }
        )
    return out


def headline_params_m(points: Sequence[Mapping], workload: Mapping) -> float:
    """The parameters, in millions, of the headline workload's model (``bench.training.workload.workload``):
    those of the scaling study's point of the same kind of pair, depth and width."""
    shape = ("regime", "n_layer", "n_embd")
    for p in points:
        if all(p["point"][key] == workload[key] for key in shape):
            return p["point"]["n_params"] / 1e6
    raise ValueError(f"the scaling study has no point of the headline workload's {', '.join(shape)}")


def reproduction_times(entry: Mapping, goal_min: float = REPRODUCTION_GOAL_MIN, jobs: int = REPRODUCTION_JOBS) -> dict:
    """One configuration's reproduction time (``bench.reproduction.configs.cpu``) in minutes: ``wall_min``, the
    wall time; ``work_min``, the work of every part one after the other, and ``by_world_min`` of each world;
    ``split_min``, the work split perfectly over ``jobs`` parts at once; ``goal_min`` and ``within_goal``."""
    wall_min = entry["wall_time_s"] / 60
    work_min = entry["sequential_s"] / 60
    return {
        "wall_min": wall_min,
        "work_min": work_min,
        "by_world_min": {world: seconds / 60 for world, seconds in entry["sequential_by_world_s"].items()},
        "split_min": work_min / jobs,
        "goal_min": goal_min,
        "within_goal": wall_min <= goal_min,
    }


def performance_view(bench: Mapping) -> dict:
    """What the performance page says of ``bench`` (``make bench``'s results by part) beyond its raw numbers,
    each a number or a flag the page prints as it is:

    ``headline_params_m`` (:func:`headline_params_m`); ``regimes`` (:func:`scaling_regimes`);
    ``slower_at_largest``, whether dpo_ref is the slower at the largest size with either kind of pair;
    ``mfu_percent``, each trainer's model FLOPs utilisation on the headline workload, in percent;
    ``rollout_runs``, the :func:`spread` of the KV cache's speed-up; ``reproduction``, the ``cpu``
    configuration's :func:`reproduction_times`; ``tools``, the versions of Lighthouse and axe-core (empty
    where not recorded); ``lighthouse_runs``, the runs each page's Lighthouse score is the median of
    (``None`` where Lighthouse did not run).
    """
    points = bench["scaling"]["points"]
    regimes = scaling_regimes(points)
    web = bench["web"]
    versions = web.get("versions", {})
    lighthouse = web["lighthouse"]
    return {
        "headline_params_m": headline_params_m(points, bench["training"]["workload"]["workload"]),
        "regimes": regimes,
        "slower_at_largest": any(regime["slower_at_largest"] for regime in regimes),
        "mfu_percent": {name: 100 * trainer["mfu"] for name, trainer in bench["training"]["trainers"].items()},
        "rollout_runs": spread(bench["rollouts"]["speedup_runs"]),
        "reproduction": reproduction_times(bench["reproduction"]["configs"]["cpu"]),
        "tools": {tool: versions.get(tool, "") for tool in ("lighthouse", "axe")},
        "lighthouse_runs": len(lighthouse["pages"]["/"]["performance_runs"]) if lighthouse["status"] == "ok" else None,
    }


MACROS: tuple[Callable, ...] = (
    num,
    interval,
    percent,
    seeds,
    verdict,
    verdict_counts,
    count,
    direction,
    label,
    setting,
    best,
    least,
    ordered,
    setting_at,
    failed,
    ppo_budget,
    widest,
    share_range,
    only_chosen,
    dpop_kept,
    over_optimised,
    matched,
    standing,
    by_temperature,
    join,
    variants,
    data_file,
    provenance,
    protocol,
    changes,
)


def define_env(env) -> None:
    """mkdocs-macros' entry point: the summaries as variables, the helpers as macros."""
    for name, value in variables().items():
        env.variables[name] = value
    for function in MACROS:
        env.macro(function)
