"""Which folders load_preference_dataset accepts, and the one message for those it does not."""

from __future__ import annotations

import json

import pytest

from dpo_ref import data

ROWS = [{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}]


def _message(folder) -> str:
    return (
        f"{folder} is a folder but neither a save_to_disk folder (dataset_info.json or dataset_dict.json) "
        "nor a folder of .jsonl/.json/.parquet files; point at a data file or at a folder that holds one"
    )


@pytest.mark.parametrize(
    "files",
    [
        {},
        {"README.md": "# notes"},
        {"train.csv": "prompt,chosen,rejected\n"},
        {".cache/train.jsonl": json.dumps(ROWS[0])},
    ],
    ids=["empty", "readme", "csv only", "hidden folder only"],
)
def test_a_folder_without_data_files_gets_one_message(tmp_path, files):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    with pytest.raises(ValueError) as error:
        data.load_preference_dataset(tmp_path)
    assert str(error.value) == _message(tmp_path)


def test_data_files_in_a_subfolder_still_load(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text(json.dumps(ROWS[0]) + "\n")
    (tmp_path / "README.md").write_text("# notes\n")
    assert data.load_preference_dataset(tmp_path).to_list() == ROWS
