"""dpo_ref against TRL on one workload: throughput, memory, losses, FLOPs performed, step phases.

:func:`measure` prepares a :class:`benchmarks.workload.Workload`, then runs each trainer
``repeats`` times, each run in its own process (:mod:`benchmarks.trainers`), interleaved
and alternating who goes first, so load that changes between repeats hits both.

* Throughput counts real tokens (prompt + completion of both sequences of every pair,
  no padding) over steps 2 to N: the first step, which pays one-off initialisation, is
  left out of both. The ratio pairs each dpo_ref run with the TRL run next to it.
* Peak RSS is each run's whole process.
* MFU is the FLOPs the trainer actually performed per second (:mod:`benchmarks.flops`)
  over the rate of a float32 matrix product at the width of its MLP: each run times one
  in its own process, and every trainer is divided by the median of those rates
  (:func:`with_common_mfu`).
* The step's phases: forward (the loss), optimizer step, and the rest (backward and
  gradient clipping), as fractions of the timed steps.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_one(trainer: str, workload_dir: Path, steps: int | None, threads: int | None) -> dict:
    """One training run of ``trainer`` in a fresh process; its measurements."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "TQDM_DISABLE": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        env["HF_DATASETS_CACHE"] = str(Path(tmp) / "datasets-cache")  # no reuse of TRL's cached reference pass
        command = [sys.executable, "-m", "benchmarks.trainers", trainer, str(workload_dir), str(out)]
        if steps:
            command.append(str(steps))
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"the {trainer} run failed:\n" + "\n".join(done.stderr.splitlines()[-20:]))
        return json.loads(out.read_text())


def step_tokens(tokens: dict, order: list[int], batch_size: int, steps: int) -> list[int]:
    from benchmarks.workload import step_rows

    per_row = (tokens["chosen_attention_mask"].sum(1) + tokens["rejected_attention_mask"].sum(1)).tolist()
    return [sum(per_row[order[i]] for i in step_rows(s, len(order), batch_size)) for s in range(steps)]


def measure(workload, repeats: int, steps: int | None, threads: int | None, trainers: list[str], log) -> dict:
    """Every trainer ``repeats`` times on ``workload``; see the module docstring."""
    from benchmarks.workload import load, prepare

    with tempfile.TemporaryDirectory() as tmp:
        workload_dir = Path(tmp) / "workload"
        log(f"preparing the workload ({workload.regime} pairs, {workload.n_layer} x {workload.n_embd})")
        meta = prepare(workload_dir, workload)
        steps = steps or workload.steps
        _, tokens = load(workload_dir)
        tokens_per_step = step_tokens(tokens, meta["order"], workload.batch_size, steps)
        runs: dict[str, list[dict]] = {t: [] for t in trainers}
        for r in range(repeats):
            for trainer in trainers if r % 2 == 0 else trainers[::-1]:
                log(f"run {r + 1}/{repeats}: {trainer}")
                runs[trainer].append(run_one(trainer, workload_dir, steps, threads))
    timed_tokens = sum(tokens_per_step[1:])  # steps 2..N
    summary = {trainer: _trainer_summary(results, timed_tokens, workload, meta) for trainer, results in runs.items()}
    matmul_rate = with_common_mfu(summary)
    paired = [x / y for x, y in zip(summary["dpo_ref"]["tokens_per_s_runs"], summary["trl"]["tokens_per_s_runs"])]
    rss = [x["peak_rss_bytes"] / y["peak_rss_bytes"] for x, y in zip(runs["dpo_ref"], runs["trl"])]
    diffs = [
        max(abs(a - b) for a, b in zip(x["losses"], y["losses"], strict=True))
        for others in (runs["dpo_ref"], runs.get("dpo_ref_plain", []))
        for x in others
        for y in runs["trl"]
    ]
    meta.pop("order")
    return {
        "workload": meta,
        "steps": steps,
        "repeats": repeats,
        "timed_steps": f"2..{steps}",
        "timed_tokens": timed_tokens,
        "trl_tokens_match": all(x.get("tokens_match") for x in runs["trl"]),
        "max_loss_diff": max(diffs),
        "losses_repeatable": all(x["losses"] == runs[t][0]["losses"] for t in trainers for x in runs[t]),
        "speedup": statistics.median(paired),
        "speedup_runs": paired,
        "rss_ratio": statistics.median(rss),
        "matmul_flops_per_s": matmul_rate,
        "trainers": summary,
    }


def with_common_mfu(summary: dict[str, dict]) -> float:
    """Set every trainer's MFU against one rate, the median matmul rate of every run of every trainer.

    Each run times the machine's matrix products in its own process, at the width of the
    model; the rates differ from process to process by more than the trainers do (88 to
    170 GFLOP/s in one bench), so each trainer's FLOPs per second is divided by the same
    rate: utilisation then compares what the trainers did, not what their processes measured.
    """
    rate = statistics.median(r for t in summary.values() for r in t["matmul_flops_per_s_runs"])
    for trainer in summary.values():
        trainer["mfu_runs"] = [f / rate for f in trainer["flops_per_s_runs"]]
        trainer["mfu"] = statistics.median(trainer["mfu_runs"])
    return rate


def _trainer_summary(results: list[dict], timed_tokens: int, workload, meta: dict) -> dict:
    from benchmarks.flops import performed_flops

    rates, flops_per_s, phases = [], [], []
    for x in results:
        seconds = x["end"] - x["step_starts"][1]
        rates.append(timed_tokens / seconds)
        flops = sum(
            performed_flops(step, workload.n_layer, workload.n_embd, meta["vocab_size"]) for step in x["work"][1:]
        )
        flops_per_s.append(flops / seconds)  # steps 2..N, as timed
        forward, optimizer = sum(x["forward_s"][1:]), sum(x["optimizer_s"][1:])
        phases.append(
            {
                "forward": forward / seconds,
                "optimizer": optimizer / seconds,
                "backward_and_rest": 1 - (forward + optimizer) / seconds,
            }
        )
    positions = [sum(b * t for b, t in step["blocks"]) for step in results[0]["work"][1:]]
    return {
        "tokens_per_s": statistics.median(rates),
        "tokens_per_s_runs": rates,
        "peak_rss_bytes": statistics.median(x["peak_rss_bytes"] for x in results),
        "peak_rss_bytes_runs": [x["peak_rss_bytes"] for x in results],
        "flops_per_s_runs": flops_per_s,  # what the trainer performed; MFU: see with_common_mfu
        "matmul_flops_per_s_runs": [x["matmul_flops_per_s"] for x in results],
        "phases": {k: statistics.median(p[k] for p in phases) for k in phases[0]},
        "positions_per_step": sum(positions) / len(positions),  # what the blocks computed, padding included
        "losses": results[0]["losses"],
        "process_wall_s_runs": [x["process_wall_s"] for x in results],
        "torch_threads": results[0]["torch_threads"],
    }
