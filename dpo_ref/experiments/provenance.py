"""Provenance of a results file, and atomic JSON writing."""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import torch

LIBRARIES = ("dpo_ref", "torch", "transformers", "safetensors", "numpy", "datasets", "accelerate", "trl")


def library_versions() -> dict[str, str | None]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}"


def git_commit() -> str | None:
    """HEAD of the checkout holding the package, with ``-dirty`` when files differ from it."""
    from dpo_ref.paths import checkout_root

    root = checkout_root()
    if root is None:
        return None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def provenance(config, *, seeds: dict, device: torch.device, wall_time_s: float, commit: str | None = "now") -> dict:
    """What a results file records about its run; ``config`` is a dataclass or a dict of settings, ``commit``
    the checkout's commit when the code that wrote the file started (``"now"``: read it now)."""
    return {
        "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config,
        "seeds": seeds,
        "versions": library_versions(),
        "device": device_name(device),
        "git_commit": git_commit() if commit == "now" else commit,
        "wall_time_s": round(wall_time_s, 1),
        "date": now(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }


def now() -> str:
    """The time now, as provenance records it (UTC, ISO 8601, to the second)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def write_json_atomic(path: str | Path, data: dict) -> None:
    """Write JSON to a temporary file in the same folder, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; results are for everyone
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
