"""Trainer inputs checked up front: every TrainConfig and PPOConfig field, TensorBatches, checkpoints
that cannot be loaded, and which objective errors count as divergence (ARCHITECTURE.md, "Invariants").

tests/test_reliability.py holds the end-to-end cases (a bad config fails before the first
update, a corrupt checkpoint, inf logits); this file pins each message.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from toy_pairs import V, random_pairs

from dpo_ref.errors import NonFiniteError, UserError
from dpo_ref.losses import dpo_loss
from dpo_ref.models import tiny_gpt2
from dpo_ref.train import (
    NonFiniteLossError,
    PairwiseObjective,
    PPOConfig,
    TensorBatches,
    TrainConfig,
    Trainer,
    train_preference,
)


def _model(n_embd: int = 16):
    return tiny_gpt2(V, n_layer=1, n_embd=n_embd, n_head=2, n_positions=16, seed=0)


def _pairs(n: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    return random_pairs(n, seed)


DPO = PairwiseObjective(functools.partial(dpo_loss, beta=0.1), beta=0.1)


# --------------------------------------------------------------------------- TrainConfig

BAD_TRAIN = [
    ("steps", 0, "an integer >= 1"),
    ("steps", 2.5, "an integer >= 1"),
    ("steps", True, "an integer >= 1"),
    ("batch_size", 0, "an integer >= 1"),
    ("learning_rate", 0.0, "a finite learning rate > 0"),
    ("learning_rate", math.inf, "a finite learning rate > 0"),
    ("learning_rate", "1e-3", "a finite learning rate > 0"),
    ("optimizer", "sgd", "'adamw' or 'rmsprop'"),
    ("weight_decay", -0.1, "a finite number >= 0"),
    ("warmup_steps", -1, "an integer >= 0"),
    ("max_grad_norm", 0.0, "None (no clipping) or a finite number > 0"),
    ("max_grad_norm", math.nan, "None (no clipping) or a finite number > 0"),
    ("seed", 1.5, "an integer"),
    ("device", "gpu", "'auto', 'cpu' or 'cuda'"),
    ("checkpoint_dir", "", "None or a folder path"),
    ("checkpoint_every", -1, "an integer >= 0"),
    ("keep_checkpoints", 0, "an integer >= 1"),
    ("log_every", 0, "an integer >= 1"),
    ("eval_every", -2, "an integer >= 0"),
]


@pytest.mark.parametrize("field, value, wanted", BAD_TRAIN, ids=[f"{f}={v!r}" for f, v, _ in BAD_TRAIN])
def test_each_train_config_field_is_checked(field, value, wanted):
    with pytest.raises(UserError) as error:
        TrainConfig(**{field: value})
    assert str(error.value) == f"TrainConfig.{field} must be {wanted}, got {value!r}"


def test_good_train_config_values_pass_and_are_normalised(tmp_path):
    cfg = TrainConfig(
        steps=np.int64(3), max_grad_norm=None, device=torch.device("cpu"), checkpoint_dir=tmp_path, seed=-7
    )
    assert type(cfg.steps) is int and cfg.device == "cpu" and cfg.checkpoint_dir == str(tmp_path)
    TrainConfig(device="cuda:1", learning_rate=1, weight_decay=0)  # no CUDA needed to build the config


def test_a_config_with_a_path_and_numpy_ints_checkpoints(tmp_path):
    cfg = TrainConfig(steps=np.int64(1), batch_size=4, device="cpu", checkpoint_dir=tmp_path)
    result = train_preference(_model(), DPO, _pairs(), cfg)
    assert result.checkpoint == str(tmp_path / "step-000001")


# --------------------------------------------------------------------------- PPOConfig

BAD_PPO = [
    ("kl_coef", -0.1, "a finite number >= 0"),
    ("rollout_batch_size", 0, "an integer >= 1"),
    ("ppo_epochs", 0, "an integer >= 1"),
    ("minibatch_size", 0, "an integer >= 1"),
    ("clip_range", 0.0, "a finite number > 0"),
    ("clip_range_value", -1.0, "a finite number > 0"),
    ("vf_coef", math.nan, "a finite number >= 0"),
    ("gamma", 1.5, "a number in [0, 1]"),
    ("lam", -0.1, "a number in [0, 1]"),
    ("temperature", 0.0, "a finite number > 0"),
    ("max_new_tokens", 0, "an integer >= 1"),
    ("eos_token_id", -1, "None or a token id >= 0"),
    ("whiten_advantages", 1, "True or False"),
]


@pytest.mark.parametrize("field, value, wanted", BAD_PPO, ids=[f"{f}={v!r}" for f, v, _ in BAD_PPO])
def test_each_ppo_config_field_is_checked(field, value, wanted):
    with pytest.raises(UserError) as error:
        PPOConfig(**{field: value})
    assert str(error.value) == f"PPOConfig.{field} must be {wanted}, got {value!r}"


def test_ppo_minibatch_must_divide_the_rollout_when_built():
    with pytest.raises(UserError, match=r"^PPOConfig\.minibatch_size \(24\) must divide rollout_batch_size \(64\)$"):
        PPOConfig(rollout_batch_size=64, minibatch_size=24)
    assert PPOConfig(kl_coef=0.0, eos_token_id=0, rollout_batch_size=8, minibatch_size=8).updates_per_rollout() == 4


# --------------------------------------------------------------------------- TensorBatches


def test_tensor_batches_without_columns_or_with_batch_size_0():
    with pytest.raises(UserError, match=r"^TensorBatches got an empty dict: data must map column names to tensors"):
        TensorBatches({}, 4)
    with pytest.raises(UserError, match=r"^batch_size must be an integer >= 1, got 0$"):
        TensorBatches(_pairs(), 0)


# --------------------------------------------------------------------------- divergence inside the objective


def _nan_reference_from_step_2(model, batch, calls=None):
    calls = calls if calls is not None else []
    calls.append(1)
    if len(calls) > 2:
        batch = {**batch, "reference_chosen_logps": torch.full_like(batch["reference_chosen_logps"], math.nan)}
    return DPO(model, batch)


def test_nan_inputs_to_the_loss_stop_training_at_their_step(tmp_path):
    """Outside debug mode the loss does not read its inputs' values; the NaN they carry reaches
    the loss, and the trainer's one check per step stops there."""
    objective = functools.partial(_nan_reference_from_step_2, calls=[])
    cfg = TrainConfig(steps=4, batch_size=4, device="cpu", checkpoint_dir=str(tmp_path), checkpoint_every=1)
    with pytest.raises(NonFiniteLossError) as error:
        Trainer(_model(), objective, TensorBatches(_pairs(), 4), cfg).fit()
    assert str(error.value).startswith(
        "training stopped at step 2: loss is nan. "
        f"The model was not updated; last good checkpoint: {tmp_path / 'step-000002'}. "
    )


def test_in_debug_mode_the_loss_names_the_non_finite_input(tmp_path):
    objective = functools.partial(_nan_reference_from_step_2, calls=[])
    cfg = TrainConfig(steps=4, batch_size=4, device="cpu", checkpoint_dir=str(tmp_path), checkpoint_every=1)
    with torch.autograd.set_detect_anomaly(True), pytest.raises(NonFiniteLossError) as error:
        Trainer(_model(), objective, TensorBatches(_pairs(), 4), cfg).fit()
    assert str(error.value).startswith(
        "training stopped at step 2: the loss got non-finite inputs "
        "(reference_chosen_logps contains NaN (rows [0, 1, 2, 3])). "
        f"The model was not updated; last good checkpoint: {tmp_path / 'step-000002'}. "
    )
    assert isinstance(error.value.__context__, NonFiniteError)


def test_divergence_is_told_by_the_errors_type_not_its_words():
    """A NonFiniteError with any message is divergence; a ValueError that says "contains NaN" is not."""

    def raising(error):
        def objective(model, batch):
            raise error

        return objective

    cfg = TrainConfig(steps=2, batch_size=4, device="cpu")
    with pytest.raises(NonFiniteLossError, match=r"^training stopped at step 0: the loss got non-finite inputs \(x\)"):
        Trainer(_model(), raising(NonFiniteError("x")), TensorBatches(_pairs(), 4), cfg).fit()
    with pytest.raises(ValueError, match=r"^y contains NaN$") as error:
        Trainer(_model(), raising(ValueError("y contains NaN")), TensorBatches(_pairs(), 4), cfg).fit()
    assert not isinstance(error.value, FloatingPointError)


def test_training_rows_are_checked_once_when_the_batches_are_built():
    """A row whose labels score nothing, or a non-finite precomputed log-prob, fails before any step."""
    pairs = _pairs()
    pairs["rejected_labels"][3, :] = -100
    with pytest.raises(UserError, match=r"^rows \[3\] have no completion token after masking in rejected_labels"):
        TensorBatches(pairs, 4)
    pairs = _pairs()
    pairs["chosen_labels"][5, 1:] = -100  # only position 0 keeps a label, and nothing predicts it
    with pytest.raises(UserError, match=r"^rows \[5\] have no completion token after masking in chosen_labels"):
        TensorBatches(pairs, 4)
    pairs = _pairs()
    pairs["reference_rejected_logps"][6] = -math.inf
    with pytest.raises(NonFiniteError, match=r"^reference_rejected_logps contains inf \(rows \[6\]\)$"):
        TensorBatches(pairs, 4)


def test_other_value_errors_from_the_objective_are_not_divergence():
    def bad_beta(model, batch):
        return PairwiseObjective(functools.partial(dpo_loss, beta=math.nan), beta=0.1)(model, batch)

    cfg = TrainConfig(steps=2, batch_size=4, device="cpu")
    with pytest.raises(ValueError, match=r"^beta must be a positive number, got nan$") as error:
        Trainer(_model(), bad_beta, TensorBatches(_pairs(), 4), cfg).fit()
    assert not isinstance(error.value, NonFiniteLossError)


# --------------------------------------------------------------------------- checkpoints that cannot be loaded


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    train_preference(
        _model(), DPO, _pairs(), TrainConfig(steps=1, batch_size=4, device="cpu", checkpoint_dir=str(tmp_path))
    )
    return tmp_path / "step-000001"


ADVICE = "delete this checkpoint folder to resume from the one before, or use another checkpoint_dir"


def _resume(folder: Path, model=None):
    cfg = TrainConfig(steps=2, batch_size=4, device="cpu", checkpoint_dir=str(folder))
    return train_preference(model or _model(), DPO, _pairs(), cfg)


def test_corrupt_model_file(checkpoint):
    file = checkpoint / "model.safetensors"
    file.write_bytes(file.read_bytes()[:64])  # a copy cut short
    with pytest.raises(UserError) as error:
        _resume(checkpoint.parent)
    assert str(error.value) == (
        f"checkpoint {checkpoint}: model.safetensors cannot be loaded "
        f"(SafetensorError: Error while deserializing header: invalid header length); {ADVICE}"
    )


def test_a_different_model_names_the_first_mismatch(checkpoint):
    with pytest.raises(UserError) as error:
        _resume(checkpoint.parent, _model(n_embd=8))
    message = str(error.value)
    assert message.startswith(
        f"checkpoint {checkpoint}: model.safetensors cannot be loaded (RuntimeError: Error(s) "
        "in loading state_dict for GPT2LMHeadModel: size mismatch for "
    )
    assert message.endswith(f"); {ADVICE}") and "\n" not in message


@pytest.mark.parametrize(
    "name, contents",
    [
        ("trainer_state.json", "{"),
        ("trainer_state.json", "{}"),
        ("rng.safetensors", "not safetensors"),
        ("optimizer.pt", "junk"),
    ],
)
def test_each_unreadable_file_is_named(checkpoint, name, contents):
    (checkpoint / name).write_text(contents)
    with pytest.raises(UserError, match=rf"^checkpoint .*step-000001: {name} cannot be loaded \(.+\); delete"):
        _resume(checkpoint.parent)


def test_a_missing_file_is_named_with_its_path(checkpoint):
    (checkpoint / "rng.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=rf"^checkpoint file {checkpoint / 'rng.safetensors'} is missing; "):
        _resume(checkpoint.parent)
