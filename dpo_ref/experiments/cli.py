"""``dpo-ref reproduce``: run the experiments of a named configuration, with a progress bar."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dpo_ref.cli import output_folder, positive_int

    parser.add_argument("--config", default="smoke", choices=["smoke", "cpu", "gpu"],
                        help="smoke: about a minute (tests); cpu: the committed results, 2 cores; gpu: larger")  # fmt: skip
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="auto picks CUDA when available")  # fmt: skip
    parser.add_argument("--out", default=None, type=output_folder,
                        help="results folder (default: docs/results/data); files go to OUT/<config>/<name>.json")  # fmt: skip
    parser.add_argument("--only", action="append", default=None, metavar="GROUP",
                        help="run only this experiment group (repeatable), e.g. exact")  # fmt: skip
    parser.add_argument("--seed", action="append", type=int, default=None, metavar="SEED",
                        help="run only this seed of each group (repeatable); the summary reads every seed file")  # fmt: skip
    parser.add_argument("--jobs", type=positive_int, default=1,
                        help="run up to this many seeds at once, each in its own process (one per core)")  # fmt: skip
    parser.add_argument("--no-summary", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bar-position", type=int, default=0, help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from dpo_ref.experiments import checked_groups, checked_seeds, count_runs, get_config, group, reproduce
    from dpo_ref.paths import RESULTS_DIR

    args.out = args.out or str(RESULTS_DIR)
    config = get_config(args.config)
    groups = checked_groups(args.only)
    units = [(name, seed) for name in groups for seed in checked_seeds(group(name), config, args.seed)]
    if args.jobs > 1 and len(units) > 1:
        return _run_in_parallel(args, config, groups, units)
    desc = f"reproduce {args.config}" + (f" {' '.join(groups)}" if args.only else "")
    with tqdm(total=count_runs(config, groups, args.seed), desc=desc, unit="run", position=args.bar_position) as bar:

        def progress(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(1)

        paths = reproduce(config, device=args.device, out=args.out, groups=groups, seeds=args.seed,
                          summarise=not args.no_summary, progress=progress)  # fmt: skip
    for path in paths:
        print(path)
    return 0


def _run_in_parallel(args: argparse.Namespace, config, groups: list[str], units: list[tuple[str, int]]) -> int:
    """One process per (group, seed), at most ``--jobs`` at a time, then the summaries here.

    The seeds share the output folder, where each writes its own file, and a temporary
    folder where the first seed of a world stores the reference it trained for the others
    (:mod:`dpo_ref.experiments.shared_worlds`). On a machine with several cores they run
    side by side; every process still uses the configuration's torch thread count.
    Results are the same as a sequential run.
    """
    from pathlib import Path

    from dpo_ref.experiments import group, write_summary
    from dpo_ref.experiments.shared_worlds import FOLDER_VARIABLE
    from dpo_ref.runtime import resolve_device

    pending = list(enumerate(units))
    running: dict[tuple[str, int], subprocess.Popen] = {}
    failed = []
    with tempfile.TemporaryDirectory(prefix="dpo-ref-worlds-") as shared:
        env = {**os.environ, FOLDER_VARIABLE: os.environ.get(FOLDER_VARIABLE, shared)}
        while pending or running:
            while pending and len(running) < args.jobs:
                position, (name, seed) = pending.pop(0)
                command = [sys.executable, "-m", "dpo_ref.cli", "reproduce", "--config", args.config,
                           "--device", args.device, "--out", args.out, "--only", name, "--seed", str(seed),
                           "--no-summary", "--bar-position", str(position % args.jobs)]  # fmt: skip
                running[(name, seed)] = subprocess.Popen(command, env=env)
            done = [unit for unit, process in running.items() if process.poll() is not None]
            for unit in done:
                if running.pop(unit).returncode != 0:
                    failed.append(unit)
            if not done:
                time.sleep(0.2)
    if failed:
        names = ", ".join(f"{name} seed {seed}" for name, seed in failed)
        print(f"dpo-ref reproduce: {names} failed; their messages are above", file=sys.stderr)
        return 1
    if not args.no_summary:
        for name in groups:
            for path in write_summary(group(name), config, resolve_device(args.device), Path(args.out)):
                print(path)
    return 0
