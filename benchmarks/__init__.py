"""Measured comparisons for the performance page: dpo_ref against TRL, the site, the reproduction.

``make bench`` (``python -m benchmarks.run``) runs them and writes
``benchmarks/results/*.json`` and the table of ``docs/performance.md``. These are
benchmarks, not tests: the tests only check that the numbers are computed correctly.
"""
