"""How dpo_ref's advantage over TRL holds as the work grows: three model sizes, two length regimes.

Each point of :data:`POINTS` is one :func:`benchmarks.training.measure` of dpo_ref and
TRL's ``DPOTrainer`` (both at the settings of :mod:`benchmarks.trainers`: float32,
reference log-probs precomputed, TRL without gradient checkpointing), with fewer steps
and smaller batches at the larger sizes so the study fits in the bench's time budget.
The sizes span 1 M to 25 M parameters; the regimes are ``short`` (prompts of about 35
tokens, completions of about 20) and ``chat`` (prompts of about 150, completions of 100
to 250, as in public preference datasets). Prompt sharing saves the second copy of the
prompt, a share of the positions set by the prompt's length against the answers' (the
bench reports it as each trainer's ``positions_per_step``), while the framework overhead
dpo_ref also saves matters less as the model grows.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.workload import Workload

__all__ = ["Point", "POINTS", "measure_scaling"]


@dataclass(frozen=True)
class Point:
    name: str  # "1M", "6M" or "25M": the size, rounded
    n_layer: int
    n_embd: int
    n_head: int
    regime: str  # "short" or "chat"
    batch_size: int  # pairs per step
    steps: int  # the first is not timed


_SIZES = (("1M", 4, 128, 4), ("6M", 6, 256, 8), ("25M", 8, 512, 8))
# (regime, size) -> (batch, steps): the larger the step, the fewer are needed for a stable rate
_PLAN = {
    ("short", "1M"): (16, 16),
    ("short", "6M"): (16, 10),
    ("short", "25M"): (16, 6),
    ("chat", "1M"): (8, 8),
    ("chat", "6M"): (4, 6),
    ("chat", "25M"): (2, 5),
}

POINTS = tuple(
    Point(name, layers, width, heads, regime, *_PLAN[(regime, name)])
    for regime in ("short", "chat")
    for name, layers, width, heads in _SIZES
)


def workload_of(point: Point) -> Workload:
    return Workload(
        n_pairs=point.batch_size * point.steps,  # each pair seen once: the steps' batches, nothing more
        regime=point.regime,
        n_layer=point.n_layer,
        n_embd=point.n_embd,
        n_head=point.n_head,
        n_positions=512 if point.regime == "chat" else 128,
        batch_size=point.batch_size,
        steps=point.steps,
    )


def measure_scaling(repeats: int, threads: int | None, log, points=POINTS) -> dict:
    """Every point, dpo_ref against TRL; each point's parameter count, ratio and its spread over runs."""
    from benchmarks.flops import model_params
    from benchmarks.training import measure

    out = []
    for point in points:
        log(f"scaling: {point.name} parameters, {point.regime} pairs")
        workload = workload_of(point)
        result = measure(workload, repeats, None, threads, ["dpo_ref", "trl"], log)
        result["point"] = {
            **point.__dict__,
            "n_params": model_params(
                point.n_layer, point.n_embd, result["workload"]["vocab_size"], workload.n_positions
            ),
        }
        out.append(result)
    return {"points": out, "repeats": repeats}
