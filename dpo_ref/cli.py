"""The `dpo-ref` command: figures, reproduce, train, examples, math.

Each subcommand lives in its own module, which is imported only when that subcommand
runs (its `add_arguments(parser)` too), so `dpo-ref --help` imports nothing heavy.

Errors: the project's own errors (:class:`dpo_ref.errors.UserError` and its subclasses
for bad input, a missing file, an unknown name, CUDA asked for where there is none;
:class:`dpo_ref.errors.NonFiniteError` for NaN or infinity, a diverged run included) end
the command with exit status 2 and one line on stderr, `dpo-ref <command>: error: <message>`;
`--debug` shows the traceback instead, and turns on torch's anomaly mode, in which the
losses also check their inputs' values on every call (:mod:`dpo_ref.validation`). Any other exception is a bug and keeps its traceback. Values are
checked where they are used, once: argparse types for the shape of an option (an
integer, a writable folder), the configuration dataclasses and the method registry
for what a value may be.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import tempfile
import warnings
from pathlib import Path

from dpo_ref.errors import NonFiniteError, UserError

# subcommand -> (module, function, one-line help). Each module exposes
# `add_arguments(parser)` and the named function taking the parsed args.
SUBCOMMANDS = {
    "figures": ("dpo_ref.figures.cli", "main", "write every site figure as HTML/JSON"),
    "reproduce": ("dpo_ref.experiments.cli", "main", "run the experiments behind the results pages"),
    "train": ("dpo_ref.train_cli", "main", "train a model with SFT, DPO or a variant"),
    "examples": ("dpo_ref.site.notebooks", "main", "record the example scripts' outputs that the site shows"),
    "math": ("dpo_ref.site.prerendered_math", "main", "typeset the site's formulas ahead of time (SVG)"),
}

# The errors whose message is meant for the user (see the module docstring).
USER_ERRORS = (UserError, NonFiniteError)

EXIT_USER_ERROR = 2  # as argparse does for a bad option
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


# --------------------------------------------------------------------------- argparse types


def int_at_least(minimum: int):
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
        if value < minimum:
            wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {value}")
        return value

    return parse


positive_int = int_at_least(1)


def output_folder(text: str) -> str:
    """An argparse type: a folder that exists and is writable, or can be created (nothing is left behind)."""
    path = Path(text)
    if path.exists():
        if not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f"{text} is not writable")
        return text
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"cannot create {text}: {existing} is a file, not a folder")
    try:  # access() says yes to root, even on /proc: try it
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".dpo-ref-write-test-"))
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot create {text}: {existing} is not writable ({exc.strerror})") from None
    return text


def output_file(text: str) -> str:
    """An argparse type: a file path whose folder is (or can be made) writable."""
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    output_folder(str(Path(text).absolute().parent))
    return text


# --------------------------------------------------------------------------- the command


def _command_in(argv: list[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is not an option."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word
    return None


def _import_subcommand(command: str):
    """The module of ``command``; a one-line error if it is not part of this install."""
    module_name = SUBCOMMANDS[command][0]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        error = _missing_module_error(command, exc)
        if error is exc:
            raise
        raise error from exc


def _missing_module_error(command: str, exc: ModuleNotFoundError) -> Exception:
    """A user-facing error for a missing module, or ``exc`` itself when it is a bug of ours."""
    module_name = SUBCOMMANDS[command][0]
    missing = exc.name or ""
    if missing and (module_name == missing or module_name.startswith(missing + ".")):
        return UserError(f"the {command} subcommand is not available in this install: no module {module_name}")
    if missing and missing.split(".")[0] != "dpo_ref":
        return UserError(
            f"the {command} subcommand needs the package {missing.split('.')[0]!r}, which is not installed; "
            "install the extras with: pip install -c constraints.txt -e '.[docs,test]'"
        )
    return exc  # a module of this package is missing: a bug, keep the traceback


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (the usage is one ``--help`` away)."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser, with ``command``'s arguments added (only its module is imported)."""
    parser = _Parser(prog="dpo-ref", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback on errors; check every tensor for NaN (slow)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, _, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        # also accepted after the subcommand; SUPPRESS keeps the top-level value otherwise
        sub_parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        if name == command:
            _import_subcommand(name).add_arguments(sub_parser)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # warnings as one line each, without the source line that looks like a traceback
    print(f"dpo-ref: warning: {message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run ``dpo-ref`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(argv)
    if command not in SUBCOMMANDS:
        command = None  # argparse reports the unknown name with the valid ones
    name = "dpo-ref" + (f" {command}" if command else "")
    debug = "--debug" in argv
    shown_warning = warnings.showwarning
    if not debug:
        warnings.showwarning = _show_warning
    try:
        parser = build_parser(command)
        if not argv:
            parser.print_help(sys.stderr)
            return EXIT_USER_ERROR
        args = parser.parse_args(argv)  # a bad option exits here with status 2 and one line
        if str(getattr(args, "device", "")).startswith("cuda"):
            from dpo_ref.runtime import resolve_device

            resolve_device(args.device)  # no CUDA: a one-line error before any work
        with _anomaly_mode() if debug else contextlib.nullcontext():
            return _run(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as exc:
        if debug:
            raise
        print(f"{name}: error: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        warnings.showwarning = shown_warning


def _anomaly_mode():
    """Torch's anomaly mode for the command (restored after it), which also turns on
    :mod:`dpo_ref.validation`'s value checks; torch is imported only here."""
    import torch

    return torch.autograd.set_detect_anomaly(True)


def _run(args: argparse.Namespace) -> int:
    module_name, function_name, _ = SUBCOMMANDS[args.command]
    function = getattr(importlib.import_module(module_name), function_name)
    try:
        return int(function(args) or 0)
    except ModuleNotFoundError as exc:  # an optional package the subcommand needs
        error = _missing_module_error(args.command, exc)
        if error is exc:
            raise
        raise error from exc


if __name__ == "__main__":
    sys.exit(main())
