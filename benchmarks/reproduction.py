"""Reproduction wall times, read from the provenance of ``docs/results/data`` (not rerun).

``dpo-ref reproduce`` writes a ``provenance`` block into every results file, with the
wall time of the experiment group that produced it; files of one group share that
block. A configuration's reproduction time is the sum over its distinct groups.
Two provenance layouts exist (``config`` as a dict with ``name``, or ``config`` as the
name string); both are read. A file without provenance is skipped and counted.
"""

from __future__ import annotations

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
        name = _config_name(provenance, path, Path(data_dir)) or "unknown"
        entry = configs.setdefault(name, {"wall_time_s": 0.0, "groups": 0, "files": 0, "devices": [], "latest_date": None})
        entry["files"] += 1
        key = (name, json.dumps(provenance, sort_keys=True, default=str))
        if key in seen:  # another file of a group already counted
            continue
        seen.add(key)
        entry["wall_time_s"] += wall
        entry["groups"] += 1
        device = str(provenance.get("device", "unknown"))
        if device not in entry["devices"]:
            entry["devices"].append(device)
        date = provenance.get("date")
        if isinstance(date, str) and (entry["latest_date"] is None or date > entry["latest_date"]):
            entry["latest_date"] = date
    return {"data_dir": str(data_dir), "configs": configs, "skipped_files": skipped}
