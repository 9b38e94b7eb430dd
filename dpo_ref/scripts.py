"""Start-up shared by the example scripts: flags over a config dataclass, versions, seeds.

Each example keeps its defaults in a commented dataclass at its top; :func:`prepare_run` turns
the fields into command-line flags, applies the script's fast ("smoke") sizes, prints
the library versions and settings a run used (so a copied script reports what it ran
with), fixes the seeds and keeps progress bars of ``datasets`` out of the output.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import platform
import sys
from typing import Any, TypeVar

Config = TypeVar("Config")

SMOKE_ENV = "DPO_REF_SMOKE"  # set to 1 by the site build and the tests: run the fast sizes


def parse_config(config_class: type[Config], *, smoke: dict[str, Any], description: str | None = None) -> Config:
    """One ``--flag-name`` per dataclass field; in a notebook kernel, the defaults.

    The dataclass needs a ``smoke: bool`` field. ``--smoke`` or ``DPO_REF_SMOKE=1`` swaps
    in the sizes given by ``smoke``, keeping the same code path as a full run.
    """
    parser = argparse.ArgumentParser(description=(description or "").strip().splitlines()[0] if description else None)
    for field in dataclasses.fields(config_class):
        flag = "--" + field.name.replace("_", "-")
        if isinstance(field.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            parser.add_argument(flag, type=type(field.default), default=field.default)
    in_notebook = "ipykernel" in sys.modules  # the site executes examples as notebooks
    config = config_class(**vars(parser.parse_args([] if in_notebook else None)))
    if config.smoke or os.environ.get(SMOKE_ENV) == "1":
        config = dataclasses.replace(config, smoke=True, **smoke)
    return config


def versions(*libraries: str) -> str:
    """``python 3.11.7 | torch 2.13.0 | transformers ... | dpo_ref 0.1.0`` for the given extras."""
    parts = [f"python {platform.python_version()}"]
    for name in ("torch", "transformers", *libraries, "dpo_ref"):
        parts.append(f"{name} {importlib.import_module(name).__version__}")
    return " | ".join(parts)


def prepare_run(
    config_class: type[Config],
    *,
    smoke: dict[str, Any],
    description: str | None = None,
    libraries: tuple[str, ...] = (),
) -> Config:
    """What an example does first: its settings, the versions it runs with, fixed seeds, quiet progress bars."""
    import random

    import datasets
    import torch

    config = parse_config(config_class, smoke=smoke, description=description)
    print(versions(*libraries))
    print(config)
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    datasets.disable_progress_bars()  # keep the output to what the script prints
    return config
