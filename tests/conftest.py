"""Test-wide settings: never touch the network, keep runs deterministic."""

import json
import os
import subprocess
import sys

import pytest
import torch

# TRL and transformers otherwise try to reach the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The test models are tiny: a second torch thread only adds synchronisation, and
    on shared cores it made each training step about 20x slower (measured here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """`dpo-ref reproduce --config smoke --jobs 2`, as `make reproduce` runs it: every group's
    seeds side by side, then the summaries. Returns ``(files by name, results folder)``."""
    out = tmp_path_factory.mktemp("smoke-results")
    command = [
        sys.executable,
        "-m",
        "dpo_ref.cli",
        "reproduce",
        "--config",
        "smoke",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--jobs",
        "2",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return {path.stem: json.loads(path.read_text()) for path in (out / "smoke").glob("*.json")}, out


def without_timings(obj):
    """A results file's numbers without what depends on the machine's load: provenance, times, memory."""
    if isinstance(obj, dict):
        return {
            k: without_timings(v)
            for k, v in obj.items()
            if k != "provenance" and not any(word in k for word in ("wall", "cpu_time", "peak", "rss"))
        }
    if isinstance(obj, list):
        return [without_timings(v) for v in obj]
    return obj
