"""The `dpo-ref` command: figures, reproduce, train, examples, math.

Each subcommand lives in its own module, which is imported only when that subcommand
runs (its `add_arguments(parser)` too), so `dpo-ref --help` imports nothing heavy.
Errors that a user can fix (a bad value, an unknown name, a missing file, CUDA asked
for where there is none) end the command with exit status 2 and one line on stderr,
`dpo-ref <command>: error: <message>`; `--debug` shows the traceback instead. Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import warnings

# subcommand -> (module, function, one-line help). Each module exposes
# `add_arguments(parser)` and the named function taking the parsed args.
SUBCOMMANDS = {
    "figures": ("dpo_ref.figures.cli", "main", "write every site figure as HTML/JSON"),
    "reproduce": ("dpo_ref.experiments.cli", "main", "run the experiments behind the results pages"),
    "train": ("dpo_ref.train_cli", "main", "train a model with SFT, DPO or a variant"),
    "examples": ("dpo_ref.site.notebooks", "main", "record the example scripts' outputs that the site shows"),
    "math": ("dpo_ref.site.prerendered_math", "main", "typeset the site's formulas ahead of time (SVG)"),
}

# Exceptions that carry a message meant for the user (dpo_ref.errors.UserError is a
# ValueError). FloatingPointError is the trainer's NonFiniteLossError: it names the
# step and the last good checkpoint. ConnectionError: a hub name asked for offline.
USER_ERRORS = (
    ValueError,
    KeyError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    ConnectionError,
    FloatingPointError,
)

# Options that any subcommand may define, checked here by their `dest` so that every
# subcommand rejects the same bad values the same way, before any work starts.
# dest -> (test, what the value must be). NaN and infinity are rejected for every float.
ARGUMENT_RULES = {
    "beta": (lambda v: v > 0, "a positive number"),
    "learning_rate": (lambda v: v > 0, "a positive number"),
    "steps": (lambda v: v >= 1, "a positive integer"),
    "batch_size": (lambda v: v >= 1, "a positive integer"),
    "max_length": (lambda v: v >= 2, "an integer >= 2"),
    "max_prompt_length": (lambda v: v >= 1, "a positive integer"),
    "warmup_steps": (lambda v: v >= 0, "a non-negative integer"),
    "checkpoint_every": (lambda v: v >= 0, "a non-negative integer (0: only at the end)"),
    "label_smoothing": (lambda v: 0 <= v < 0.5, "in [0, 0.5)"),
    "gamma": (lambda v: v >= 0, "a non-negative number"),
    "lam": (lambda v: v >= 0, "a non-negative number"),
    "alpha": (lambda v: v >= 0, "a non-negative number"),
    "repeats": (lambda v: v >= 1, "a positive integer"),
    "threads": (lambda v: v >= 1, "a positive integer"),
}

# Output folders (and files) of any subcommand, checked by `dest` before any work starts.
OUTPUT_FOLDERS = ("output_dir", "out", "out_dir")
OUTPUT_FILES = ("page", "store")

EXIT_USER_ERROR = 2  # as argparse does for a bad option
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it


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
    from dpo_ref.errors import UserError

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


def build_parser(command: str | None = None) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser | None]:
    """The parser, and the subparser of ``command`` with its module's arguments added.

    Only ``command``'s module is imported; the other subcommands are listed with their
    one-line help.
    """
    parser = _Parser(prog="dpo-ref", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = None
    for name, (_, _, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        # also accepted after the subcommand; SUPPRESS keeps the top-level value otherwise
        sub_parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        if name == command:
            _import_subcommand(name).add_arguments(sub_parser)
            chosen = sub_parser
    return parser, chosen


def check_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Reject non-finite floats and the out-of-range values of :data:`ARGUMENT_RULES`."""
    for dest, value in sorted(vars(args).items()):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        flag = "--" + dest.replace("_", "-")
        if isinstance(value, float) and not math.isfinite(value):
            parser.error(f"argument {flag}: must be a finite number, got {value}")
        if dest in ARGUMENT_RULES:
            test, what = ARGUMENT_RULES[dest]
            if not test(value):
                parser.error(f"argument {flag}: must be {what}, got {value}")


def check_device(args: argparse.Namespace) -> None:
    """Fail before any work when CUDA is asked for and torch sees none."""
    device = getattr(args, "device", None)
    if isinstance(device, str) and device.startswith("cuda"):
        from dpo_ref.train import resolve_device

        resolve_device(device)  # ValueError with a one-line message


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and len(exc.args) == 1:
        key = exc.args[0]
        if isinstance(key, str) and " " in key.strip():
            return key  # a message; str(KeyError) would wrap it in quotes
        # a bare missing key (a dict lookup): say so, and where to look
        return f"unknown name {key!r} (run with --debug for the traceback)"
    return str(exc) or type(exc).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    # warnings as one line each, without the source line that looks like a traceback
    print(f"dpo-ref: warning: {message}", file=file or sys.stderr)


def check_output_paths(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Fail before any work when an output folder cannot be one (a file, an unwritable parent)."""
    import os
    import tempfile
    from pathlib import Path

    for dest in (*OUTPUT_FOLDERS, *OUTPUT_FILES):
        value = getattr(args, dest, None)
        if not isinstance(value, (str, os.PathLike)):
            continue
        value = os.fspath(value)
        flag = "--" + dest.replace("_", "-")
        path = Path(value)
        if dest in OUTPUT_FILES:
            if path.is_dir():
                parser.error(f"argument {flag}: {value} is a folder, not a file")
            path, value = path.absolute().parent, str(path.absolute().parent)
        if path.exists():
            if not path.is_dir():
                parser.error(f"argument {flag}: {value} exists and is not a folder")
            if not os.access(path, os.W_OK | os.X_OK):
                parser.error(f"argument {flag}: {value} is not writable")
            continue
        existing = next(p for p in path.absolute().parents if p.exists())
        if not existing.is_dir():
            parser.error(f"argument {flag}: cannot create {value}: {existing} is a file, not a folder")
        # a folder to create: try (access() says yes to root, even on /proc); nothing is left behind
        try:
            os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".dpo-ref-write-test-"))
        except OSError as exc:
            parser.error(f"argument {flag}: cannot create {value}: {existing} is not writable ({exc.strerror})")


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
        parser, sub_parser = build_parser(command)
        if not argv:
            parser.print_help(sys.stderr)
            return EXIT_USER_ERROR
        args = parser.parse_args(argv)  # a bad option exits here with status 2 and one line
        check_arguments(args, sub_parser)
        check_output_paths(args, sub_parser)
        check_device(args)
        return _run(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as exc:
        if debug:
            raise
        print(f"{name}: error: {_message(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        warnings.showwarning = shown_warning


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
