"""Process-wide settings: which device, which seeds, how many CPU threads.

Worlds, experiments and the command line import these instead of the trainer.
"""

from __future__ import annotations

import contextlib
import re

import torch

from dpo_ref.errors import UserError

__all__ = ["resolve_device", "seeded_generator", "hash_seeds", "torch_threads"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available; asking for CUDA without one is a :class:`UserError`."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise UserError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("device='cuda' was requested but torch sees no CUDA device; use --device cpu or auto")
    return torch.device(device)


def seeded_generator(*seeds: int) -> torch.Generator:
    """A CPU generator seeded from several integers (the same integers give the same stream).

    Sampling always draws on the CPU from such a generator, so a run gives the same
    samples on CPU and GPU and never depends on the global RNG.
    """
    g = torch.Generator()
    g.manual_seed(hash_seeds(*seeds))
    return g


def hash_seeds(*seeds: int) -> int:
    """Combine integers into one seed, stably across processes (Python's hash() is salted)."""
    value = 0x9E3779B97F4A7C15
    for s in seeds:
        value = (value * 6364136223846793005 + int(s) + 1442695040888963407) % (1 << 63)
    return value


@contextlib.contextmanager
def torch_threads(threads: int | None, device: torch.device | str = "cpu"):
    """Use ``threads`` intra-op CPU threads inside the block (None, or a CUDA device: unchanged).

    The project's models are tiny: on them a second thread mostly adds synchronisation,
    and on a shared 2-core machine spinning threads made runs ten times slower (measured).
    """
    before = torch.get_num_threads()
    if threads and torch.device(device).type == "cpu":
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
