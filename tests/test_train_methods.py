"""Every offline method of the registry, end to end through ``dpo-ref train``.

For each method in :data:`dpo_ref.methods.OFFLINE_METHODS` the command runs a few steps
on the tiny model, with every hyperparameter of the method set to a value that is not
its default. A spy on the method's loss function checks that those values reached the
loss (cDPO's label smoothing, SimPO's gamma, ORPO's lambda, KTO's weights, ...), a spy
on the reference pass that it used the method's reduction (IPO: the per-token mean), and
the files the command promises (``method.json``, ``history.json``) are read back.
"""

from __future__ import annotations

import importlib
import json
import math

import pytest
import torch

from dpo_ref import cli
from dpo_ref.methods import METHODS, OFFLINE_METHODS
from dpo_ref.models import toy_preference_pairs

STEPS = 3

# A valid value other than the paper default for each hyperparameter name of the registry.
NON_DEFAULT = {
    "beta": 0.3,
    "label_smoothing": 0.2,
    "gamma": 0.7,
    "lam": 0.3,
    "desirable_weight": 1.25,
    "undesirable_weight": 0.75,
    "alpha": 0.6,
}

# Where each method's objective looks its loss up when it runs (module, attribute), and
# the keywords that call must carry besides the method's hyperparameters.
LOSS_SITES = {
    "dpo": ("dpo_ref.losses", "dpo_loss", {}),
    "cdpo": ("dpo_ref.losses", "dpo_loss", {}),
    "robust-dpo": ("dpo_ref.losses", "robust_dpo_loss", {}),
    "dpop": ("dpo_ref.losses", "dpop_loss", {}),
    "ipo": ("dpo_ref.losses", "ipo_loss", {}),
    "hinge": ("dpo_ref.losses", "hinge_loss", {}),
    "kto": ("dpo_ref.train.objectives", "kto_loss", {}),
    "orpo": ("dpo_ref.losses", "orpo_loss", {}),
    "simpo": ("dpo_ref.losses", "simpo_loss", {}),
    "unlikelihood": ("dpo_ref.train.objectives", "unlikelihood_loss", {}),
    "preferred-ft": ("dpo_ref.train.objectives", "sequence_logps", {"reduction": "mean"}),  # SFT's per-token NLL
}


# IPO's log-ratios are per-token means, as TRL computes them; every other method with a
# reference sums over the completion tokens (the project's convention).
MEAN_REFERENCE_PASS = {"ipo"}


def test_every_offline_method_has_a_loss_site():
    assert set(LOSS_SITES) == set(OFFLINE_METHODS)
    assert {h.name for name in OFFLINE_METHODS for h in METHODS[name].hyperparameters} <= set(NON_DEFAULT)


def _spy(monkeypatch, module_name: str, attribute: str) -> list[tuple[tuple, dict]]:
    """Replace ``module.attribute`` by a wrapper that records each call's arguments."""
    module = importlib.import_module(module_name)
    real = getattr(module, attribute)
    calls: list[tuple[tuple, dict]] = []

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, attribute, spy)
    return calls


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("methods") / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in toy_preference_pairs(8)))
    return path


@pytest.mark.parametrize("name", OFFLINE_METHODS)
def test_train_cli_runs_the_method_with_its_own_hyperparameters(name, pairs_file, tmp_path, monkeypatch, capsys):
    method = METHODS[name]
    params = {h.name: NON_DEFAULT[h.name] for h in method.hyperparameters}
    assert all(params[h.name] != h.default for h in method.hyperparameters)
    module, attribute, fixed = LOSS_SITES[name]
    loss_calls = _spy(monkeypatch, module, attribute)
    reference_passes = _spy(monkeypatch, "dpo_ref.train.objectives", "precompute_reference_logps")

    out = tmp_path / "out"
    flags = [word for key, value in params.items() for word in ("--" + key.replace("_", "-"), str(value))]
    code = cli.main(
        [
            "train",
            "--data",
            str(pairs_file),
            "--method",
            name,
            *flags,
            "--steps",
            str(STEPS),
            "--batch-size",
            "4",
            "--max-length",
            "32",
            "--device",
            "cpu",
            "--output-dir",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err

    # the hyperparameters reached the loss, on every call
    assert len(loss_calls) >= STEPS
    for _, kwargs in loss_calls:
        assert kwargs == {**params, **fixed}
    # a method that compares against the reference runs its reference pass once, with its reduction;
    # at step 0 the policy is the reference, so the policy's log-probs (same reduction) equal them
    if method.data == "pairs" and method.needs_reference:
        expected = "mean" if name in MEAN_REFERENCE_PASS else "sum"
        assert [kwargs["reduction"] for _, kwargs in reference_passes] == [expected]
        policy_chosen, policy_rejected, reference_chosen, reference_rejected = loss_calls[0][0]
        torch.testing.assert_close(policy_chosen.detach(), reference_chosen, rtol=0, atol=1e-5)
        torch.testing.assert_close(policy_rejected.detach(), reference_rejected, rtol=0, atol=1e-5)
    elif method.data == "unpaired":  # KTO: one pass over its rows and their mismatched partners, summed
        assert len(reference_passes) == 1 and reference_passes[0][1].get("reduction", "sum") == "sum"
        policy_logps, reference_logps = loss_calls[0][0][:2]
        torch.testing.assert_close(policy_logps.detach(), reference_logps, rtol=0, atol=1e-5)
    else:
        assert reference_passes == []

    assert json.loads((out / "method.json").read_text()) == {"method": name, "params": params}
    history = json.loads((out / "history.json").read_text())
    assert [row["step"] for row in history] == list(range(1, STEPS + 1))
    assert all(math.isfinite(row["loss"]) for row in history)
    assert (out / "model.safetensors").is_file()
