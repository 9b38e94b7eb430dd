"""``dpo-ref reproduce``: run the experiments of a named configuration, with a progress bar."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="smoke", choices=["smoke", "cpu", "gpu"],
                        help="smoke: about a minute (tests); cpu: the committed results, 2 cores; gpu: larger")  # fmt: skip
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="auto picks CUDA when available")  # fmt: skip
    parser.add_argument("--out", default="docs/results/data",
                        help="results folder; files go to OUT/<config>/<name>.json")  # fmt: skip
    parser.add_argument("--only", action="append", default=None, metavar="GROUP",
                        help="run only this experiment group (repeatable), e.g. exact")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from dpo_ref.experiments import count_runs, get_config, reproduce

    config = get_config(args.config)
    with tqdm(total=count_runs(config, args.only), desc=f"reproduce {args.config}", unit="run") as bar:

        def progress(name: str) -> None:
            bar.set_postfix_str(name)
            bar.update(1)

        paths = reproduce(config, device=args.device, out=args.out, groups=args.only, progress=progress)
    for path in paths:
        print(path)
    return 0
