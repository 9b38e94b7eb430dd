"""Bad input at the public entry points: one clear message naming the field (the row, the
file), raised before any work is lost (ARCHITECTURE.md, "Invariants").

This file holds the cases no other test file covers. Covered elsewhere, and not repeated:

* preference data (missing columns, empty/non-string/NaN text, chosen == rejected,
  conversational mistakes, labels), tokenization (prompt longer than max_length,
  completion truncated to nothing, no pad token, no EOS, pad == eos, chat templates):
  tests/test_data.py;
* loss hyperparameters and tensors (beta <= 0, label_smoothing, NaN, shapes):
  tests/test_losses.py; log-prob inputs: tests/test_logps.py; model and tokenizer
  loading: tests/test_models.py;
* a NaN loss stops training at its step and keeps the last good checkpoint, a stale
  half-written checkpoint is ignored, a SIGKILLed run resumes: tests/test_train.py;
* the toy figures' beta and probabilities, unknown figure ids: tests/test_figures.py;
  a broken figure fence and bad alignment-tabs data fail the build: tests/test_site_build.py;
* every `dpo-ref` subcommand's user errors: tests/test_cli.py.

"""

from __future__ import annotations

import functools
import json
import math

import datasets
import pytest
import torch
from pymdownx.superfences import SuperFencesException
from toy_pairs import V, random_pairs, toy_model

from dpo_ref import data
from dpo_ref.errors import UserError
from dpo_ref.losses import dpo_loss
from dpo_ref.models import tiny_gpt2
from dpo_ref.results import ResultsFileError, load_results, results_path
from dpo_ref.site import directives
from dpo_ref.site import hooks as site_hooks
from dpo_ref.train import (
    NonFiniteLossError,
    PairwiseObjective,
    PPOConfig,
    TensorBatches,
    TrainConfig,
    Trainer,
    train_preference,
)


def _model(seed: int = 0):
    return toy_model(seed)


def _pairs(n: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    return random_pairs(n, seed)


DPO = PairwiseObjective(functools.partial(dpo_loss, beta=0.1), beta=0.1)


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------- trainer: non-finite values


def _fit_with_inf_logits_from_step_3(tmp_path):
    """Train 8 steps, checkpoint every 2; from the 4th forward pass (step index 3) on, logits are +inf."""
    model = _model()
    calls = [0]

    def poison(module, inputs, output):
        calls[0] += 1
        if calls[0] > 3:
            output.logits = torch.full_like(output.logits, math.inf)
        return output

    model.register_forward_hook(poison)
    cfg = TrainConfig(steps=8, batch_size=4, device="cpu", checkpoint_dir=str(tmp_path), checkpoint_every=2)
    trainer = Trainer(model, DPO, TensorBatches(_pairs(), 4), cfg)
    with pytest.raises((FloatingPointError, ValueError)) as error:
        trainer.fit()
    return trainer, error.value


def test_inf_in_model_outputs_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer, _ = _fit_with_inf_logits_from_step_3(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["step-000002"]  # nothing written after the bad step
    assert trainer.step == 3  # three good updates; the fourth was never applied
    assert all(bool(torch.isfinite(p).all()) for p in trainer.model.parameters())


def test_inf_in_model_outputs_is_reported_with_the_step_and_the_checkpoint(tmp_path):
    _, error = _fit_with_inf_logits_from_step_3(tmp_path)
    assert isinstance(error, NonFiniteLossError)
    message = str(error)
    assert message.startswith("training stopped at step 3: ")
    assert str(tmp_path / "step-000002") in message and "\n" not in message


def test_nan_gradient_with_a_finite_loss_stops_before_the_update(tmp_path):
    def nan_gradient(model, batch):
        loss, metrics = DPO(model, batch)
        weight = next(model.parameters())
        # sqrt(|0 * w|) is 0, a finite loss, whose gradient 0 * inf is NaN
        return loss + (weight * 0).abs().sqrt().sum(), metrics

    model = _model()
    before = _params(model)
    cfg = TrainConfig(steps=4, batch_size=4, device="cpu", checkpoint_dir=str(tmp_path))
    with pytest.raises(
        NonFiniteLossError,
        match=r"^training stopped at step 0: gradient norm is nan\. "
        r"The model was not updated; last good checkpoint: none written",
    ):
        Trainer(model, nan_gradient, TensorBatches(_pairs(), 4), cfg).fit()
    assert _same(before, _params(model))
    assert not any(tmp_path.iterdir())


def test_batch_without_completion_tokens_fails_at_step_0_naming_the_rows():
    pairs = _pairs(8)
    pairs["rejected_labels"][2] = -100  # row 2's rejected completion was masked away entirely
    model = _model()
    before = _params(model)
    with pytest.raises(ValueError, match=r"rows \[.*\] have no completion token"):
        train_preference(model, DPO, pairs, TrainConfig(steps=2, batch_size=8, device="cpu"))
    assert _same(before, _params(model))


# --------------------------------------------------------------------------- trainer: bad configuration

# (TrainConfig change, text the error must contain). Each must fail before the first update.
BAD_CONFIGS = [
    pytest.param({"optimizer": "sgd"}, "optimizer must be 'adamw' or 'rmsprop', got 'sgd'", id="optimizer"),
    pytest.param({"device": "gpu"}, "device must be 'auto', 'cpu' or 'cuda', got 'gpu'", id="device"),
    pytest.param({"batch_size": 17}, "batch_size 17 is larger than the dataset (16 rows)", id="batch_size>rows"),
    pytest.param({"learning_rate": -1e-3}, "learning rate", id="learning_rate<0"),
    pytest.param({"learning_rate": math.nan}, "learning rate", id="learning_rate=nan"),
    pytest.param({"weight_decay": -0.1}, "weight_decay", id="weight_decay<0"),
    # checked by TrainConfig.__post_init__
    pytest.param({"batch_size": 0}, "batch_size", id="batch_size=0"),  # was: ZeroDivisionError
    pytest.param({"steps": 0}, "steps", id="steps=0"),  # was: trains nothing, silently
    pytest.param({"log_every": 0}, "log_every", id="log_every=0"),  # was: ZeroDivisionError after step 1
    pytest.param({"warmup_steps": -5}, "warmup_steps", id="warmup<0"),  # was: negative lr: ascent
    pytest.param({"max_grad_norm": 0.0}, "max_grad_norm", id="max_grad_norm=0"),  # was: no learning
    pytest.param({"keep_checkpoints": 0}, "keep_checkpoints", id="keep=0"),  # was: keeps all
]


@pytest.mark.parametrize("change, expected", BAD_CONFIGS)
def test_bad_train_config_fails_before_the_first_update(tmp_path, change, expected):
    model = _model()
    before = _params(model)
    with pytest.raises(ValueError) as error:  # raised by TrainConfig itself, or by the trainer
        cfg = TrainConfig(**{"steps": 2, "batch_size": 4, "device": "cpu", "checkpoint_dir": str(tmp_path), **change})
        train_preference(model, DPO, _pairs(), cfg)
    assert expected in str(error.value) and "\n" not in str(error.value)
    assert _same(before, _params(model)) and not any(tmp_path.iterdir())


def test_tensor_columns_of_different_lengths():
    pairs = _pairs(8)
    pairs["reference_rejected_logps"] = torch.zeros(7)
    with pytest.raises(
        ValueError, match=r"all columns must have the same number of rows, got \{.*'reference_rejected_logps': 7"
    ):
        TensorBatches(pairs, 4)


def test_ppo_minibatch_must_divide_the_rollout():
    with pytest.raises(ValueError, match=r"minibatch_size \(24\) must divide rollout_batch_size \(64\)"):
        PPOConfig(rollout_batch_size=64, minibatch_size=24).updates_per_rollout()


# --------------------------------------------------------------------------- trainer: unusable checkpoints


@pytest.fixture
def checkpointed(tmp_path):
    """A checkpoint folder holding one complete checkpoint (step 1) of `_model()`."""
    train_preference(
        _model(), DPO, _pairs(), TrainConfig(steps=1, batch_size=4, device="cpu", checkpoint_dir=str(tmp_path))
    )
    assert [p.name for p in tmp_path.iterdir()] == ["step-000001"]
    return tmp_path


def test_resuming_from_a_corrupt_checkpoint_names_the_file(checkpointed):
    model_file = checkpointed / "step-000001" / "model.safetensors"
    model_file.write_bytes(model_file.read_bytes()[:64])  # bit rot, or a copy cut short
    with pytest.raises(ValueError, match=r"step-000001.*model\.safetensors") as error:
        train_preference(
            _model(), DPO, _pairs(), TrainConfig(steps=2, batch_size=4, device="cpu", checkpoint_dir=str(checkpointed))
        )
    assert "\n" not in str(error.value)


def test_resuming_into_a_different_model_names_the_checkpoint(checkpointed):
    other = tiny_gpt2(V, n_layer=1, n_embd=8, n_head=2, n_positions=16)
    with pytest.raises(ValueError, match=r"step-000001") as error:
        train_preference(
            other, DPO, _pairs(), TrainConfig(steps=2, batch_size=4, device="cpu", checkpoint_dir=str(checkpointed))
        )
    assert "\n" not in str(error.value)


def test_resuming_without_the_optimizer_file_names_it(checkpointed):
    (checkpointed / "step-000001" / "optimizer.pt").unlink()
    with pytest.raises(FileNotFoundError, match=r"step-000001/optimizer\.pt"):
        train_preference(
            _model(), DPO, _pairs(), TrainConfig(steps=2, batch_size=4, device="cpu", checkpoint_dir=str(checkpointed))
        )


# --------------------------------------------------------------------------- data folders


def test_a_folder_without_preference_data_is_named(tmp_path):
    (tmp_path / "README.md").write_text("# notes\n")
    (tmp_path / "train.py").write_text("print('hi')\n")
    with pytest.raises((ValueError, FileNotFoundError), match=rf"{tmp_path}.*(jsonl|parquet|save_to_disk)"):
        data.load_preference_dataset(tmp_path)


def test_an_empty_folder_is_named(tmp_path):
    with pytest.raises((ValueError, FileNotFoundError), match=str(tmp_path)):
        data.load_preference_dataset(tmp_path)


def test_split_missing_from_a_saved_dataset_dict(tmp_path):
    rows = [{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}]
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(ValueError, match=r"saved has no split 'test'; its splits are \['train'\]"):
        data.load_preference_dataset(tmp_path / "saved", split="test")


# --------------------------------------------------------------------------- results files


def _write(tmp_path, text: str, name: str = "exact_frontier", config: str = "cpu"):
    path = results_path(name, config=config, data_dir=tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


GOOD = {"provenance": {"config": {"name": "cpu"}}, "points": [], "optimal_frontier": []}

# (id, file contents or None for no file, the problem the message must state)
BAD_RESULTS = [
    ("missing", None, "is missing"),
    ("empty", "", "is empty (a run killed while writing it?)"),
    ("truncated", json.dumps(GOOD)[:-9], "is not valid JSON at line 1, column"),
    (
        "nan",
        '{"provenance": {}, "points": [NaN], "optimal_frontier": []}',
        "holds NaN, which is not a number JSON allows",
    ),
    ("infinity", '{"provenance": {}, "points": [-Infinity], "optimal_frontier": []}', "holds -Infinity"),
    ("array", "[1, 2]", "must hold a JSON object, got a JSON list"),
    ("no provenance", json.dumps({"points": [], "optimal_frontier": []}), "has no key(s) ['provenance']"),
    ("missing key", json.dumps({"provenance": {}, "points": []}), "has no key(s) ['optimal_frontier']"),
    ("folder", "DIR", "is a folder, not a file"),
]


@pytest.mark.parametrize("contents, problem", [c[1:] for c in BAD_RESULTS], ids=[c[0] for c in BAD_RESULTS])
def test_unusable_results_file_names_the_file_and_the_fix(tmp_path, contents, problem):
    path = results_path("exact_frontier", config="cpu", data_dir=tmp_path)
    if contents == "DIR":
        path.mkdir(parents=True)
    elif contents is not None:
        _write(tmp_path, contents)
    with pytest.raises(ResultsFileError) as error:
        load_results("exact_frontier", config="cpu", data_dir=tmp_path, require=("points", "optimal_frontier"))
    message = str(error.value)
    assert message.startswith(f"results file {path}: {problem}"), message
    assert message.endswith("run `dpo-ref reproduce --config cpu` to write it") and "\n" not in message
    assert isinstance(error.value, (UserError, ValueError))


def test_a_good_results_file_loads(tmp_path):
    _write(tmp_path, json.dumps(GOOD), config="smoke")
    assert load_results("exact_frontier.json", config="smoke", data_dir=tmp_path, require=("points",)) == GOOD


@pytest.mark.parametrize("name", ["", "../secrets", "smoke/exact_frontier", ".hidden"])
def test_results_names_are_file_names(name):
    with pytest.raises(ValueError, match="name must be a results file name"):
        results_path(name)


def test_a_figure_on_a_missing_results_file_fails_the_build_naming_the_file(tmp_path, monkeypatch):
    """What a page sees when a figure reads results through load_results and the file is gone."""
    import sys
    import types

    from dpo_ref import figures

    module = types.ModuleType("dpo_ref_fake_results_figure")
    module.draw = lambda: load_results("exact_frontier", config="cpu", data_dir=tmp_path)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(figures.FIGURES, "measured-frontier", f"{module.__name__}:draw")
    with pytest.raises(SuperFencesException) as error:
        site_hooks.figure_fence("measured-frontier\n", "figure", "dpo-figure", {}, None)
    message = str(error.value)
    assert "figure 'measured-frontier' failed to build" in message
    assert str(tmp_path / "cpu" / "exact_frontier.json") in message and "is missing" in message


# --------------------------------------------------------------------------- site hooks and figures


class _Page:
    class file:  # noqa: N801 - mimics mkdocs' page.file.src_path
        src_path = "beta.md"


def test_unknown_page_directive_names_the_page(tmp_path):
    with pytest.raises(ValueError, match=r"^beta\.md: unknown directive \[\[quiz-tabs \.\.\.\]\]$"):
        site_hooks.on_page_markdown("Text.\n[[quiz-tabs data/quiz.yml]]\n", _Page(), {"docs_dir": str(tmp_path)}, None)


def test_missing_tabs_data_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data/missing\.yml"):
        site_hooks.on_page_markdown(
            "[[preference-tabs data/missing.yml]]\n", _Page(), {"docs_dir": str(tmp_path)}, None
        )


def test_tabs_data_that_is_not_a_list_names_the_file(tmp_path):
    path = tmp_path / "examples.yml"
    path.write_text("title: one example, not a list\n")
    with pytest.raises(ValueError, match=r"examples\.yml: expected a non-empty list of examples"):
        directives.preference_tabs(path)


def test_dpo_loss_figure_rejects_a_bad_beta():
    from dpo_ref.figures.loss import loss_and_weight

    with pytest.raises(ValueError, match="beta must be a positive number, got -0.1"):
        loss_and_weight(torch.zeros(3, dtype=torch.float64), beta=-0.1)


def test_embedding_something_that_is_not_a_figure_names_the_figure():
    from dpo_ref.figures.html import embed

    with pytest.raises(TypeError, match=r"figure 'beta-slider' returned dict, not a plotly Figure or HTML string"):
        embed("beta-slider", {"data": []})


def test_an_empty_beta_grid_is_named():
    from dpo_ref.figures.beta import beta_sweep
    from dpo_ref.figures.toy import SUMMARY_PROMPT

    with pytest.raises(ValueError, match="betas"):
        beta_sweep(SUMMARY_PROMPT, [])
    from dpo_ref.figures.ppo_problem import proxy_optimum_sweep

    with pytest.raises(ValueError, match="betas"):
        proxy_optimum_sweep(SUMMARY_PROMPT, [])


# --------------------------------------------------------------------------- experiments


@pytest.fixture
def fake_exact_group(monkeypatch):
    """The "exact" group replaced by one that only records that it ran."""
    import sys
    import types

    from dpo_ref import experiments

    ran = []
    module = types.ModuleType("dpo_ref_fake_group")
    module.GROUP = experiments.Group(
        name="exact",
        world="exact",
        parts={"all": 1.0},
        run_part=lambda config, seed, part, device, progress: ran.append("exact") or {},
        finish=lambda config, seed, parts: {f"exact_fake{seed}": parts["all"]},
        count_runs=lambda config, part: 1,
        summarise=lambda config, per_seed: {},
    )
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(experiments.GROUPS, "exact", f"{module.__name__}:GROUP")
    return ran


def test_unknown_experiment_group_fails_before_any_group_runs(tmp_path, fake_exact_group):
    from dpo_ref import experiments

    with pytest.raises(UserError, match=r"unknown experiment group 'sentiment-typo'; choose from \["):
        experiments.reproduce("smoke", device="cpu", out=tmp_path, groups=["sentiment-typo"])
    assert not fake_exact_group and not any(tmp_path.iterdir())


def test_a_typo_after_a_valid_group_fails_before_the_valid_group_runs(tmp_path, fake_exact_group):
    from dpo_ref import experiments

    with pytest.raises(UserError, match="unknown experiment group 'typo'"):
        experiments.count_runs(experiments.get_config("smoke"), ["exact", "typo"])
    with pytest.raises(UserError, match="unknown experiment group 'typo'"):
        experiments.reproduce("smoke", device="cpu", out=tmp_path, groups=["exact", "typo"])
    assert not fake_exact_group
    experiments.reproduce("smoke", device="cpu", out=tmp_path, groups=["exact"], seeds=[0])
    assert fake_exact_group == ["exact"]  # the fake group does run when asked for alone


# --------------------------------------------------------------------------- safe by default

SCANNED = ("dpo_ref", "examples", "benchmarks")
PICKLE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def _python_files():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*.py")):
            yield path.relative_to(root).as_posix(), path.read_text(encoding="utf-8")


def _dotted(node) -> str:
    import ast

    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _is_true(node) -> bool:
    import ast

    return isinstance(node, ast.Constant) and node.value is True


def unsafe_loading(name: str, source: str) -> list[str]:
    """Each unsafe-loading pattern in ``source``, as ``file:line: what``."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source, filename=name)):
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Call):
            func = _dotted(node.func)
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            if func == "torch.load" and not _is_true(keywords.get("weights_only")):
                found.append(f"{where}: torch.load without weights_only=True")
            if func.split(".")[-1] in ("load", "loads", "Unpickler") and func.split(".")[0] in PICKLE_MODULES:
                found.append(f"{where}: {func} runs code from the data")
            if func.endswith("read_pickle") or _is_true(keywords.get("allow_pickle")):
                found.append(f"{where}: {func} loads pickles")
            if (
                func == "yaml.load"
                and not any("Safe" in _dotted(v) for k, v in keywords.items() if k == "Loader")
                and not (len(node.args) > 1 and "Safe" in _dotted(node.args[1]))
            ):
                found.append(f"{where}: yaml.load without SafeLoader")
            if func in ("yaml.unsafe_load", "yaml.full_load"):
                found.append(f"{where}: {func}")
            if _is_true(keywords.get("trust_remote_code")):
                found.append(f"{where}: trust_remote_code=True hard-coded")
            if (
                func.endswith("add_argument")
                and any(isinstance(a, ast.Constant) and "trust-remote-code" in str(a.value) for a in node.args)
                and _is_true(keywords.get("default"))
            ):
                found.append(f"{where}: --trust-remote-code on by default")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for module in modules:
                if module.split(".")[0] in PICKLE_MODULES:
                    found.append(f"{where}: imports {module}")
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "trust_remote_code" and _is_true(value):
                    found.append(f"{where}: trust_remote_code=True hard-coded")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_dotted(t).split(".")[-1] == "trust_remote_code" for t in targets) and _is_true(node.value):
                found.append(f"{where}: trust_remote_code defaults to True")
    return found


def test_no_unsafe_loading_in_the_package_examples_or_benchmarks():
    files = list(_python_files())
    assert len(files) > 20 and any(name.startswith("examples/") for name, _ in files)
    found = [problem for name, source in files for problem in unsafe_loading(name, source)]
    assert not found, "\n".join(found)


def test_the_scan_finds_each_unsafe_pattern():
    bad = (
        "import pickle\nimport torch, yaml\nfrom dill import loads\n"
        "a = torch.load('x.pt')\nb = torch.load('x.pt', weights_only=False)\nc = pickle.loads(blob)\n"
        "d = yaml.load(text)\ne = AutoModel.from_pretrained(name, trust_remote_code=True)\n"
        "f = {'trust_remote_code': True}\ntrust_remote_code: bool = True\ng = np.load('a.npy', allow_pickle=True)\n"
        "parser.add_argument('--trust-remote-code', action='store_true', default=True)\n"
    )
    found = unsafe_loading("bad.py", bad)
    lines = sorted(int(problem.split(":")[1]) for problem in found)
    assert lines == [1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], found  # one finding per unsafe line, none on line 2
    good = (
        "import torch, yaml\na = torch.load('x.pt', weights_only=True, map_location='cpu')\nb = yaml.safe_load(t)\n"
        "c = yaml.load(t, Loader=yaml.SafeLoader)\nd = load_causal_lm(name, trust_remote_code=config.trust_remote_code)\n"
        "trust_remote_code: bool = False\n"
    )
    assert unsafe_loading("good.py", good) == []


def test_checkpoints_are_safetensors_and_the_optimizer_state_loads_without_pickle_code(tmp_path):
    from safetensors.torch import load_file

    train_preference(
        _model(),
        DPO,
        _pairs(),
        TrainConfig(steps=2, batch_size=4, device="cpu", checkpoint_dir=str(tmp_path), checkpoint_every=1),
    )
    checkpoints = sorted(p for p in tmp_path.iterdir())
    assert [p.name for p in checkpoints] == ["step-000001", "step-000002"]
    for checkpoint in checkpoints:
        files = {p.name for p in checkpoint.iterdir()}
        assert "model.safetensors" in files
        tensors = {name for name in files if name.endswith(".safetensors")}
        # everything else: JSON, and the optimizer state that torch.load reads with weights_only=True
        assert files - tensors <= {"trainer_state.json", "optimizer.pt"}, files
        for name in tensors:
            load_file(str(checkpoint / name))
        json.loads((checkpoint / "trainer_state.json").read_text())
        torch.load(checkpoint / "optimizer.pt", weights_only=True)


class _Payload:
    ran: list[str] = []

    def __reduce__(self):
        return (_Payload.ran.append, ("the payload ran",))


def test_a_checkpoint_with_a_pickle_payload_is_refused_without_running_it(tmp_path):
    train_preference(
        _model(), DPO, _pairs(), TrainConfig(steps=1, batch_size=4, device="cpu", checkpoint_dir=str(tmp_path))
    )
    torch.save({"state": {}, "param_groups": [], "extra": _Payload()}, tmp_path / "step-000001" / "optimizer.pt")
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        train_preference(
            _model(), DPO, _pairs(), TrainConfig(steps=2, batch_size=4, device="cpu", checkpoint_dir=str(tmp_path))
        )
    assert _Payload.ran == []


def test_saved_models_are_safetensors(tmp_path):
    from dpo_ref.models import save_pretrained

    save_pretrained(_model(), None, tmp_path / "model")
    names = {p.name for p in (tmp_path / "model").iterdir()}
    assert "model.safetensors" in names and not {n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))}, names
