"""Test-wide settings: never touch the network, keep runs deterministic."""

import os

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
