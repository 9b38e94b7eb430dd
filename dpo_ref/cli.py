"""The `dpo-ref` command: figures, reproduce, train, bench.

Each subcommand lives in its own module and is imported only when used, so
`dpo-ref --help` stays fast. Errors that a user can fix (bad input, a missing file)
are raised as `ValueError`/`FileNotFoundError` and printed as one line; `--debug`
shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, function, one-line help). Each module exposes
# `add_arguments(parser)` and the named function taking the parsed args.
SUBCOMMANDS = {
    "figures": ("dpo_ref.figures.cli", "main", "write every site figure as HTML/JSON"),
    "reproduce": ("dpo_ref.experiments.cli", "main", "run the experiments behind the results pages"),
    "train": ("dpo_ref.train_cli", "main", "train a model with SFT, DPO or a variant"),
    "bench": ("benchmarks.run", "main", "measure dpo_ref against TRL and the site"),
}

USER_ERRORS = (ValueError, FileNotFoundError, KeyError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dpo-ref", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module_name, _, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text)
        sub_parser.set_defaults(_module=module_name)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                raise
            continue  # this subcommand is not available in this install
        module.add_arguments(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module_name, function_name, _ = SUBCOMMANDS[args.command]
    try:
        module = importlib.import_module(module_name)
        return int(getattr(module, function_name)(args) or 0)
    except USER_ERRORS as exc:
        if args.debug:
            raise
        message = exc.args[0] if exc.args else exc
        print(f"dpo-ref {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
