"""The numbers a Plotly figure holds, read from the figure objects, not from its JSON.

Plotly's JSON writer turns NaN and infinities into ``null``, so a check on the
serialised figure passes whatever the figure holds. Imported by tests/test_figures.py
and tests/test_measured_figures.py.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import plotly.graph_objects as go


def leaves(obj, path: str = ""):
    """``(path, value)`` for every number and ``None`` inside ``obj`` (dicts, lists, tuples, arrays)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from leaves(value, f"{path}.{key}" if path else key)
    elif isinstance(obj, (list, tuple, np.ndarray)):
        for i, value in enumerate(obj.tolist() if isinstance(obj, np.ndarray) else obj):
            yield from leaves(value, f"{path}[{i}]")
    elif obj is None or (isinstance(obj, numbers.Real) and not isinstance(obj, bool)):
        yield path, obj


def non_finite_values(fig: go.Figure) -> list[str]:
    """Where ``fig`` holds a number that is not finite, anywhere: traces (x, y, z, customdata,
    error arrays, ...), animation frames, and the data that sliders and menus restyle to.
    In traces and frames a missing value (``None``) counts too: Plotly draws it as a gap."""
    found = []
    for path, value in leaves(fig.to_plotly_json()):
        if value is None:
            if path.startswith(("data", "frames")):
                found.append(f"{path}: None")
        elif not math.isfinite(value):
            found.append(f"{path}: {value}")
    return found
