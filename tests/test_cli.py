"""The `dpo-ref` command fails on user errors with exit status 2 and one line, no traceback.

Most cases run the installed console script (or `python -m dpo_ref.cli`) in a
subprocess, as a user would. Argument errors are caught before any heavy import, so
those subprocesses take a fraction of a second; the few that reach torch take a few.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from dpo_ref import cli
from dpo_ref.errors import (
    MissingFileError,
    NonFiniteError,
    NonFiniteLossError,
    OfflineError,
    UnknownNameError,
    UserError,
)

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "dpo-ref"

PAIRS = [
    {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."},
    {"prompt": "Water is", "chosen": " wet.", "rejected": " dry."},
    {"prompt": "Fire is", "chosen": " hot.", "rejected": " cold."},
    {"prompt": "Snow is", "chosen": " white.", "rejected": " black."},
]


def run_cli(*args: str, cwd: Path | None = None, module: bool = False) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "dpo_ref.cli"] if module or not SCRIPT.exists() else [str(SCRIPT)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return subprocess.run([*command, *args], cwd=cwd or ROOT, env=env, capture_output=True, text=True, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess, command: str, expected: str) -> str:
    """Exit status 2, no traceback, and the last stderr line is the error (earlier lines: progress bars)."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    error_lines = [line for line in lines if ": error: " in line]
    assert len(error_lines) == 1, result.stderr
    assert lines[-1] == error_lines[0], result.stderr
    line = lines[-1]
    assert line.startswith(f"{command}: error: "), line
    assert expected in line, line
    return line


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in PAIRS))
    return path


# ----------------------------------------------------------------- argument errors, before any import


# (args after `dpo-ref`, the command in the message, what the message must say)
ARGUMENT_ERRORS = [
    (["nope"], "dpo-ref", "invalid choice: 'nope' (choose from 'figures', 'reproduce', 'train', 'examples', 'math')"),
    (["reproduce", "--config", "huge"], "dpo-ref reproduce", "argument --config: invalid choice: 'huge'"),
    (["reproduce", "--device", "gpu"], "dpo-ref reproduce", "argument --device: invalid choice: 'gpu'"),
    (
        ["train", "--data", "x.jsonl", "--output-dir", "o", "--method", "dpp"],
        "dpo-ref train",
        "argument --method: invalid choice: 'dpp'",
    ),
    (["train", "--data", "x.jsonl"], "dpo-ref train", "the following arguments are required: --output-dir"),
    (
        ["train", "--data", "x.jsonl", "--output-dir", "o", "--beta", "-0.1"],
        "dpo-ref train",
        "dpo: beta must be a positive number, got -0.1",
    ),
    (
        ["train", "--data", "x.jsonl", "--output-dir", "o", "--beta", "0"],
        "dpo-ref train",
        "dpo: beta must be a positive number, got 0.0",
    ),
    (
        ["train", "--data", "x.jsonl", "--output-dir", "o", "--beta", "nan"],
        "dpo-ref train",
        "dpo: beta must be a positive number, got nan",
    ),
    (
        ["train", "--data", "x.jsonl", "--output-dir", "o", "--learning-rate", "inf"],
        "dpo-ref train",
        "TrainConfig.learning_rate must be a finite learning rate > 0, got inf",
    ),
    (
        ["train", "--data", "x.jsonl", "--output-dir", "o", "--learning-rate=-1e-5"],
        "dpo-ref train",
        "TrainConfig.learning_rate must be a finite learning rate > 0, got -1e-05",
    ),
    (
        ["train", "--data", "x.jsonl", "--output-dir", "o", "--steps", "0"],
        "dpo-ref train",
        "TrainConfig.steps must be an integer >= 1, got 0",
    ),
    (
        ["train", "--data", "x.jsonl", "--output-dir", "o", "--steps", "ten"],
        "dpo-ref train",
        "argument --steps: invalid int value: 'ten'",
    ),
    (
        ["train", "--data", "x.jsonl", "--output-dir", "o", "--batch-size", "-8"],
        "dpo-ref train",
        "TrainConfig.batch_size must be an integer >= 1, got -8",
    ),
    (
        ["train", "--data", "x.jsonl", "--output-dir", "o", "--max-length", "1"],
        "dpo-ref train",
        "argument --max-length: must be an integer >= 2, got 1",
    ),
    (
        ["train", "--data", "x.jsonl", "--output-dir", "o", "--method", "cdpo", "--label-smoothing", "0.5"],
        "dpo-ref train",
        "cdpo: label_smoothing must be a number in [0, 0.5), got 0.5",
    ),
    (
        ["train", "--data", "x.jsonl", "--output-dir", "o", "--warmup-steps", "-1"],
        "dpo-ref train",
        "TrainConfig.warmup_steps must be an integer >= 0, got -1",
    ),
    (
        ["train", "--data", "x.jsonl", "--output-dir", "o", "--method", "simpo", "--gamma", "-1"],
        "dpo-ref train",
        "simpo: gamma must be a non-negative number, got -1.0",
    ),
    (["examples", "train_dpo", "nope"], "dpo-ref examples", "no example named nope; the examples are bradley_terry"),
    (["math", "--store", "/tmp"], "dpo-ref math", "argument --store: /tmp is a folder, not a file"),
]


def run_in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """``cli.main(args)`` here, for the cases whose subprocess would only re-import torch."""
    try:
        code = cli.main(list(args))
    except SystemExit as exc:  # argparse's own errors, and check_arguments
        code = exc.code
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


@pytest.mark.parametrize(
    "args, command, expected", ARGUMENT_ERRORS, ids=[" ".join(c[0][:1] + c[0][-2:]) for c in ARGUMENT_ERRORS]
)
def test_argument_errors_are_one_line(capsys, args, command, expected):
    assert_one_line_error(run_in_process(capsys, *args), command, expected)


def test_script_and_python_dash_m_fail_the_same_way():
    for module in (False, True):
        result = run_cli("train", "--data", "x.jsonl", "--output-dir", "o", "--beta", "-1", module=module)
        assert_one_line_error(result, "dpo-ref train", "dpo: beta must be a positive number, got -1.0")
    # argparse's own errors point to the help
    line = assert_one_line_error(
        run_cli("train", "--data", "x.jsonl", "--output-dir", "o", "--steps", "ten"),
        "dpo-ref train",
        "argument --steps: invalid int value",
    )
    assert line.endswith("(see dpo-ref train --help)")


def test_output_folder_that_cannot_be_one_fails_before_any_work(capsys, tmp_path, pairs_file):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    assert_one_line_error(
        run_cli("train", "--data", str(pairs_file), "--output-dir", str(taken)),
        "dpo-ref train",
        f"argument --output-dir: {taken} exists and is not a folder",
    )
    assert_one_line_error(
        run_in_process(capsys, "figures", "--out", str(taken / "figures")),
        "dpo-ref figures",
        f"argument --out: cannot create {taken / 'figures'}: {taken} is a file, not a folder",
    )
    assert_one_line_error(
        run_in_process(capsys, "reproduce", "--out", "/proc/no/such/place"),
        "dpo-ref reproduce",
        "argument --out: cannot create /proc/no/such/place: /proc is not writable",
    )
    assert list(tmp_path.iterdir()) == [taken]  # the write test left nothing behind


@pytest.mark.parametrize("command", ["examples", "math"])
def test_site_tooling_outside_a_checkout_says_so_in_one_line(command, capsys, monkeypatch):
    # installed from a wheel there is no mkdocs.yml beside the package
    from dpo_ref import paths

    monkeypatch.setattr(paths, "checkout_root", lambda: None)
    result = run_in_process(capsys, command)
    assert_one_line_error(result, f"dpo-ref {command}", "needs a checkout of the dpo_ref repository")


def test_no_arguments_prints_the_help_and_fails():
    result = run_cli()
    assert result.returncode == 2
    assert "usage: dpo-ref" in result.stderr and "reproduce" in result.stderr


def test_help_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from dpo_ref.cli import main\n"
        "for argv in (['--help'], ['train', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        "heavy = sorted({'torch', 'transformers', 'datasets', 'plotly'} & set(sys.modules))\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout, result.stdout


# ----------------------------------------------------------------- errors met while running


def test_missing_data_file(tmp_path):
    missing = tmp_path / "missing.jsonl"
    assert_one_line_error(
        run_cli("train", "--data", str(missing), "--output-dir", str(tmp_path / "out")),
        "dpo-ref train",
        f"no such preference data file or folder: {missing}",
    )
    assert not (tmp_path / "out").exists()


def test_malformed_data_names_row_and_field(capsys, tmp_path):
    path = tmp_path / "bad.jsonl"
    rows = [dict(row) for row in PAIRS]
    rows[2]["rejected"] = rows[2]["chosen"]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert_one_line_error(
        run_in_process(capsys, "train", "--data", str(path), "--output-dir", str(tmp_path / "out")),
        "dpo-ref train",
        "row 2, field 'rejected': is identical to 'chosen'",
    )


def test_a_file_that_is_not_json_is_one_line_and_nothing_else(tmp_path):
    """Not a line from `datasets` (its progress bar, its parser's log line) before the project's own."""
    path = tmp_path / "notes.jsonl"
    path.write_text("these are notes, not JSON\n{oops\n")
    result = run_cli("train", "--data", str(path), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"dpo-ref train: error: could not read preference data from {path}: JSON parse error: " + (
        "Invalid value. in row 0\n"
    )


def test_missing_model_path(capsys, tmp_path, pairs_file):
    assert_one_line_error(
        run_in_process(
            capsys,
            "train",
            "--data",
            str(pairs_file),
            "--model",
            str(tmp_path / "no-model"),
            "--output-dir",
            str(tmp_path / "out"),
        ),
        "dpo-ref train",
        f"local model path '{tmp_path / 'no-model'}' does not exist",
    )


def test_cuda_without_cuda_fails_before_any_work(capsys, tmp_path, pairs_file):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    expected = "device='cuda' was requested but torch sees no CUDA device; use --device cpu or auto"
    assert_one_line_error(
        run_cli("train", "--data", str(pairs_file), "--output-dir", str(tmp_path / "out"), "--device", "cuda"),
        "dpo-ref train",
        expected,
    )
    assert_one_line_error(
        run_in_process(
            capsys, "reproduce", "--config", "smoke", "--device", "cuda", "--out", str(tmp_path / "results")
        ),
        "dpo-ref reproduce",
        expected,
    )
    assert not (tmp_path / "out").exists() and not (tmp_path / "results").exists()


def test_unknown_names_inside_subcommands(capsys, tmp_path):
    assert_one_line_error(
        run_in_process(capsys, "figures", "--only", "no-such-figure", "--out", str(tmp_path / "figs")),
        "dpo-ref figures",
        "unknown figure(s) no-such-figure",
    )
    # an unknown experiment group: the message names it even if the runner lets a KeyError escape
    assert_one_line_error(
        run_in_process(
            capsys, "reproduce", "--config", "smoke", "--only", "no-such-group", "--out", str(tmp_path / "results")
        ),
        "dpo-ref reproduce",
        "'no-such-group'",
    )


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(KeyError):
        cli.main(["--debug", "reproduce", "--config", "smoke", "--only", "no-such-group", "--out", str(tmp_path)])
    with pytest.raises(KeyError, match="no-such-figure"):  # --debug after the subcommand works too
        cli.main(["figures", "--debug", "--only", "no-such-figure", "--out", str(tmp_path)])
    result = run_cli("--debug", "train", "--data", "x.jsonl", "--output-dir", "o", "--steps", "ten")
    assert result.returncode == 2 and "invalid int value" in result.stderr  # argparse errors stay one line


# ----------------------------------------------------------------- in-process: the error policy itself


@pytest.fixture
def fake_command(monkeypatch):
    """Point `dpo-ref train` at a module whose main raises what the test sets."""
    module = types.ModuleType("dpo_ref_fake_command")
    module.add_arguments = lambda parser: parser.add_argument("--size", type=int, default=1)
    module.error = None

    def main(args):
        if module.error is not None:
            raise module.error
        return 0

    module.main = main
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(cli.SUBCOMMANDS, "train", (module.__name__, "main", "fake"))
    return module


@pytest.mark.parametrize(
    "error, expected",
    [
        (UserError("row 3, field 'chosen': is empty"), "row 3, field 'chosen': is empty"),
        (
            UnknownNameError("unknown figure(s) x; run `dpo-ref figures --list`"),
            "unknown figure(s) x; run `dpo-ref figures --list`",
        ),
        (
            MissingFileError("no such preference data file or folder: /data/x.jsonl"),
            "no such preference data file or folder: /data/x.jsonl",
        ),
        (NonFiniteLossError("training stopped at step 7: loss is nan"), "training stopped at step 7: loss is nan"),
        (
            NonFiniteError("reference_chosen_logps contains inf (rows [6])"),
            "reference_chosen_logps contains inf (rows [6])",
        ),
        (OfflineError("could not fetch 'a/b' from the hub"), "could not fetch 'a/b' from the hub"),
        (
            ModuleNotFoundError("No module named 'trl'", name="trl"),
            "the train subcommand needs the package 'trl', which is not installed; "
            "install the extras with: pip install -c constraints.txt -e '.[docs,test]'",
        ),
    ],
    ids=["UserError", "UnknownName", "MissingFile", "NonFiniteLoss", "NonFinite", "Offline", "optional-package"],
)
def test_user_errors_print_one_line(fake_command, capsys, error, expected):
    fake_command.error = error
    assert cli.main(["train"]) == 2
    assert capsys.readouterr().err == f"dpo-ref train: error: {expected}\n"


@pytest.mark.parametrize(
    "error",
    [
        KeyError("frontier"),
        ValueError("shapes do not match"),
        FileNotFoundError(2, "No such file", "/x"),
        TypeError("x"),
    ],
    ids=["KeyError", "ValueError", "FileNotFoundError", "TypeError"],
)
def test_other_exceptions_are_bugs_with_their_traceback(fake_command, error):
    # a real bug's KeyError must not print as "unknown name"
    fake_command.error = error
    with pytest.raises(type(error)):
        cli.main(["train"])


def test_bugs_keep_their_traceback(fake_command):
    fake_command.error = TypeError("unsupported operand")
    with pytest.raises(TypeError):
        cli.main(["train"])
    fake_command.error = ModuleNotFoundError("No module named 'dpo_ref.nope'", name="dpo_ref.nope")
    with pytest.raises(ModuleNotFoundError):
        cli.main(["train"])


def test_debug_re_raises_user_errors(fake_command):
    fake_command.error = UserError("bad")
    with pytest.raises(UserError, match="bad"):
        cli.main(["--debug", "train"])


def test_interrupt_is_one_line(fake_command, capsys):
    fake_command.error = KeyboardInterrupt()
    assert cli.main(["train"]) == 130
    assert capsys.readouterr().err == "dpo-ref train: interrupted\n"


def test_warnings_are_one_line_each(fake_command, capsys):
    import warnings

    def main(args):
        warnings.warn("dropped 2 row(s) whose prompt is longer than 8 tokens", UserWarning, stacklevel=2)
        return 0

    fake_command.main = main
    before = warnings.showwarning
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert cli.main(["train"]) == 0
    assert capsys.readouterr().err == "dpo-ref: warning: dropped 2 row(s) whose prompt is longer than 8 tokens\n"
    assert warnings.showwarning is before


def test_a_subcommand_missing_from_the_install_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(cli.SUBCOMMANDS, "math", ("dpo_ref.no_such_module", "main", "typeset"))
    assert cli.main(["math"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "dpo-ref math: error: the math subcommand is not available in this install: no module dpo_ref.no_such_module"
    ), err
    assert err.count("\n") == 1


# ----------------------------------------------------------------- valid input still runs


@pytest.mark.parametrize(
    "argv",
    [
        ["figures"],
        ["reproduce"],
        ["reproduce", "--config", "cpu", "--device", "cpu"],
        ["train", "--data", "x.jsonl", "--output-dir", "out"],
        ["train", "--data", "x.jsonl", "--output-dir", "out", "--method", "cdpo", "--label-smoothing", "0.1"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_defaults_and_valid_values_pass_the_checks(argv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative output folders land here
    cli.build_parser(argv[0]).parse_args(argv)  # exits on a rejected value
    assert list(tmp_path.iterdir()) == []  # the checks create nothing


def test_a_valid_train_command_runs_through_the_cli(capsys, tmp_path, pairs_file):
    out = tmp_path / "out"
    code = cli.main(
        [
            "train",
            "--data",
            str(pairs_file),
            "--output-dir",
            str(out),
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--device",
            "cpu",
            "--max-length",
            "32",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert (out / "model.safetensors").is_file() and (out / "history.json").is_file()
