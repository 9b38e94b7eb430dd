"""``dpo-ref reproduce``: run the experiments of a named configuration, with a progress bar."""

from __future__ import annotations

import argparse
import subprocess
import sys


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
    parser.add_argument("--jobs", type=positive_int, default=1,
                        help="run up to this many groups at once, each in its own process (one per core)")  # fmt: skip
    parser.add_argument("--bar-position", type=int, default=0, help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from dpo_ref.paths import RESULTS_DIR

    args.out = args.out or str(RESULTS_DIR)
    from dpo_ref.experiments import checked_groups, count_runs, get_config, reproduce

    config = get_config(args.config)
    groups = checked_groups(args.only)
    if args.jobs > 1 and len(groups) > 1:
        return _run_in_parallel(args, groups)
    desc = f"reproduce {args.config}" + (f" {groups[0]}" if args.only else "")
    with tqdm(total=count_runs(config, groups), desc=desc, unit="run", position=args.bar_position) as bar:

        def progress(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(1)

        paths = reproduce(config, device=args.device, out=args.out, groups=groups, progress=progress)
    for path in paths:
        print(path)
    return 0


def _run_in_parallel(args: argparse.Namespace, groups: list[str]) -> int:
    """One process per group, at most ``--jobs`` at a time.

    The groups share nothing but the output folder, and each writes its own files, so
    on a machine with several cores they run side by side; every process still uses the
    configuration's torch thread count. Results are the same as a sequential run.
    """
    pending = list(enumerate(groups))
    running: list[tuple[str, subprocess.Popen]] = []
    failed = []
    while pending or running:
        while pending and len(running) < args.jobs:
            position, group = pending.pop(0)
            command = [sys.executable, "-m", "dpo_ref.cli", "reproduce", "--config", args.config,
                       "--device", args.device, "--out", args.out, "--only", group,
                       "--bar-position", str(position)]  # fmt: skip
            running.append((group, subprocess.Popen(command)))
        group, process = running.pop(0)
        if process.wait() != 0:
            failed.append(group)
    if failed:
        print(f"dpo-ref reproduce: experiment group(s) {', '.join(failed)} failed; their messages are above",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0
