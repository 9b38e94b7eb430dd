"""Every figure of the site, as pure functions that return a Plotly figure (or HTML).

One module per page; this registry names each figure once. Pages place a figure with
a fenced block whose language is ``figure`` and whose body is the figure's id::

    ```figure
    dpo-loss-margin
    ```

The same ids name the files that ``dpo-ref figures --out DIR`` writes, and the tests
build every figure listed here. Colours and the template live in
:mod:`dpo_ref.figures.theme`: reuse ``METHOD_COLOURS`` for any new figure.

Adding a measured figure to a page:

1. write a pure function in :mod:`dpo_ref.figures.measured` (one module per theme) that
   reads a summary with :func:`dpo_ref.figures.measured.common.summary` and returns
   ``theme.style(fig)`` (or an HTML table), colouring each method with
   ``METHOD_COLOURS[name]`` and naming it with ``METHOD_LABELS[name]`` (``name`` a method
   of :mod:`dpo_ref.methods`), and drawing every interval the summary holds;
2. register it in ``FIGURES`` below;
3. put a ```` ```figure ```` fence with its id in the page, and under it a caption
   paragraph ending in ``{ .dpo-caption }`` that says what was run and which interval is
   drawn; the sentences around it are Markdown, with numbers from the summaries through
   :mod:`dpo_ref.site.macros`.
"""

from __future__ import annotations

import importlib
from typing import Any

from dpo_ref.errors import UnknownNameError
from dpo_ref.figures.theme import METHOD_COLOURS, METHOD_LABELS  # noqa: F401  (re-exported)

# figure id -> "module:function", in the order of the site's pages
FIGURES: dict[str, str] = {
    "what-dpo-does": "dpo_ref.figures.dpo_vs_rlhf:what_dpo_does",
    "rlhf-pipeline": "dpo_ref.figures.rlhf_pipeline:pipeline_diagram",
    "bradley-terry-chosen-reward": "dpo_ref.figures.reward_modelling:bradley_terry_chosen_reward",
    "bradley-terry-shift": "dpo_ref.figures.reward_modelling:bradley_terry_shift",
    "reward-hacking": "dpo_ref.figures.ppo_problem:reward_hacking",
    "implicit-reward-offset": "dpo_ref.figures.key_insight:implicit_reward_offset",
    "dpo-loss-margin": "dpo_ref.figures.loss:dpo_loss_margin",
    "beta-slider": "dpo_ref.figures.beta:beta_slider",
    "dpo-vs-rlhf-paths": "dpo_ref.figures.dpo_vs_rlhf:dpo_vs_rlhf_paths",
    "playground": "dpo_ref.figures.playground:playground",
    "playground-twin-beta": "dpo_ref.figures.playground:twin_beta_paths",
    "playground-displacement": "dpo_ref.figures.playground:playground_displacement",
    "playground-beta": "dpo_ref.figures.playground:playground_beta",
    "playground-rlhf": "dpo_ref.figures.playground:playground_rlhf",
    "playground-deterministic": "dpo_ref.figures.playground:playground_deterministic",
    "paper-summarization": "dpo_ref.figures.paper_results:summarization",
    "paper-summarization-ood": "dpo_ref.figures.paper_results:summarization_out_of_distribution",
    "variant-cdpo": "dpo_ref.figures.bigger_picture:variant_cdpo",
    "variant-hinge": "dpo_ref.figures.bigger_picture:variant_hinge",
    "variant-ipo": "dpo_ref.figures.bigger_picture:variant_ipo",
    "variant-kto": "dpo_ref.figures.bigger_picture:variant_kto",
    "variant-orpo": "dpo_ref.figures.bigger_picture:variant_orpo",
    "variant-simpo": "dpo_ref.figures.bigger_picture:variant_simpo",
    "variant-dpop": "dpo_ref.figures.bigger_picture:variant_dpop",
    # measured figures: pure functions of the summaries of `dpo-ref reproduce` (dpo_ref/figures/measured/)
    "measured-ppo-runs": "dpo_ref.figures.measured.ppo:ppo_runs",
    "measured-ppo-diagnostics": "dpo_ref.figures.measured.ppo:exact_ppo_diagnostics",
    "sentiment-ppo-diagnostics": "dpo_ref.figures.measured.ppo:sentiment_ppo_diagnostics",
    "measured-ppo-table": "dpo_ref.figures.measured.ppo:exact_ppo_table",
    "sentiment-ppo-table": "dpo_ref.figures.measured.ppo:sentiment_ppo_table",
    "measured-dpo-recovery": "dpo_ref.figures.measured.optimum:dpo_recovery",
    "measured-displacement": "dpo_ref.figures.measured.studies:displacement",
    "measured-dpop-displacement": "dpo_ref.figures.measured.studies:dpop_displacement",
    "measured-beta-sweep": "dpo_ref.figures.measured.optimum:beta_sweep",
    "measured-overoptimisation": "dpo_ref.figures.measured.studies:overoptimisation",
    "measured-matched-kl": "dpo_ref.figures.measured.frontier:exact_matched_kl",
    "measured-online-offline": "dpo_ref.figures.measured.studies:online_offline",
    "sentiment-cost": "dpo_ref.figures.measured.sentiment:cost",
    "sentiment-cost-table": "dpo_ref.figures.measured.sentiment:cost_table",
    "measured-exact-frontier": "dpo_ref.figures.measured.frontier:exact_frontier",
    "measured-exact-settings-table": "dpo_ref.figures.measured.frontier:exact_settings_table",
    "sentiment-frontier": "dpo_ref.figures.measured.frontier:sentiment_frontier",
    "sentiment-settings-table": "dpo_ref.figures.measured.frontier:sentiment_settings_table",
    "sentiment-win-rates": "dpo_ref.figures.measured.sentiment:win_rates",
    "sentiment-win-rates-table": "dpo_ref.figures.measured.sentiment:win_rates_table",
    "sentiment-length": "dpo_ref.figures.measured.sentiment:length",
    "sentiment-length-table": "dpo_ref.figures.measured.sentiment:length_table",
    "sentiment-dpo-curves": "dpo_ref.figures.measured.sentiment:dpo_curves",
    "sentiment-kl-along-training": "dpo_ref.figures.measured.sentiment:kl_along_training",
    "measured-distribution-shift": "dpo_ref.figures.measured.studies:distribution_shift",
    "measured-exact-variants": "dpo_ref.figures.measured.frontier:exact_variants",
    "measured-exact-variants-table": "dpo_ref.figures.measured.frontier:exact_variants_table",
    "measured-matched-kl-table": "dpo_ref.figures.measured.frontier:exact_matched_kl_table",
    "sentiment-variants": "dpo_ref.figures.measured.frontier:sentiment_variants",
    "sentiment-matched-kl-table": "dpo_ref.figures.measured.frontier:sentiment_matched_kl_table",
    "measured-deterministic": "dpo_ref.figures.measured.studies:deterministic",
    # the performance page: measurements of `make bench` (benchmarks/results/)
    "performance-summary-table": "dpo_ref.figures.performance:summary_table",
    "performance-scaling": "dpo_ref.figures.performance:scaling_ratio",
    "performance-scaling-table": "dpo_ref.figures.performance:scaling_table",
    "performance-phases": "dpo_ref.figures.performance:step_phases",
}


def figure_function(figure_id: str):
    """The function that draws ``figure_id``; ``KeyError`` naming the known ids if unknown."""
    try:
        target = FIGURES[figure_id]
    except KeyError:
        raise UnknownNameError(f"unknown figure {figure_id!r}; known figures: {', '.join(FIGURES)}") from None
    module_name, function_name = target.split(":")
    return getattr(importlib.import_module(module_name), function_name)


def build_figure(figure_id: str) -> Any:
    """Draw one figure: a ``plotly.graph_objects.Figure``, or an HTML string for diagrams."""
    return figure_function(figure_id)()
