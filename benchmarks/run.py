"""``python -m benchmarks.run`` (``make bench``): every measured comparison of the performance page.

Parts (``--parts``, default all): ``site`` (build time, page weight, draw time),
``training`` (dpo_ref against TRL's ``DPOTrainer`` on the headline workload:
:mod:`benchmarks.training`), ``scaling`` (the same at three model sizes and two length
regimes: :mod:`benchmarks.scaling`), ``rollouts`` (PPO's sampling before and after the
KV cache: :mod:`benchmarks.rollouts`) and ``reproduction`` (the wall time of
``dpo-ref reproduce``, read from its results: :mod:`benchmarks.reproduction`).

Writes ``benchmarks/results/<part>.json`` and ``summary.json`` (the table of headline
figures against their goals), which ``docs/performance.md`` shows, and prints the table.
A part not run keeps its last measurement.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# web: Lighthouse and axe-core (benchmarks/web_quality.py)
PARTS = ("site", "web", "training", "scaling", "rollouts", "reproduction")

# figure -> (goal, "min" or "max"): the targets
GOALS = {
    "speedup": (1.6, "min"),
    "rss_ratio": (0.85, "max"),
    "loss_diff": (1e-5, "max"),
    "build_s": (30.0, "max"),
    "page_gzip_mb": (1.5, "max"),
    "ready_s": (1.0, "max"),
    "playground_long_tasks": (0, "max"),  # main-thread tasks over 50 ms while the playground trains
    "reproduce_cpu_min": (25.0, "max"),
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
    parser.add_argument(
        "--web-repeats",
        type=positive_int,
        default=None,
        help="Lighthouse runs per page, scored by their median (default 5, --quick 1)",
    )
    parser.add_argument(
        "--steps", type=positive_int, default=None, help="training steps (default 50; fewer only for smoke tests)"
    )
    parser.add_argument(
        "--threads", type=positive_int, default=None, help="torch threads of every run (default: torch's own)"
    )
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--out-dir", default=str(RESULTS), help="where the JSON results go")
    parser.add_argument(
        "--results-data",
        default=str(ROOT / "docs" / "results" / "data"),
        help="results files whose provenance gives the reproduction times",
    )


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
            at_most = goal_key in ("loss_diff", "playground_long_tasks")  # goals that equality meets
            row["goal"] = ("≥ " if kind == "min" else "≤ " if at_most else "< ") + (
                f"{goal:g}" if goal_key == "playground_long_tasks" else _fmt(goal, unit)
            )
            if isinstance(value, (int, float)):
                if goal:  # a goal of none (no long task) has no ratio
                    row["ratio"] = value / goal
                row["met"] = value >= goal if kind == "min" else value <= goal
        rows.append(row)

    t = results.get("training")
    if t:
        d, trl = t["trainers"]["dpo_ref"], t["trainers"]["trl"]
        add("dpo_ref tokens/s", d["tokens_per_s"], "tok/s")
        add("TRL DPOTrainer tokens/s", trl["tokens_per_s"], "tok/s")
        if "dpo_ref_plain" in t["trainers"]:
            add(
                "dpo_ref tokens/s, plain PairwiseObjective (no prompt sharing)",
                t["trainers"]["dpo_ref_plain"]["tokens_per_s"],
                "tok/s",
            )
        add("throughput, dpo_ref / TRL (median of paired runs)", t["speedup"], "x", "speedup")
        add("peak RSS, dpo_ref", d["peak_rss_bytes"] / 2**20, "MiB")
        add("peak RSS, TRL", trl["peak_rss_bytes"] / 2**20, "MiB")
        add("peak RSS, dpo_ref / TRL", t["rss_ratio"], "x", "rss_ratio")
        add(f"largest loss difference over {t['steps']} steps", t["max_loss_diff"], "", "loss_diff")
        add("model FLOPs utilisation (FLOPs performed), dpo_ref", 100 * d["mfu"], "%")
        add("model FLOPs utilisation (FLOPs performed), TRL", 100 * trl["mfu"], "%")
    else:
        for name, key in (
            ("throughput, dpo_ref / TRL", "speedup"),
            ("peak RSS, dpo_ref / TRL", "rss_ratio"),
            ("largest loss difference", "loss_diff"),
        ):
            add(name, None, "", key)
    for point in (results.get("scaling") or {}).get("points", []):
        p = point["point"]
        add(f"throughput, dpo_ref / TRL, {p['name']} parameters, {p['regime']} pairs", point["speedup"], "x")
    rollouts = results.get("rollouts")
    if rollouts:
        add("PPO rollout tokens/s, before the KV cache", rollouts["tokens_per_s_before"], "tok/s")
        add("PPO rollout tokens/s, with the KV cache", rollouts["tokens_per_s_after"], "tok/s")
    s = results.get("site") or {}
    build = s.get("build", {})
    add(
        "site build time (mkdocs build)",
        build.get("build_s"),
        "s",
        "build_s",
        None if build.get("status") == "ok" else f"not measured ({build.get('reason', 'not run')})",
    )
    page = s.get("page", {})
    ok = page.get("status") == "ok"
    why = None if ok else f"not measured ({page.get('reason', 'not run')})"
    add(
        f"heaviest page{' (' + page['path'] + ')' if ok else ''}, uncompressed",
        page.get("bytes", 0) / 2**20 if ok else None,
        "MB",
        None,
        why,
    )
    add("heaviest page, gzipped", page.get("gzip_bytes", 0) / 2**20 if ok else None, "MB", "page_gzip_mb", why)
    add(
        "time until the figures and formulas of its first screen are drawn",
        page.get("ready_ms", 0) / 1000 if ok else None,
        "s",
        "ready_s",
        why,
    )
    add(
        "time until every figure and formula on it is drawn",
        page["all_drawn_ms"] / 1000 if ok and "all_drawn_ms" in page else None,
        "s",
        None,
        why,
    )
    playground = page.get("playground") if ok else None
    add(
        "playground: main-thread tasks over 50 ms while it trains 500 steps (median of runs)",
        playground["long_tasks"] if playground else None,
        "",
        "playground_long_tasks",
        f"{playground['long_tasks']:g} (longest {playground['longest_task_ms']:.0f} ms)"
        if playground
        else why or "not measured (an older bench result)",
    )
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


# --------------------------------------------------------------------------- main


def main(args: argparse.Namespace) -> int:
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown --parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    repeats = args.repeats or (1 if args.quick else 3)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    results: dict = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
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
        web_repeats = args.web_repeats or (1 if args.quick else 5)
        results["web"] = web_quality.measure_built(ROOT, repeats=web_repeats, log=log)
        _dump(out_dir / "web.json", results["web"], results)
    if "training" in parts:
        from benchmarks.training import measure
        from benchmarks.workload import Workload

        trainers = ["dpo_ref", "trl"] + ([] if args.quick else ["dpo_ref_plain"])
        results["training"] = measure(Workload(), repeats, args.steps, args.threads, trainers, log)
        _dump(out_dir / "training.json", results["training"], results)
    if "scaling" in parts:
        from benchmarks.scaling import POINTS, measure_scaling

        points = POINTS[:1] + POINTS[3:4] if args.quick else POINTS  # quick: the smallest of each regime
        results["scaling"] = measure_scaling(1 if args.quick else 2, args.threads, log, points)
        _dump(out_dir / "scaling.json", results["scaling"], results)
    if "rollouts" in parts:
        from benchmarks.rollouts import measure_rollouts

        results["rollouts"] = measure_rollouts(2 if args.quick else 5, log)
        _dump(out_dir / "rollouts.json", results["rollouts"], results)
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
    print(render_table(rows))
    print(f"\nwritten: {out_dir}/*.json (docs/performance.md shows them)")
    return 0


def _dump(path: Path, data: dict, results: dict) -> None:
    payload = {"date": results["date"], "machine": results["machine"], "quick": results["quick"], **data}
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
