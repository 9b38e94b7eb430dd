"""dpo_ref: Direct Preference Optimization, explained and reproduced.

Reference losses (:mod:`dpo_ref.losses`), sequence log-probs (:mod:`dpo_ref.logps`), a
small trainer and the experiments whose measured results fill the site.
"""

__version__ = "0.1.0"
