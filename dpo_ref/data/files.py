"""Loading preference data: local JSONL/Parquet files, ``save_to_disk`` folders, hub names."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import datasets

from dpo_ref.data.checks import validate_preference_dataset
from dpo_ref.errors import MissingFileError, OfflineError, UserError

__all__ = ["load_preference_dataset", "FILE_BUILDERS"]

# Single-file formats and the `datasets` builder that reads each.
FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


# --------------------------------------------------------------------------- loading


def load_preference_dataset(name_or_path: str | os.PathLike, *, split: str = "train") -> datasets.Dataset:
    """Load and validate a preference dataset from a local file or folder, or the hub.

    Args:
        name_or_path: a ``.jsonl``/``.json``/``.parquet`` file (one split, so ``split`` may
            only slice it, e.g. ``"train[:100]"``), a folder written by
            ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``, a folder of data
            files, or a hub dataset name such as ``"trl-lib/ultrafeedback_binarized"``.
        split: the split to return from a folder or a hub dataset.

    Returns:
        The dataset, checked with :func:`validate_preference_dataset`.

    Raises:
        MissingFileError: ``name_or_path`` looks like a local path and does not exist.
        OfflineError: a hub name could not be fetched (offline, no network).
        UserError: an empty or unreadable file, an unknown split, or invalid rows.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_file():
        if not path.read_bytes().strip():
            raise UserError(f"{path} is empty: a preference data file needs at least one row")
        builder = FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise UserError(
                f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(FILE_BUILDERS)} "
                "or a save_to_disk folder"
            )
        dataset = _read(path, lambda: datasets.load_dataset(builder, data_files={"train": str(path)}, split=split))
    elif path.is_dir():
        if any((path / name).exists() for name in ("dataset_dict.json", "dataset_info.json", "state.json")):
            dataset = _read(path, lambda: datasets.load_from_disk(str(path)))
            if isinstance(dataset, datasets.DatasetDict):
                if split not in dataset:
                    raise UserError(f"{path} has no split {split!r}; its splits are {list(dataset)}")
                dataset = dataset[split]
        else:
            if not _holds_data_files(path):
                # `datasets` would guess a loader from whatever the folder holds and fail without naming it
                raise UserError(
                    f"{path} is a folder but neither a save_to_disk folder (dataset_info.json or "
                    f"dataset_dict.json) nor a folder of {'/'.join(FILE_BUILDERS)} files; "
                    "point at a data file or at a folder that holds one"
                )
            dataset = _read(path, lambda: datasets.load_dataset(str(path), split=split))
    elif _looks_like_local_path(text):
        raise MissingFileError(f"no such preference data file or folder: {text} (looked for {path.absolute()})")
    else:
        dataset = _load_from_hub(text, split)
    if len(dataset) == 0:
        raise UserError(f"{text} holds no rows (split {split!r}): a preference dataset needs at least one pair")
    validate_preference_dataset(dataset)
    return dataset


def _holds_data_files(folder: Path) -> bool:
    """Whether ``folder`` holds a .jsonl/.json/.parquet file outside hidden folders (which `datasets` skips)."""
    return any(
        file.suffix.lower() in FILE_BUILDERS
        and not any(part.startswith((".", "__")) for part in file.relative_to(folder).parts)
        and file.is_file()
        for file in folder.rglob("*")
    )


def _looks_like_local_path(text: str) -> bool:
    # A hub id is "name" or "owner/name"; anything else is meant as a local path.
    return (
        text.startswith((".", "/", "~"))
        or Path(text).suffix.lower() in FILE_BUILDERS
        or text.count("/") > 1
        or os.sep != "/"
        and os.sep in text
    )


def _read(path: Path, read):
    # `datasets` reports a malformed file several frames deep, wrapped in its own error;
    # surface the cause in one line instead.
    try:
        with _quiet_datasets():
            return read()
    except (FileNotFoundError, ConnectionError):
        raise
    except Exception as error:  # noqa: BLE001 - any parse error becomes one clear line
        cause = error.__cause__ or error
        first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise UserError(f"could not read preference data from {path}: {first_line}") from None


@contextlib.contextmanager
def _quiet_datasets():
    """No progress bar and no log line from `datasets` while it reads a local file.

    Reading a local file takes a moment, so the bar tells nothing; and on a malformed file
    `datasets` logs its parser's error and draws the bar again before raising, so a user
    would see three lines for one mistake that :func:`_read` reports in one.
    """
    bars_were_on = datasets.is_progress_bar_enabled()
    verbosity = datasets.logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    try:
        yield
    finally:
        datasets.logging.set_verbosity(verbosity)
        if bars_were_on:
            datasets.enable_progress_bars()


def _load_from_hub(name: str, split: str) -> datasets.Dataset:
    try:
        return datasets.load_dataset(name, split=split)
    except ConnectionError as error:
        raise OfflineError(
            f"could not fetch {name!r} from the Hugging Face hub ({error}), and there is no local file or "
            f"folder {name!r}. A local path works offline: a .jsonl/.json/.parquet file or a save_to_disk folder."
        ) from None
    except FileNotFoundError as error:  # DatasetNotFoundError is a FileNotFoundError
        raise MissingFileError(
            f"{name!r} is neither a local file or folder nor a dataset on the hub ({error})"
        ) from None
