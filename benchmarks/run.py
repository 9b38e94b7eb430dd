"""``python -m benchmarks.run`` (``make bench``): dpo_ref against TRL, the site, the reproduction; one table.

Training: the workload of :mod:`benchmarks.workload` (tiny GPT-2, 512 pairs, batch 16,
beta 0.1, fp32, 50 steps, reference log-probs precomputed), each run in its own
process (:mod:`benchmarks.trainers`), dpo_ref and TRL interleaved, medians over
``--repeats``. Throughput counts real tokens (prompt + completion of both sequences of
every pair, no padding) over steps 2 to 50: the first step, which pays one-off
initialisation, is left out of both. Peak RSS is the whole process's.

Writes ``benchmarks/results/{training,site,reproduction,summary}.json`` and the table
of ``docs/performance.md``, and prints the table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "docs" / "performance.md"
PARTS = ("training", "site", "reproduction", "web")  # web: Lighthouse and axe-core (benchmarks/web_quality.py)

# figure -> (goal, "min" or "max"): the issue's targets
GOALS = {
    "speedup": (1.6, "min"),
    "rss_ratio": (0.85, "max"),
    "loss_diff": (1e-5, "max"),
    "build_s": (30.0, "max"),
    "page_gzip_mb": (1.5, "max"),
    "ready_s": (1.0, "max"),
    "reproduce_cpu_min": (20.0, "max"),
    "reproduce_gpu_min": (5.0, "max"),
}


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="one run per trainer and one page load (noisier)")
    parser.add_argument("--repeats", type=positive_int, default=None, help="runs per trainer (default 5, --quick 1)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="training steps (default 50; fewer only for smoke tests)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch threads of every run (default: torch's own)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--out-dir", default=str(RESULTS), help="where the JSON results go")
    parser.add_argument("--page", default=str(PAGE), help="the Markdown page to write")
    parser.add_argument("--results-data", default=str(ROOT / "docs" / "results" / "data"),
                        help="results files whose provenance gives the reproduction times")


# --------------------------------------------------------------------------- training


def _run_one(trainer: str, workload_dir: Path, steps: int | None, threads: int | None) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "TQDM_DISABLE": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
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


def _step_tokens(tokens: dict, order: list[int], batch_size: int, steps: int) -> list[int]:
    from benchmarks.workload import step_rows

    per_row = (tokens["chosen_attention_mask"].sum(1) + tokens["rejected_attention_mask"].sum(1)).tolist()
    return [sum(per_row[order[i]] for i in step_rows(s, len(order), batch_size)) for s in range(steps)]


def measure_training(repeats: int, steps: int | None, threads: int | None, with_plain: bool, log) -> dict:
    from benchmarks.flops import model_flops_per_token
    from benchmarks.workload import Workload, load, prepare

    import torch

    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        workload_dir = Path(tmp) / "workload"
        log("preparing the workload (pairs, tokenizer, tokens)")
        meta = prepare(workload_dir)
        workload = Workload(**meta["workload"])
        steps = steps or workload.steps
        _, tokens = load(workload_dir)
        step_tokens = _step_tokens(tokens, meta["order"], workload.batch_size, steps)
        trainers = ["dpo_ref", "trl"] + (["dpo_ref_plain"] if with_plain else [])
        runs: dict[str, list[dict]] = {t: [] for t in trainers}
        for r in range(repeats):
            sequence = trainers if r % 2 == 0 else trainers[::-1]  # interleaved, alternating who goes first
            for trainer in sequence:
                log(f"run {r + 1}/{repeats}: {trainer}")
                runs[trainer].append(_run_one(trainer, workload_dir, steps, threads))

    timed_tokens = sum(step_tokens[1:])  # steps 2..N
    flops_per_token = model_flops_per_token(workload, meta, meta["tokens_per_epoch"] / (2 * meta["n_pairs"]))
    summary = {}
    for trainer, results in runs.items():
        rates = [timed_tokens / (x["end"] - x["step_starts"][1]) for x in results]
        rss = [x["peak_rss_bytes"] for x in results]
        summary[trainer] = {
            "tokens_per_s": statistics.median(rates),
            "tokens_per_s_runs": rates,
            "peak_rss_bytes": statistics.median(rss),
            "peak_rss_bytes_runs": rss,
            # each run against the matrix-product rate measured in its own process, after it
            "mfu": statistics.median(r * flops_per_token / x["matmul_flops_per_s"] for r, x in zip(rates, results)),
            "matmul_flops_per_s_runs": [x["matmul_flops_per_s"] for x in results],
            "losses": results[0]["losses"],
            "process_wall_s_runs": [x["process_wall_s"] for x in results],
            "torch_threads": results[0]["torch_threads"],
        }
    # The headline ratio pairs each dpo_ref run with the TRL run next to it in time, so a
    # change of load between repeats cancels out; the median of those ratios.
    paired = [x / y for x, y in zip(summary["dpo_ref"]["tokens_per_s_runs"], summary["trl"]["tokens_per_s_runs"])]
    diffs = [
        max(abs(a - b) for a, b in zip(x["losses"], y["losses"], strict=True))
        for x in runs["dpo_ref"] + runs.get("dpo_ref_plain", [])
        for y in runs["trl"]
    ]
    repeatable = all(x["losses"] == runs[t][0]["losses"] for t in trainers for x in runs[t])
    meta.pop("order")
    return {
        "workload": meta,
        "steps": steps,
        "repeats": repeats,
        "timed_steps": f"2..{steps}",
        "timed_tokens": timed_tokens,
        "trl_tokens_match": all(x.get("tokens_match") for x in runs["trl"]),
        "max_loss_diff": max(diffs),
        "losses_repeatable": repeatable,
        "matmul_flops_per_s": max(x["matmul_flops_per_s"] for rs in runs.values() for x in rs),
        "model_flops_per_token": flops_per_token,
        "speedup": statistics.median(paired),
        "speedup_runs": paired,
        "trainers": summary,
    }


# --------------------------------------------------------------------------- table


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "not measured"
    if isinstance(value, str):
        return value
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 1 or value == 0:
        text = f"{value:.2f}"
    elif abs(value) >= 1e-3:
        text = f"{value:.3f}"
    else:
        text = f"{value:.1e}"
    return f"{text} {unit}".strip()


def table_rows(results: dict) -> list[dict]:
    """One row per figure: name, measured, goal, ratio (measured / goal), met."""
    rows = []

    def add(name, value, unit="", goal_key=None, shown=None):
        goal, kind = GOALS.get(goal_key, (None, None))
        row = {"figure": name, "measured": shown if shown is not None else _fmt(value, unit)}
        if goal is not None:
            row["goal"] = ("≥ " if kind == "min" else "< " if goal_key != "loss_diff" else "≤ ") + _fmt(goal, unit)
            if isinstance(value, (int, float)):
                row["ratio"] = value / goal
                row["met"] = value >= goal if kind == "min" else value <= goal
        rows.append(row)

    t = results.get("training")
    if t:
        d, trl = t["trainers"]["dpo_ref"], t["trainers"]["trl"]
        add("dpo_ref tokens/s", d["tokens_per_s"], "tok/s")
        add("TRL DPOTrainer tokens/s", trl["tokens_per_s"], "tok/s")
        if "dpo_ref_plain" in t["trainers"]:
            add("dpo_ref tokens/s, plain PairwiseObjective (no prompt sharing)", t["trainers"]["dpo_ref_plain"]["tokens_per_s"], "tok/s")
        add("throughput, dpo_ref / TRL (median of paired runs)", t["speedup"], "x", "speedup")
        add("peak RSS, dpo_ref", d["peak_rss_bytes"] / 2**20, "MiB")
        add("peak RSS, TRL", trl["peak_rss_bytes"] / 2**20, "MiB")
        add("peak RSS, dpo_ref / TRL", d["peak_rss_bytes"] / trl["peak_rss_bytes"], "x", "rss_ratio")
        add(f"largest loss difference over {t['steps']} steps", t["max_loss_diff"], "", "loss_diff")
        add("model FLOPs utilisation, dpo_ref", 100 * d["mfu"], "%")
        add("model FLOPs utilisation, TRL", 100 * trl["mfu"], "%")
    else:
        for name, key in (("throughput, dpo_ref / TRL", "speedup"), ("peak RSS, dpo_ref / TRL", "rss_ratio"),
                          ("largest loss difference", "loss_diff")):
            add(name, None, "", key)
    s = results.get("site") or {}
    build = s.get("build", {})
    add("site build time (mkdocs build)", build.get("build_s"), "s", "build_s",
        None if build.get("status") == "ok" else f"not measured ({build.get('reason', 'not run')})")
    page = s.get("page", {})
    ok = page.get("status") == "ok"
    why = None if ok else f"not measured ({page.get('reason', 'not run')})"
    add(f"heaviest page{' (' + page['path'] + ')' if ok else ''}, uncompressed",
        page.get("bytes", 0) / 2**20 if ok else None, "MB", None, why)
    add("heaviest page, gzipped", page.get("gzip_bytes", 0) / 2**20 if ok else None, "MB", "page_gzip_mb", why)
    add("time until the figures and formulas of its first screen are drawn", page.get("ready_ms", 0) / 1000 if ok else None,
        "s", "ready_s", why)
    add("time until every figure and formula on it is drawn",
        page["all_drawn_ms"] / 1000 if ok and "all_drawn_ms" in page else None, "s", None, why)
    r = (results.get("reproduction") or {}).get("configs", {})
    for config, key in (("cpu", "reproduce_cpu_min"), ("gpu", "reproduce_gpu_min")):
        entry = r.get(config)
        add(f"reproduction, {config} config", entry["wall_time_s"] / 60 if entry else None, "min", key)
    return rows


def render_table(rows: list[dict]) -> str:
    lines = ["| figure | measured | goal | measured / goal | met |", "|---|---:|---:|---:|:---:|"]
    for row in rows:
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else ""
        met = {True: "yes", False: "**no**"}.get(row.get("met"), "")
        lines.append(f"| {row['figure']} | {row['measured']} | {row.get('goal', '')} | {ratio} | {met} |")
    return "\n".join(lines)


def machine() -> dict:
    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def write_page(path: Path, rows: list[dict], results: dict) -> None:
    t = results.get("training") or {}
    w = t.get("workload", {})
    m = results["machine"]
    notes = []
    if t:
        notes.append(
            f"Training: tiny GPT-2 ({w['workload']['n_layer']} layers, width {w['workload']['n_embd']}), BPE vocabulary "
            f"of {w['vocab_size']}, {w['n_pairs']} generated review pairs (mean prompt {w['mean_prompt_tokens']:.0f} "
            f"tokens, mean completion {w['mean_completion_tokens']:.0f}), batch {w['workload']['batch_size']}, beta "
            f"{w['workload']['beta']}, float32, {t['steps']} steps of AdamW at a constant {w['workload']['learning_rate']}, "
            f"reference log-probs precomputed in both. Both trainers take the same batches in the same order: a "
            f"length-grouped order (`dpo_ref.batching.length_grouped_order`) that cuts padding for both; TRL gets it "
            f"through `train_sampling_strategy=\"sequential\"` on the reordered dataset, and its own tokenization was "
            f"checked to give dpo_ref's token ids ({'identical' if t['trl_tokens_match'] else '**different**'}). "
            f"Tokens/s counts real tokens of both sequences of every pair (the prompt twice, no padding), over steps "
            f"{t['timed_steps']}; median of {t['repeats']} interleaved runs, each in its own process; the throughput ratio is the median of the ratios of runs made next to each other "
            f"(run i of dpo_ref against run i of TRL: {', '.join(f'{x:.2f}' for x in t['speedup_runs'])}), which "
            f"cancels load that changes between repeats. Peak RSS is each run's whole process. TRL runs with gradient checkpointing off (its default is on, which only slows a model this small)."
        )
        notes.append(
            "Where dpo_ref's speed comes from: each pair is one row, prompt + chosen + rejected, with an attention mask "
            "that hides the chosen completion from the rejected one and position ids that restart the rejected "
            "completion after the prompt (`dpo_ref.packing.shared_prompt_logps`), so the prompt is computed once instead "
            "of twice and the shorter completion is not padded; only positions that score a token go through the LM "
            "head; the rows are packed once for the whole dataset; no "
            "per-step metrics. The result equals `concatenated_logps` to float rounding (tested), and the loss at "
            "every step equals TRL's within the figure above."
        )
        notes.append(
            f"MFU: model FLOPs (6N + 12LdT per token, N the matrix parameters, counted as if the prompt ran twice) "
            f"per second over the rate of a 1024 x 1024 float32 matrix product measured in the same process right after "
            f"training, so under the same load and threads (best {t['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s). Because "
            f"the prompt is counted twice, prompt sharing raises dpo_ref's figure above the share of the machine it "
            f"actually uses; TRL's figure is the plain one."
        )
    notes.append(
        "Site: `mkdocs build --strict` wall time, from the committed results and the example pages' recorded "
        "outputs (`make examples`; executing the eight scripts at build time took about a minute). The heaviest "
        "page is the one whose first visit downloads the most (every file fetched until its maths and figures are "
        "drawn, in headless Chromium at 1280 x 900 from a local server, fresh cache); gzipped sizes are each file at "
        "gzip level 6. The formulas arrive typeset (`make math` stores MathJax's SVG; the 2 MB MathJax script is "
        "fetched only for maths left in TeX), each figure's first view arrives drawn as SVG (`make figures` stores it), and "
        "plotly.js (the basic bundle: scatter, bar) is fetched only when the reader reaches a figure, so two times "
        "are given: the first screen (the goal), and every figure and formula on the page; "
        "each the median of five loads, measured before the training runs. Reproduction: wall times from the "
        "provenance of `docs/results/data/`, as `dpo-ref reproduce` recorded them (not rerun here)."
    )
    if results.get("web"):
        from benchmarks import web_quality

        notes.append(web_quality.NOTE)
    load = ", ".join(f"{x:.1f}" for x in m["load_average"])
    load_after = ", ".join(f"{x:.1f}" for x in m.get("load_average_after", ()))
    text = "\n".join([
        "# Performance",
        "",
        "Measured side by side by `make bench` (`python -m benchmarks.run`, code in `benchmarks/`). These are measurements, "
        "not tests: the numbers depend on the machine and on what else runs on it.",
        "",
        f"Measured {results['date']} on {m['cpu']}, {m['logical_cores']} logical cores, torch threads "
        f"{m['torch_threads']}, load average (1, 5, 15 min) {load} before and {load_after} after the run; torch "
        f"{m['torch']}. A load above the core count means other work shared the machine: the ratios, from "
        f"interleaved runs, hold better than the absolute rates. The speed of this shared 2-core machine drifts "
        f"from one run to the next, so a figure within 10 to 20 % of its goal can land on either side of it: "
        f"rerun `make bench` before reading much into such a difference.",
        "",
        render_table(rows),
        "",
        *[n + "\n" for n in notes],
    ])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# --------------------------------------------------------------------------- main


def main(args: argparse.Namespace) -> int:
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown --parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    repeats = args.repeats or (1 if args.quick else 5)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    results: dict = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "quick": bool(args.quick),
    }
    # The site first: its draw times are absolute milliseconds, so they are not taken
    # straight after minutes of training at full load on every core. The training figures
    # are ratios of interleaved runs, which cancel a change of the machine's speed.
    if "site" in parts:
        from benchmarks import site

        log("building and measuring the site")
        results["site"] = site.measure(ROOT, repeats=1 if args.quick else 5)
        _dump(out_dir / "site.json", results["site"], results)
    if "web" in parts:
        from benchmarks import web_quality

        log("measuring web quality (Lighthouse, axe-core)")
        results["web"] = web_quality.measure_built(ROOT, log=log)
        _dump(out_dir / "web.json", results["web"], results)
    if "training" in parts:
        results["training"] = measure_training(repeats, args.steps, args.threads, not args.quick, log)
        _dump(out_dir / "training.json", results["training"], results)
    if "reproduction" in parts:
        from benchmarks import reproduction

        results["reproduction"] = reproduction.read(Path(args.results_data))
        _dump(out_dir / "reproduction.json", results["reproduction"], results)
    for part in PARTS:  # a partial run keeps the other parts' last measurements in the table
        saved = out_dir / f"{part}.json"
        if part not in parts and saved.is_file():
            results[part] = json.loads(saved.read_text())
    results["machine"]["load_average_after"] = os.getloadavg()
    if "training" in results:  # the runs' thread count, not the parent's
        results["machine"]["torch_threads"] = results["training"]["trainers"]["dpo_ref"]["torch_threads"]
    rows = table_rows(results)
    if "web" in results:
        from benchmarks import web_quality

        rows += web_quality.table_rows(results["web"])
    _dump(out_dir / "summary.json", {"rows": rows}, results)
    write_page(Path(args.page), rows, results)
    print(render_table(rows))
    print(f"\nwritten: {out_dir}/*.json and {args.page}")
    return 0


def _dump(path: Path, data: dict, results: dict) -> None:
    payload = {"date": results["date"], "machine": results["machine"], "quick": results["quick"], **data}
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
