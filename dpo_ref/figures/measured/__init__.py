"""The measured figures: pure functions of the summaries that ``dpo-ref reproduce`` writes.

Each function reads ``exact_summary.json`` or ``sentiment_summary.json`` (of the ``cpu``
configuration unless given another) through :func:`dpo_ref.results.load_results`, so a
missing or stale summary fails the site build with one message naming the file and the
command that writes it, and returns a Plotly figure, or, for the ``*-table`` ids, an HTML
table. No function writes a sentence: the pages' words are in their Markdown, with numbers
from the same summaries through :mod:`dpo_ref.site.macros`.

One module per theme:

* :mod:`~dpo_ref.figures.measured.frontier`: the reward-KL plane of both worlds, the
  variants like for like, DPO against every method at matched KL;
* :mod:`~dpo_ref.figures.measured.optimum`: DPO against the closed-form optimum (recovery,
  the beta sweep);
* :mod:`~dpo_ref.figures.measured.studies`: over-optimisation, likelihood displacement,
  online against offline DPO, distribution shift, deterministic labels;
* :mod:`~dpo_ref.figures.measured.ppo`: PPO's runs, diagnostics and failures;
* :mod:`~dpo_ref.figures.measured.sentiment`: win rates, DPO's training curves, length, cost.

The drawing conventions (95% intervals as error bars or bands, envelopes joined in KL
order, readable log ticks, legends below the plot) live in
:mod:`~dpo_ref.figures.measured.common`.
"""
