"""The example scripts' outputs, recorded once and shown on the site.

Each script in ``examples/`` is a page of the site, with the output of every cell. Running
the eight scripts takes about a minute of the build's time, on every build after a code
change, so the outputs are recorded like the experiments' results: ``dpo-ref examples``
(``make examples``) runs each script as a notebook in its fast mode, the way the build
used to, and writes ``docs/results/examples/NAME.ipynb`` with its outputs and where they
came from (the script's SHA-256, the commit, the date, the versions).

The site build shows a recorded notebook only while its script is byte for byte the one
that was recorded; a script edited since runs again at build time, so a page never pairs
code with outputs that code did not print. ``tests/test_examples.py`` fails while a
recording is missing or out of date, so what is committed builds fast.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import time
from pathlib import Path

from dpo_ref import paths
from dpo_ref.errors import UnknownNameError

METADATA_KEY = "dpo_ref"

# The environment of the kernel that runs an example, here and in the site build: the
# fast sizes, no hub, and no "IProgress not found" warning (with this machine's paths)
# from tqdm, which cannot draw a widget progress bar in a recorded notebook.
NOTEBOOK_ENV = {
    "DPO_REF_SMOKE": "1",
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONWARNINGS": "ignore:IProgress not found",
}


def scripts() -> list[Path]:
    return sorted(paths.examples_dir().glob("*.py"))


def script_sha256(script: Path) -> str:
    return hashlib.sha256(script.read_bytes()).hexdigest()


def recording_of(script: Path, recorded_dir: Path | None = None) -> Path:
    return (recorded_dir or paths.recorded_examples_dir()) / f"{script.stem}.ipynb"


def recorded_metadata(notebook: Path) -> dict:
    """Where a recorded notebook came from (:func:`record` writes it); empty if it is not a recording."""
    import nbformat

    try:
        return dict(nbformat.read(notebook, as_version=4).metadata.get(METADATA_KEY, {}))
    except (OSError, ValueError):
        return {}


def recorded_sha256(notebook: Path) -> str | None:
    """The script hash a recorded notebook was made from; None if it is not a recording."""
    return recorded_metadata(notebook).get("script_sha256")


def current_recording(script: Path, recorded_dir: Path | None = None) -> Path | None:
    """The recorded notebook of ``script`` if it was made from the script as it is now."""
    notebook = recording_of(script, recorded_dir)
    if notebook.is_file() and recorded_sha256(notebook) == script_sha256(script):
        return notebook
    return None


def record(script: Path, out_dir: Path | None = None, *, timeout: int = 600) -> Path:
    """Run ``script`` as a notebook in its fast mode and write it, outputs included, to ``out_dir``.

    The notebook is what the site build would execute: jupytext reads the script, a
    Python kernel runs it from the repository root with ``DPO_REF_SMOKE=1``. Cell ids
    are numbered (jupytext makes random ones), so a rerun changes only what the cells print.
    """
    import jupytext
    import nbclient
    import nbformat

    from dpo_ref.experiments.provenance import git_commit, library_versions

    root = paths.require_checkout("dpo-ref examples")
    script = Path(script).resolve()
    digest = script_sha256(script)
    notebook = jupytext.read(script)
    for i, cell in enumerate(notebook.cells):
        cell.id = f"cell-{i}"
    saved = {key: os.environ.get(key) for key in NOTEBOOK_ENV}
    os.environ.update(NOTEBOOK_ENV)  # the kernel inherits this process's environment
    start = time.perf_counter()
    try:
        nbclient.NotebookClient(
            notebook,
            timeout=timeout,
            kernel_name="python3",
            allow_errors=False,
            resources={"metadata": {"path": str(root)}},
        ).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = _joined_streams(cell.outputs)
    notebook.metadata[METADATA_KEY] = {
        "script": script.relative_to(root).as_posix() if script.is_relative_to(root) else script.name,
        "script_sha256": digest,
        "git_commit": git_commit(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "wall_time_s": round(time.perf_counter() - start, 1),
        "versions": library_versions(),
        "command": "dpo-ref examples",
    }
    out_dir = Path(out_dir) if out_dir is not None else paths.recorded_examples_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = recording_of(script, out_dir)
    tmp = path.with_suffix(".ipynb.tmp")
    nbformat.write(notebook, tmp)
    tmp.replace(path)  # an interrupted run leaves the previous recording whole
    return path


def _joined_streams(outputs: list) -> list:
    """Consecutive prints as one output: how the kernel split them depends on timing."""
    joined: list = []
    for output in outputs:
        previous = joined[-1] if joined else None
        if (
            output.get("output_type") == "stream"
            and previous is not None
            and previous.get("output_type") == "stream"
            and previous.get("name") == output.get("name")
        ):
            previous["text"] += output["text"]
        else:
            joined.append(output)
    return joined


# --------------------------------------------------------------------------- dpo-ref examples


def add_arguments(parser) -> None:
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="scripts to record, e.g. train_dpo (default: every one in examples/)"
    )
    parser.add_argument(
        "--stale", action="store_true", help="record only the scripts whose recording is missing or out of date"
    )
    from dpo_ref.cli import output_folder

    parser.add_argument(
        "--out-dir", default=None, type=output_folder, help="where the notebooks go (default: docs/results/examples/)"
    )


def main(args) -> int:
    available = {script.stem: script for script in scripts()}
    unknown = [name for name in args.names if name.removesuffix(".py") not in available]
    if unknown:
        raise UnknownNameError(f"no example named {', '.join(unknown)}; the examples are {', '.join(available)}")
    chosen = [available[name.removesuffix(".py")] for name in args.names] or list(available.values())
    out_dir = Path(args.out_dir) if args.out_dir else paths.recorded_examples_dir()
    if args.stale:
        chosen = [script for script in chosen if current_recording(script, out_dir) is None]
    for script in chosen:
        start = time.perf_counter()
        path = record(script, out_dir)
        print(f"{script.name}: {time.perf_counter() - start:.1f} s -> {path}", flush=True)
    if not chosen:
        print("every recording is up to date")
    return 0
