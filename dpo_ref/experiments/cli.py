"""``dpo-ref reproduce``: run the experiments of a named configuration, with a progress bar."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dpo_ref.cli import output_folder, positive_int

    parser.add_argument(
        "--config",
        default="smoke",
        choices=["smoke", "cpu", "gpu"],
        help="smoke: about a minute (tests); cpu: the committed results, 2 cores; gpu: larger",
    )
    parser.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto picks CUDA when available"
    )
    parser.add_argument(
        "--out",
        default=None,
        type=output_folder,
        help="results folder (default: docs/results/data); files go to OUT/<config>/<name>.json",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        metavar="GROUP",
        help="run only this experiment group (repeatable), e.g. exact",
    )
    parser.add_argument(
        "--seed",
        action="append",
        type=int,
        default=None,
        metavar="SEED",
        help="run only this seed of each group (repeatable); the summary reads every seed file",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="run up to this many parts of seeds at once, each in its own process (one per core)",
    )


def main(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from dpo_ref.experiments import checked_groups, checked_seeds, count_runs, get_config, group, reproduce
    from dpo_ref.paths import RESULTS_DIR

    args.out = args.out or str(RESULTS_DIR)
    config = get_config(args.config)
    groups = checked_groups(args.only)
    units = [
        (name, seed, part)
        for name in groups
        for seed in checked_seeds(group(name), config, args.seed)
        for part in group(name).parts
    ]
    if args.jobs > 1 and len(units) > 1:
        return _run_in_parallel(args, config, groups, units)
    desc = f"reproduce {args.config}" + (f" {' '.join(groups)}" if args.only else "")
    with tqdm(total=count_runs(config, groups, args.seed), desc=desc, unit="run") as bar:

        def progress(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(1)

        paths = reproduce(config, device=args.device, out=args.out, groups=groups, seeds=args.seed, progress=progress)
    for path in paths:
        print(path)
    return 0


def _run_in_parallel(args: argparse.Namespace, config, groups: list[str], units: list[tuple[str, int, str]]) -> int:
    """Every part of every seed, at most ``--jobs`` at a time, each in a process of its own;
    then, here, each seed's files as soon as its parts are in, and the summaries.

    The longest parts start first (their times in the seed files already in the output
    folder; a part never timed counts as longest), so the last ones to finish are short
    and no core waits long for the other; but a group's first part starts before a second
    part of a group already started, since the first part of a world trains its reference
    and a second would wait for it. On Linux each process is forked from this one, which
    has imported torch and transformers already: a fresh interpreter spends about ten
    seconds on that (measured). A part writes what it measured to a temporary folder,
    where the first part of a world to need the world's reference also trains it for the
    others (:mod:`dpo_ref.experiments.shared_worlds`). Every process uses the
    configuration's torch thread count, so the results are the same as a sequential run's.
    """
    import json
    import multiprocessing
    from pathlib import Path

    from dpo_ref.experiments import group, write_seed, write_summary
    from dpo_ref.experiments.shared_worlds import FOLDER_VARIABLE
    from dpo_ref.runtime import resolve_device

    device = resolve_device(args.device)
    out = Path(args.out)
    pending = sorted(units, key=lambda unit: -_last_wall_time(out / config.name, *unit))
    running: dict[tuple[str, int, str], tuple[multiprocessing.Process, int]] = {}  # unit -> (process, bar line)
    finished: dict[tuple[str, int], dict[str, dict]] = {}
    started: set[str] = set()  # groups with a part started
    failed = []
    # fork where it is safe with torch (Linux); elsewhere each process imports everything again
    processes = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with tempfile.TemporaryDirectory(prefix="dpo-ref-reproduce-") as shared:
        previous = os.environ.get(FOLDER_VARIABLE)
        os.environ[FOLDER_VARIABLE] = previous or shared  # the parts' processes inherit it
        try:
            while pending or running:
                while pending and len(running) < args.jobs:
                    unit = pending.pop(_next_unit(pending, started))
                    started.add(unit[0])
                    line = min(set(range(args.jobs)) - {line for _, line in running.values()})
                    process = processes.Process(target=_run_unit, args=(config, *unit, args.device, shared, line))
                    process.start()
                    running[unit] = (process, line)
                done = [unit for unit, (process, _) in running.items() if not process.is_alive()]
                for unit in done:
                    process = running.pop(unit)[0]
                    process.join()
                    name, seed, part = unit
                    if process.exitcode != 0:
                        failed.append(unit)
                        continue
                    measured = json.loads((Path(shared) / f"{name}_seed{seed}_{part}.json").read_text())
                    finished.setdefault((name, seed), {})[part] = measured
                    if set(finished[(name, seed)]) == set(group(name).parts):
                        for path in write_seed(group(name), config, seed, device, out, finished.pop((name, seed))):
                            print(path)
                if not done:
                    time.sleep(0.2)
        finally:
            _restore(FOLDER_VARIABLE, previous)
    if failed:
        names = ", ".join(f"{name} seed {seed} ({part})" for name, seed, part in failed)
        print(f"dpo-ref reproduce: {names} failed; their messages are above", file=sys.stderr)
        return 1
    for name in groups:
        for path in write_summary(group(name), config, device, out):
            print(path)
    return 0


def _run_unit(config, name: str, seed: int, part: str, device: str, folder: str, bar_line: int) -> None:
    """In a forked process: one part of one seed, with its own progress bar; what it measured goes to ``folder``.

    An exception ends the process with exit code 1 after printing its traceback (what
    :mod:`multiprocessing` does), which the parent reports.
    """
    import json

    from tqdm.auto import tqdm

    from dpo_ref.experiments import group, run_part
    from dpo_ref.runtime import resolve_device, torch_threads

    g, dev = group(name), resolve_device(device)
    desc = f"{name} seed {seed} {part}"
    with (
        torch_threads(config.torch_threads, dev),
        tqdm(total=g.count_runs(config, part), desc=desc, unit="run", position=bar_line) as bar,
    ):

        def progress(what: str) -> None:
            bar.set_postfix_str(what)
            bar.update(1)

        measured = run_part(g, config, seed, part, dev, progress)
    # JSON, the results files' own format: what the part measured is plain numbers, text and lists
    with open(f"{folder}/{name}_seed{seed}_{part}.json", "w") as fh:
        json.dump(measured, fh)


def _next_unit(pending: list[tuple[str, int, str]], started: set[str]) -> int:
    """Index in ``pending`` (longest first) of the next unit to start: the first of a group not started yet, if any."""
    return next((i for i, unit in enumerate(pending) if unit[0] not in started), 0)


def _last_wall_time(folder, name: str, seed: int, part: str) -> float:
    """The part's wall time in the seed file already in ``folder``: as recorded, or the part's share of the
    seed's time when the file predates its parts; infinity when there is no such file."""
    import json

    from dpo_ref.experiments import group

    try:
        provenance = json.loads((folder / f"{name}_seed{seed}.json").read_text())["provenance"]
        if "parts" in provenance:
            return float(provenance["parts"][part]["wall_time_s"])
        return float(provenance["wall_time_s"]) * group(name).parts[part]
    except (OSError, ValueError, KeyError, TypeError):
        return float("inf")


def _restore(variable: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(variable, None)
    else:
        os.environ[variable] = value
