"""Every script in examples/ runs top to bottom in its fast mode and prints what it promises.

Each example is run as a subprocess with ``--smoke`` (the same code path as a full
run, on tiny sizes), exactly as a reader runs it. ``bring_your_own.py`` is also run
in-process (``runpy``) over a matrix of local models and data files, good and bad: a
bad input must stop with exit code 2 and one line ``error: ...`` naming the problem.
"""

from __future__ import annotations

import json
import math
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import datasets
import nbformat  # the docs extra; a missing one fails here, it does not skip the tests that read notebooks
import pytest

from dpo_ref.models import save_pretrained, tiny_bpe_tokenizer, tiny_gpt2, toy_preference_pairs

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
pytestmark = [pytest.mark.slow]


def example_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("DPO_REF_SMOKE", None)
    env.update(extra)
    return env


def run_example(name: str, *args: str, smoke: bool = True, timeout: int = 300, **env: str):
    command = [sys.executable, str(EXAMPLES / name), *(["--smoke"] if smoke else []), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=example_env(**env))


def ok(result) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def number_after(pattern: str, text: str) -> float:
    match = re.search(pattern + r"\s*([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)", text)
    assert match, f"no {pattern!r} in output:\n{text[-2000:]}"
    return float(match.group(1))


def test_every_example_is_a_percent_script_with_command_and_runtime():
    scripts = sorted(EXAMPLES.glob("*.py"))
    assert {p.name for p in scripts} >= {
        "bradley_terry_reward_model.py",
        "dpo_from_scratch.py",
        "train_dpo.py",
        "compare_variants.py",
        "rlhf_vs_dpo.py",
        "bring_your_own.py",
        "scale_with_trl.py",
        "distributed_dpo.py",
    }
    for path in scripts:
        text = path.read_text()
        assert text.startswith('"""'), path.name
        docstring = text.split('"""')[1]
        assert f"examples/{path.name}" in docstring and re.search(r"about [\d.]+ (s|minutes?)", docstring), path.name
        assert "# %% [markdown]" in text and "\n# %%\n" in text, path.name
        assert "class Config" in text and "--smoke" in docstring and "DPO_REF_SMOKE" in text, path.name
        # seeds fixed: by prepare_run, or by hand where the script starts processes of its own
        assert "prepare_run(Config" in text or "torch.manual_seed(config.seed)" in text, path.name


def test_dpo_from_scratch_matches_dpo_ref():
    out = ok(run_example("dpo_from_scratch.py"))
    mine = number_after(r"from-scratch loss", out)
    theirs = number_after(r"== dpo_ref\.losses\.dpo_loss", out)
    assert mine == pytest.approx(theirs, abs=1e-6)
    assert mine != pytest.approx(math.log(2), abs=1e-3)  # the policy differs from the reference
    for name in ("policy log-probs", "reference log-probs", "implicit rewards", "per-pair losses"):
        assert number_after(re.escape(name) + r"\s+max \|hand - dpo_ref\| =", out) < 1e-4
    assert number_after(r"step\s+0\s+loss", out) == pytest.approx(math.log(2), abs=1e-4)
    assert "< ln 2: True" in out


def test_bradley_terry_reward_model():
    out = ok(run_example("bradley_terry_reward_model.py"))
    assert number_after(r"before training: held-out loss", out) == pytest.approx(math.log(2), abs=1e-4)
    match = re.search(r"held-out accuracy\s+([\d.]+) -> ([\d.]+)", out)
    assert match and float(match.group(1)) == 0.5  # every reward starts at 0: all ties
    assert float(match.group(2)) > 0.6  # training taught it the preference (0.76 when recorded)
    assert number_after(r"held-out loss\s+[\d.]+ ->", out) < math.log(2) - 0.05
    assert "loss(r_w + 5, r_l + 5) == loss(r_w, r_l): True" in out


def test_train_dpo_raises_reward():
    out = ok(run_example("train_dpo.py"))
    assert number_after(r"step\s+1\s+loss", out) == pytest.approx(math.log(2), abs=1e-4)
    before = number_after(r"before \(reference\)\s+reward", out)
    after = number_after(r"after DPO\s+reward", out)
    assert number_after(r"before \(reference\)\s+reward [-+.\d]+ ± [.\d]+\s+KL", out) == 0.0  # pi_ref vs itself
    assert after > before, out[-2000:]
    assert "--- reference" in out and "--- DPO" in out


def test_compare_variants_table():
    out = ok(run_example("compare_variants.py"))
    for method in ("reference (SFT)", "DPO", "IPO", "KTO", "ORPO", "SimPO"):
        row = re.search(rf"^{re.escape(method)}\s.*$", out, re.MULTILINE)
        assert row, f"no row for {method}"
        numbers = re.findall(r"[-+]?\d+\.\d+", row.group(0))
        assert len(numbers) >= 5 and all(math.isfinite(float(x)) for x in numbers), row.group(0)


def test_rlhf_vs_dpo_table():
    out = ok(run_example("rlhf_vs_dpo.py"))
    dpo = re.search(r"^DPO\s.*?(\d+)\s+(\d+)\s+(\d+)$", out, re.MULTILINE)
    rlhf = re.search(r"^RLHF \(RM \+ PPO\)\s.*?(\d+)\s+(\d+)\s+(\d+)$", out, re.MULTILINE)
    assert dpo and rlhf, out[-2000:]
    assert dpo.groups()[:2] == ("1", "1") and rlhf.groups()[:2] == ("3", "2")  # models in memory, training runs
    assert int(rlhf.group(3)) > 0 and int(dpo.group(3)) == 0  # PPO samples while it trains
    assert "x DPO's wall time" in out


def test_scale_with_trl_matches_dpo_ref():
    out = ok(run_example("scale_with_trl.py", timeout=400))
    assert "identical token ids in 16 of 16 pairs" in out
    assert re.search(r"the first 4 losses match: max \|TRL - dpo_ref\| = ([\d.e+-]+)", out), out[-2000:]
    rows = re.findall(r"^\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+[\d.e+-]+$", out, re.MULTILINE)
    assert len(rows) == 4
    for _, trl_loss, ours in rows:
        assert float(trl_loss) == pytest.approx(float(ours), abs=1e-5)
    assert float(rows[0][1]) == pytest.approx(math.log(2), abs=1e-5)
    assert float(rows[-1][1]) < math.log(2)


def test_accelerate_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {}
    for path in sorted((EXAMPLES / "accelerate").glob("*.yaml")):
        kinds[path.stem] = str(load_config_from_file(str(path)).distributed_type)
    assert kinds == {
        "ddp": "DistributedType.MULTI_GPU",
        "fsdp": "DistributedType.FSDP",
        "deepspeed_zero3": "DistributedType.DEEPSPEED",
    }


# --------------------------------------------------------------------------- bring_your_own


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """A tiny model saved with save_pretrained (with and without pad token and chat template) and data files."""
    root = tmp_path_factory.mktemp("byo")
    pairs = toy_preference_pairs(24, seed=3)
    tokenizer = tiny_bpe_tokenizer(
        [p["prompt"] + p[k] for p in toy_preference_pairs(128, seed=1) for k in ("chosen", "rejected")], vocab_size=320
    )
    model = tiny_gpt2(
        len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        n_positions=128,
    )
    save_pretrained(model, tokenizer, root / "model")
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    save_pretrained(model, tokenizer, root / "chat-model")
    tokenizer.chat_template = None
    tokenizer.pad_token = None
    save_pretrained(model, tokenizer, root / "no-pad-model")

    def jsonl(name, rows):
        path = root / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(path)

    files = {
        "jsonl": jsonl("pairs.jsonl", pairs),
        "conversational": jsonl(
            "chat.jsonl",
            [
                {
                    "prompt": [{"role": "user", "content": p["prompt"]}],
                    "chosen": [{"role": "assistant", "content": p["chosen"].strip()}],
                    "rejected": [{"role": "assistant", "content": p["rejected"].strip()}],
                }
                for p in pairs
            ],
        ),
        "no_chosen": jsonl("sft.jsonl", [{"prompt": p["prompt"], "response": p["chosen"]} for p in pairs]),
        "same": jsonl("same.jsonl", pairs[:3] + [{**pairs[3], "rejected": pairs[3]["chosen"]}] + pairs[4:]),
        "empty": jsonl("empty.jsonl", pairs[:5] + [{**pairs[5], "chosen": "   "}] + pairs[6:]),
        "long": jsonl(
            "long.jsonl", [{**p, "prompt": p["prompt"] + " and" * 80} if i < 3 else p for i, p in enumerate(pairs)]
        ),
        "all_long": jsonl("all_long.jsonl", [{**p, "prompt": p["prompt"] + " and" * 80} for p in pairs]),
    }
    datasets.Dataset.from_list(pairs).to_parquet(str(root / "pairs.parquet"))
    files["parquet"] = str(root / "pairs.parquet")
    datasets.DatasetDict({"train": datasets.Dataset.from_list(pairs)}).save_to_disk(str(root / "saved"))
    files["saved"] = str(root / "saved")
    models = {name: str(root / name) for name in ("model", "chat-model", "no-pad-model")}
    return {"root": root, "models": models, "files": files}


def byo(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """Run bring_your_own.py in this process: (exit code, stdout, stderr)."""
    for key, value in example_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / "bring_your_own.py"), "--smoke", *args])
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)  # the script would take this for a notebook
    code = 0
    try:
        runpy.run_path(str(EXAMPLES / "bring_your_own.py"), run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_bring_your_own_local_model_and_jsonl_in_a_subprocess(local):
    out = ok(
        run_example(
            "bring_your_own.py",
            "--model",
            local["models"]["model"],
            "--dataset",
            local["files"]["jsonl"],
            "--learning-rate",
            "1e-3",
            "--output-dir",
            str(local["root"] / "trained"),
        )
    )
    assert "24 pairs, standard format" in out
    assert number_after(r"step 1 loss", out) == pytest.approx(math.log(2), abs=1e-6)
    loss_before = number_after(r"held-out loss\s+", out)
    loss_after = number_after(r"held-out loss\s+[-+.\d]+ ->", out)
    assert loss_before == pytest.approx(math.log(2), abs=1e-4) and loss_after < loss_before
    assert (local["root"] / "trained" / "model.safetensors").is_file()


def test_bring_your_own_built_in_defaults(capsys, monkeypatch):
    code, out, err = byo(capsys, monkeypatch)
    assert code == 0, err
    assert "built-in tiny GPT-2" in out and "64 pairs, standard format" in out


@pytest.mark.parametrize("fmt", ["parquet", "saved"])
def test_bring_your_own_parquet_and_save_to_disk(local, capsys, monkeypatch, fmt):
    code, out, err = byo(capsys, monkeypatch, "--model", local["models"]["model"], "--dataset", local["files"][fmt])
    assert code == 0, err
    assert "24 pairs, standard format" in out and "kept 24 of 24 pairs" in out


def test_bring_your_own_conversational_uses_the_chat_template(local, capsys, monkeypatch):
    code, out, err = byo(
        capsys, monkeypatch, "--model", local["models"]["chat-model"], "--dataset", local["files"]["conversational"]
    )
    assert code == 0, err
    assert "conversational format" in out and "chat template: the tokenizer's own" in out


def test_bring_your_own_conversational_without_template_is_one_error(local, capsys, monkeypatch):
    code, out, err = byo(
        capsys, monkeypatch, "--model", local["models"]["model"], "--dataset", local["files"]["conversational"]
    )
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert "no chat template" in err


def test_bring_your_own_sets_a_missing_pad_token_and_says_so(local, capsys, monkeypatch):
    code, out, err = byo(
        capsys, monkeypatch, "--model", local["models"]["no-pad-model"], "--dataset", local["files"]["jsonl"]
    )
    assert code == 0, err
    assert re.search(r"^warning: .*no pad token.*eos", out, re.MULTILINE | re.IGNORECASE), out
    assert "pad '<|endoftext|>'" in out


def test_bring_your_own_reports_dropped_long_prompts(local, capsys, monkeypatch):
    code, out, err = byo(
        capsys,
        monkeypatch,
        "--model",
        local["models"]["model"],
        "--dataset",
        local["files"]["long"],
        "--max-length",
        "64",
    )
    assert code == 0, err
    assert "dropped 3 of 24 pairs: 3 with a prompt longer than 64 tokens" in out
    assert "kept 21 of 24 pairs" in out


BAD_INPUTS = {
    # case: (arguments, text the single error line must contain)
    "no chosen/rejected": (lambda f, m: ["--dataset", f["no_chosen"]], ["missing column", "'response'"]),
    "chosen == rejected": (lambda f, m: ["--dataset", f["same"]], ["row 3", "identical to 'chosen'"]),
    "empty text": (lambda f, m: ["--dataset", f["empty"]], ["row 5", "'chosen'", "empty"]),
    "every prompt too long": (
        lambda f, m: ["--model", m["model"], "--dataset", f["all_long"], "--max-length", "64"],
        ["no row left", "max_length=64"],
    ),
    "missing model path": (lambda f, m: ["--model", "./no/such/model"], ["./no/such/model", "does not exist"]),
    "missing data file": (lambda f, m: ["--dataset", "./no-such-pairs.jsonl"], ["no-such-pairs.jsonl"]),
    "hub model offline": (lambda f, m: ["--model", "someone/some-model"], ["someone/some-model", "local"]),
    "hub dataset offline": (lambda f, m: ["--dataset", "someone/some-pairs"], ["someone/some-pairs", "local"]),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bring_your_own_bad_input_is_one_error_line(local, capsys, monkeypatch, case):
    make_args, expected = BAD_INPUTS[case]
    code, out, err = byo(capsys, monkeypatch, *make_args(local["files"], local["models"]))
    assert code == 2, (out[-1500:], err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for text in expected:
        assert text in lines[0], lines[0]


def test_bring_your_own_bad_input_in_a_subprocess_has_no_traceback(local):
    result = run_example("bring_your_own.py", "--dataset", local["files"]["same"])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error: row 3, field 'rejected'")


# --------------------------------------------------------------------------- recorded outputs


def _outputs_text(cell) -> list[str]:
    return [o.get("text") or "".join(o.get("data", {}).get("text/plain", "")) for o in cell.get("outputs", [])]


def test_every_example_has_current_recorded_outputs():
    """The site shows these; a script edited since its recording would run at every build."""
    from dpo_ref.site.notebooks import current_recording, recording_of, scripts

    stale = [s.name for s in scripts() if current_recording(s) is None]
    assert not stale, f"recorded outputs missing or out of date for {stale}: run `make examples`"
    for script in scripts():
        notebook = nbformat.read(recording_of(script), as_version=4)
        outputs = [o for cell in notebook.cells for o in cell.get("outputs", [])]
        assert any(o.get("name") == "stdout" for o in outputs), script.name
        noise = [o for o in outputs if o["output_type"] == "error" or o.get("name") == "stderr"]
        assert not noise, f"{script.name} recorded errors or warnings: {noise}"


def test_recording_an_example_reproduces_its_committed_notebook(tmp_path):
    """What `dpo-ref examples` records now has the committed recording's cells and outputs
    (numbers aside: timings move), so the site's example pages show what the code prints."""
    from dpo_ref.paths import recorded_examples_dir
    from dpo_ref.site.notebooks import record

    RECORDED_DIR = recorded_examples_dir()

    fresh = nbformat.read(record(EXAMPLES / "dpo_from_scratch.py", tmp_path), as_version=4)
    committed = nbformat.read(RECORDED_DIR / "dpo_from_scratch.ipynb", as_version=4)

    def shape(notebook):
        numbers = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
        return [(c.cell_type, c.source, [numbers.sub("0", t) for t in _outputs_text(c)]) for c in notebook.cells]

    for i, (now, then) in enumerate(zip(shape(fresh), shape(committed), strict=True)):
        assert now == then, f"cell {i} differs from the committed recording (`make examples` updates it)"
    text = "".join(t for c in fresh.cells for t in _outputs_text(c))
    assert "smoke=True" in text and "== dpo_ref.losses.dpo_loss" in text
    assert fresh.metadata["dpo_ref"]["script"] == "examples/dpo_from_scratch.py"
    assert [c.id for c in fresh.cells] == [f"cell-{i}" for i in range(len(fresh.cells))]


def test_an_edited_script_is_not_paired_with_old_outputs(tmp_path):
    from dpo_ref.site.notebooks import METADATA_KEY, current_recording, script_sha256

    script = tmp_path / "demo.py"
    script.write_text("# %%\nprint('one')\n")
    notebook = nbformat.v4.new_notebook(metadata={METADATA_KEY: {"script_sha256": script_sha256(script)}})
    nbformat.write(notebook, tmp_path / "demo.ipynb")
    assert current_recording(script, tmp_path) == tmp_path / "demo.ipynb"
    script.write_text("# %%\nprint('two')\n")
    assert current_recording(script, tmp_path) is None
    (tmp_path / "demo.ipynb").write_text("not a notebook")
    assert current_recording(script, tmp_path) is None


def test_the_site_renders_a_recording_only_while_it_is_current(monkeypatch):
    from types import SimpleNamespace

    from dpo_ref.paths import recorded_examples_dir
    from dpo_ref.site import hooks as site_hooks
    from dpo_ref.site import notebooks

    RECORDED_DIR = recorded_examples_dir()

    def page():
        source = str(EXAMPLES / "train_dpo.py")
        return SimpleNamespace(file=SimpleNamespace(src_uri="examples/train_dpo.py", abs_src_path=source))

    current = site_hooks.on_pre_page(page(), config={}, files=None)
    assert current.file.abs_src_path == str(RECORDED_DIR / "train_dpo.ipynb")
    monkeypatch.setattr(notebooks, "current_recording", lambda script: None)
    stale = site_hooks.on_pre_page(page(), config={}, files=None)
    assert stale.file.abs_src_path == str(EXAMPLES / "train_dpo.py")  # the build runs the script
