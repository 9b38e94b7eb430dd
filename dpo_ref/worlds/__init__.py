"""The experimental worlds (ARCHITECTURE.md, "The two worlds"): built locally, nothing downloaded.

* :mod:`dpo_ref.worlds.exact`: every response enumerable, every expectation an exact sum,
  so every reward and KL is exact and the optimal frontier is known;
* :mod:`dpo_ref.worlds.sentiment`: the DPO paper's IMDb experiment at laptop scale (a
  generated review corpus, a tiny GPT-2, VADER as the judge); rewards and KLs estimated
  from samples.

The experiments that run in them are in :mod:`dpo_ref.experiments`.
"""
