"""The experimental worlds (DESIGN section 5): built locally, nothing downloaded.

* :mod:`dpo_ref.worlds.exact`: every response enumerable, every expectation an exact sum.
"""
