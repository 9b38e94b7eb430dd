"""Read a results file written by ``dpo-ref reproduce``, with one clear error if it is unusable.

Figures and pages read measured results through :func:`load_results`::

    data = load_results("exact_frontier", config="cpu", require=("points", "optimal_frontier"))

It reads ``docs/results/data/<config>/<name>.json`` (see :mod:`dpo_ref.experiments`
for the layout) and raises :class:`ResultsFileError`, naming the file, the problem and
the command that rewrites it, when the file is missing, empty, not JSON (a
half-written or hand-edited file), holds NaN or infinity, is not a JSON object, or
lacks ``provenance`` or a required key. A site build that meets such a file fails
with that message instead of a ``KeyError`` deep in a figure.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dpo_ref.errors import UserError
from dpo_ref.paths import RESULTS_DIR

__all__ = ["RESULTS_DIR", "ResultsFileError", "load_results", "results_path"]


class ResultsFileError(UserError):
    """A results file is missing or unusable; the message names the file and how to rewrite it."""


def results_path(name: str, *, config: str = "cpu", data_dir: str | os.PathLike | None = None) -> Path:
    """Where ``dpo-ref reproduce --config CONFIG`` writes the results file ``name``."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise UserError(f"name must be a results file name such as 'exact_frontier', got {name!r}")
    stem = name[:-5] if name.endswith(".json") else name
    return Path(RESULTS_DIR if data_dir is None else data_dir) / config / f"{stem}.json"


def _reject_constant(constant: str):
    raise ValueError(f"holds {constant}, which is not a number JSON allows")


def load_results(
    name: str,
    *,
    config: str = "cpu",
    data_dir: str | os.PathLike | None = None,
    require: Iterable[str] = (),
) -> dict[str, Any]:
    """The JSON object of results file ``name`` of ``config``, checked; see the module docstring.

    Args:
        name: file name without ``.json``, e.g. ``"exact_frontier"``.
        config: ``"smoke"``, ``"cpu"`` or ``"gpu"``; the sub-folder.
        data_dir: the results folder (default: :data:`dpo_ref.paths.RESULTS_DIR`).
        require: top-level keys the caller reads; each missing one is an error.
    """
    path = results_path(name, config=config, data_dir=data_dir)
    fix = f"run `dpo-ref reproduce --config {config}` to write it"

    def fail(problem: str) -> ResultsFileError:
        return ResultsFileError(f"results file {path}: {problem}; {fix}")

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise fail("is missing") from None
    except IsADirectoryError:
        raise fail("is a folder, not a file") from None
    except UnicodeDecodeError as exc:
        raise fail(f"is not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise fail("is empty (a run killed while writing it?)")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise fail(
            f"is not valid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); it may be truncated"
        ) from None
    except ValueError as exc:  # NaN / Infinity, from _reject_constant
        raise fail(str(exc)) from None
    if not isinstance(data, dict):
        raise fail(f"must hold a JSON object, got a JSON {type(data).__name__}")
    missing = [key for key in ("provenance", *require) if key not in data]
    if missing:
        raise fail(f"has no key(s) {missing} (its keys: {sorted(data)}); it was written by another version")
    return data
