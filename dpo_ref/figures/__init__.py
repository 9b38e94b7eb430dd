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

1. write a pure function (the measured ones live in ``measured_exact`` and
   ``measured_sentiment``) that reads its results file through
   :func:`dpo_ref.results.load_results` and returns ``theme.style(fig)``, colouring each
   method with ``METHOD_COLOURS[name]`` and naming it with ``METHOD_LABELS[name]``
   (``name`` a method of :mod:`dpo_ref.methods`);
2. register it in ``FIGURES`` below;
3. put a ```` ```figure ```` fence with its id in the page's "Measured" section, and
   under it a caption paragraph ending in ``{ .dpo-caption }`` that says what was run
   (config, model size, seeds) and links the data file.
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
    "paper-summarization": "dpo_ref.figures.paper_results:summarization",
    "paper-summarization-ood": "dpo_ref.figures.paper_results:summarization_out_of_distribution",
    "variant-cdpo": "dpo_ref.figures.bigger_picture:conservative_dpo",
    "variant-hinge": "dpo_ref.figures.bigger_picture:hinge",
    "variant-ipo": "dpo_ref.figures.bigger_picture:ipo",
    "variant-kto": "dpo_ref.figures.bigger_picture:kto",
    "variant-orpo": "dpo_ref.figures.bigger_picture:orpo",
    "variant-simpo": "dpo_ref.figures.bigger_picture:simpo",
    # measured figures, from the committed results of `dpo-ref reproduce` (docs/results/data/)
    "measured-ppo-runs": "dpo_ref.figures.measured_exact:ppo_runs",
    "measured-ppo-runs-numbers": "dpo_ref.figures.measured_exact:ppo_runs_numbers",
    "measured-dpo-recovery": "dpo_ref.figures.measured_exact:dpo_recovery",
    "measured-dpo-recovery-numbers": "dpo_ref.figures.measured_exact:dpo_recovery_numbers",
    "measured-beta-sweep": "dpo_ref.figures.measured_exact:beta_sweep",
    "measured-beta-sweep-numbers": "dpo_ref.figures.measured_exact:beta_sweep_numbers",
    "measured-matched-kl": "dpo_ref.figures.measured_exact:matched_kl",
    "measured-exact-frontier": "dpo_ref.figures.measured_exact:exact_frontier",
    "measured-exact-frontier-numbers": "dpo_ref.figures.measured_exact:exact_frontier_numbers",
    "measured-exact-variants": "dpo_ref.figures.measured_exact:exact_variants",
    "measured-exact-variants-numbers": "dpo_ref.figures.measured_exact:exact_variants_numbers",
    "measured-deterministic": "dpo_ref.figures.measured_exact:deterministic",
    "measured-deterministic-numbers": "dpo_ref.figures.measured_exact:deterministic_numbers",
    "sentiment-frontier": "dpo_ref.figures.measured_sentiment:sentiment_frontier",
    "sentiment-frontier-numbers": "dpo_ref.figures.measured_sentiment:sentiment_frontier_numbers",
    "sentiment-win-rates": "dpo_ref.figures.measured_sentiment:sentiment_win_rates",
    "sentiment-win-rates-numbers": "dpo_ref.figures.measured_sentiment:sentiment_win_rates_numbers",
    "sentiment-dpo-curves": "dpo_ref.figures.measured_sentiment:sentiment_dpo_curves",
    "sentiment-dpo-curves-numbers": "dpo_ref.figures.measured_sentiment:sentiment_dpo_curves_numbers",
    "sentiment-variants": "dpo_ref.figures.measured_sentiment:sentiment_variants",
    "sentiment-variants-numbers": "dpo_ref.figures.measured_sentiment:sentiment_variants_numbers",
    "sentiment-cost": "dpo_ref.figures.measured_sentiment:sentiment_cost",
    "sentiment-cost-numbers": "dpo_ref.figures.measured_sentiment:sentiment_cost_numbers",
    "sentiment-matched-kl": "dpo_ref.figures.measured_sentiment:sentiment_matched_kl",
    "sentiment-matched-kl-numbers": "dpo_ref.figures.measured_sentiment:sentiment_matched_kl_numbers",
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
