"""A world's reference model trained once per ``dpo-ref reproduce`` and shared by its seeds.

Every seed of a group runs on the same world (the same corpus, prompts and pretrained
reference; only the preference pairs and what follows depend on the seed), so training
the reference again for each seed repeats a minute of identical work. :func:`trained_once`
returns a stored copy instead of training again:

* within one process (``reproduce`` running seeds one after another), from memory;
* across the processes of ``reproduce --jobs N``, from the folder named by the
  environment variable :data:`FOLDER_VARIABLE`, which ``reproduce`` creates for that
  invocation and deletes afterwards. A lock file makes a second process wait for the first
  one's model instead of training its own.

Pretraining is seeded and uses no global random state, so a stored copy is bit for bit
the model a fresh run trains: results do not depend on which seed trained it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

FOLDER_VARIABLE = "DPO_REF_SHARED_WORLDS"
_in_memory: dict[str, dict] = {}


def reference_once(name: str, world_config, device, train: Callable[[], dict]) -> dict:
    """A world's pretrained reference (``train()``'s result), trained once per world configuration and device.

    The key is the whole world configuration (a dataclass), never a list of the fields pretraining reads: a
    field added to the world later cannot leave a stale model in use.
    """
    return trained_once(name, {"world": dataclasses.asdict(world_config), "device": str(device)}, train)


def trained_once(name: str, settings: dict, train: Callable[[], dict]) -> dict:
    """``train()``'s result (tensors and plain values), computed once for these ``settings``.

    Args:
        name: what is stored, e.g. ``"sentiment-reference"`` (part of the file name).
        settings: everything the result depends on (the world's config and the device);
            a different value is a different entry.
        train: makes the result, e.g. ``{"state_dict": ..., "history": [...]}``.
    """
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    key = f"{name}-{digest}"
    if key not in _in_memory:
        folder = os.environ.get(FOLDER_VARIABLE)
        _in_memory[key] = _from_folder(Path(folder), key, train) if folder else train()
    return _in_memory[key]


def _from_folder(folder: Path, key: str, train: Callable[[], dict]) -> dict:
    path = folder / f"{key}.pt"
    with open(folder / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if train() raises
        if path.is_file():
            return torch.load(path, map_location="cpu", weights_only=True)
        result = train()
        torch.save(result, folder / f"{key}.pt.partial")
        os.replace(folder / f"{key}.pt.partial", path)
        return result
