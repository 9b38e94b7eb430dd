"""``dpo-ref figures``: write every site figure as a standalone HTML file.

    dpo-ref figures --out figures/              # all figures, light palette
    dpo-ref figures --out figures/ --only beta-slider --dark

Each file opens offline in a browser: the Plotly figures share one ``plotly.min.js``
written beside them.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dpo_ref.cli import output_folder

    parser.add_argument("--out", type=output_folder, default="figures", help="output directory (default: figures/)")
    parser.add_argument(
        "--only", action="append", metavar="ID", default=None, help="write only this figure (repeatable); default: all"
    )
    parser.add_argument("--dark", action="store_true", help="use the dark (slate) palette")
    parser.add_argument("--list", action="store_true", help="list the figure ids and exit")


def main(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from dpo_ref.errors import UnknownNameError
    from dpo_ref.figures import FIGURES, build_figure
    from dpo_ref.figures.html import write_standalone

    if args.list:
        for figure_id, target in FIGURES.items():
            print(f"{figure_id:32s} {target}")
        return 0
    ids = args.only or list(FIGURES)
    unknown = [i for i in ids if i not in FIGURES]
    if unknown:
        raise UnknownNameError(f"unknown figure(s) {', '.join(unknown)}; run `dpo-ref figures --list`")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for figure_id in tqdm(ids, desc="figures", unit="fig"):
        write_standalone(figure_id, build_figure(figure_id), out, dark=args.dark)
    print(f"wrote {len(ids)} figure(s) to {args.out}/")
    return 0
