"""Reproduction wall times, read from the provenance of ``docs/results/data`` (not rerun).

``dpo-ref reproduce`` writes a ``provenance`` block into every results file, with the
wall time of the experiment group that produced it; files of one group share that
block. Groups may run one after the other or side by side (``--jobs 2``): a
configuration's reproduction time is the wall-clock time its groups covered, the union
of their ``[end - wall_time_s, end]`` intervals, so overlapping groups count once (a
seed whose parts ran at different times records each part's interval, under ``parts``);
``sequential_s`` is the plain sum, what one process would take, and ``sequential_by_world_s``
splits it by the world a file's name starts with (``exact_seed0.json``: ``exact``).
Two provenance layouts exist (``config`` as a dict with ``name``, or ``config`` as the
name string); both are read. A file without provenance is skipped and counted; a summary
(its provenance lists the seeds it read) is passed over, its seeds' files count instead.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path


def _config_name(provenance: dict, path: Path, data_dir: Path) -> str | None:
    config = provenance.get("config")
    if isinstance(config, dict) and isinstance(config.get("name"), str):
        return config["name"]
    if isinstance(config, str):
        return config
    fields = provenance.get("config_fields")
    if isinstance(fields, dict) and isinstance(fields.get("name"), str):
        return fields["name"]
    relative = path.relative_to(data_dir)
    return relative.parts[0] if len(relative.parts) > 1 else None


def read(data_dir: Path) -> dict:
    """``{config: {"wall_time_s", "groups", "files", "devices", "latest_date"}}`` plus skipped files."""
    configs: dict[str, dict] = {}
    skipped = []
    seen: set[tuple] = set()
    for path in sorted(Path(data_dir).rglob("*.json")) if Path(data_dir).is_dir() else []:
        try:
            data = json.loads(path.read_text())
            provenance = data["provenance"]
            wall = float(provenance["wall_time_s"])
        except (OSError, ValueError, KeyError, TypeError):
            skipped.append(str(path))
            continue
        if isinstance(provenance.get("seeds"), dict) and "seeds" in provenance["seeds"]:
            continue  # a summary of seed files: its wall time is theirs, already counted
        name = _config_name(provenance, path, Path(data_dir)) or "unknown"
        entry = configs.setdefault(
            name,
            {
                "wall_time_s": 0.0,
                "sequential_s": 0.0,
                "sequential_by_world_s": {},
                "groups": 0,
                "files": 0,
                "devices": [],
                "latest_date": None,
                "_intervals": [],
            },
        )
        entry["files"] += 1
        key = (name, json.dumps(provenance, sort_keys=True, default=str))
        if key in seen:  # another file of a group already counted
            continue
        seen.add(key)
        entry["sequential_s"] += wall
        world = path.stem.split("_")[0]
        entry["sequential_by_world_s"][world] = entry["sequential_by_world_s"].get(world, 0.0) + wall
        entry["groups"] += 1
        parts = provenance.get("parts") if isinstance(provenance.get("parts"), dict) else {"": provenance}
        entry["_intervals"] += [_interval(part.get("date"), float(part["wall_time_s"])) for part in parts.values()]
        device = str(provenance.get("device", "unknown"))
        if device not in entry["devices"]:
            entry["devices"].append(device)
        date = provenance.get("date")
        if isinstance(date, str) and (entry["latest_date"] is None or date > entry["latest_date"]):
            entry["latest_date"] = date
    for entry in configs.values():
        entry["wall_time_s"] = _covered_seconds(entry.pop("_intervals"))
    return {"data_dir": str(data_dir), "configs": configs, "skipped_files": skipped}


def _interval(date, wall: float) -> tuple[float, float]:
    """``(start, end)`` in seconds since the epoch; without a readable end date, ``(nan, wall)``."""
    try:
        end = datetime.datetime.fromisoformat(date).timestamp()
    except (TypeError, ValueError):
        return float("nan"), wall
    return end - wall, end


def _covered_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of the intervals; a group without a date counts in full."""
    undated = sum(wall for start, wall in intervals if start != start)  # NaN start
    merged: list[list[float]] = []
    for start, end in sorted(i for i in intervals if i[0] == i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return undated + sum(end - start for start, end in merged)
