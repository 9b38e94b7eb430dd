"""dpo_ref agrees with TRL 1.x on every loss both implement, to 1e-6.

Each TRL trainer is built once per module on a tiny GPT-2 made in memory. Its own
collator tokenizes and pads a batch; TRL's `compute_loss` runs on it, and dpo_ref
computes the same loss from the same tokens and the same model objects with
`dpo_ref.logps` and `dpo_ref.losses`. The policy is the reference plus weight noise, so
margins are nonzero and a sign or scale error cannot hide at zero.

Where TRL 1.x departs from the original DPO code (conservative DPO), the test pins
the original's formula instead and records TRL's behaviour.
"""

import copy
import math

import pytest
import torch

# TRL is a test dependency (the `test` extra): a missing TRL is a failed import here,
# never a silent skip of the strongest tests of the suite.
from datasets import Dataset
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer
from trl.experimental.cpo import CPOConfig, CPOTrainer
from trl.experimental.orpo import ORPOConfig, ORPOTrainer

from dpo_ref import losses as L
from dpo_ref.logps import IGNORE_INDEX, concatenated_logps, sequence_logps
from dpo_ref.models import tiny_bpe_tokenizer, tiny_gpt2, toy_preference_pairs

pytestmark = [
    pytest.mark.slow,
    # transformers 5 deprecation notices raised inside TRL, not by this code
    pytest.mark.filterwarnings("ignore:`gradient_checkpointing` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"),
]

BATCH = 8
TOL = {"rel": 1e-6, "abs": 1e-6}
PAIR_METRICS = (
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "rewards/accuracies",
    "logps/chosen",
    "logps/rejected",
)


# --------------------------------------------------------------------------- shared fixtures


@pytest.fixture(scope="module")
def pairs():
    return toy_preference_pairs(BATCH, seed=0)


@pytest.fixture(scope="module")
def tokenizer(pairs):
    texts = [p["prompt"] + p["chosen"] for p in pairs] + [p["prompt"] + p["rejected"] for p in pairs]
    return tiny_bpe_tokenizer(texts, vocab_size=320)


@pytest.fixture(scope="module")
def reference(tokenizer):
    return tiny_gpt2(
        len(tokenizer),
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        seed=0,
    )


@pytest.fixture(scope="module")
def policy(reference):
    """The reference plus N(0, 0.05^2) noise on every weight: margins of a few hundredths of a nat per beta."""
    policy = copy.deepcopy(reference)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return policy


def trainer_args(config_class, tmp_path_factory, **kwargs):
    return config_class(
        output_dir=str(tmp_path_factory.mktemp("trl")),
        report_to="none",
        use_cpu=True,
        bf16=False,
        per_device_train_batch_size=BATCH,
        **kwargs,
    )


def last_logged(metrics):
    """The values TRL logged for the latest `compute_loss` call."""
    return {key: values[-1] for key, values in metrics["train"].items()}


def dpo_ref_batch(trl_batch):
    """TRL 1.x stacks [chosen; rejected] rows with a completion mask; dpo_ref wants chosen_/rejected_ keys
    with labels -100 on prompt and padding."""
    labels = trl_batch["input_ids"].masked_fill(trl_batch["completion_mask"] == 0, IGNORE_INDEX)
    n = trl_batch["input_ids"].shape[0] // 2
    batch = {}
    for side, rows in (("chosen", slice(0, n)), ("rejected", slice(n, None))):
        batch[f"{side}_input_ids"] = trl_batch["input_ids"][rows]
        batch[f"{side}_attention_mask"] = trl_batch["attention_mask"][rows]
        batch[f"{side}_labels"] = labels[rows]
    return batch


def assert_metrics_match(trl_logged, expected):
    for key, value in expected.items():
        assert trl_logged[key] == pytest.approx(value, **TOL), key


# --------------------------------------------------------------------------- DPO: sigmoid, robust, hinge, IPO

# name -> (DPOConfig kwargs, tokenizer pad == eos?)
DPO_CASES = {
    "sigmoid": ({"loss_type": ["sigmoid"], "beta": 0.1}, False),
    "sigmoid-pad-is-eos": ({"loss_type": ["sigmoid"], "beta": 0.1}, True),
    "robust": ({"loss_type": ["robust"], "beta": 0.1, "label_smoothing": 0.2}, False),
    "hinge": ({"loss_type": ["hinge"], "beta": 5.0}, False),
    "ipo": ({"loss_type": ["ipo"], "beta": 0.1}, False),
}


def build_dpo_trainer(policy, reference, tokenizer, pairs, tmp_path_factory, pad_is_eos=False, **config):
    tokenizer = copy.deepcopy(tokenizer)  # trainers set the pad token on the tokenizer they get
    if pad_is_eos:
        tokenizer.pad_token = tokenizer.eos_token
    trainer = DPOTrainer(
        model=copy.deepcopy(policy),
        ref_model=copy.deepcopy(reference),
        args=trainer_args(DPOConfig, tmp_path_factory, max_length=None, **config),
        train_dataset=Dataset.from_list(pairs),
        processing_class=tokenizer,
    )
    columns = ("prompt_ids", "chosen_ids", "rejected_ids")
    rows = [{c: trainer.train_dataset[i][c] for c in columns} for i in range(BATCH)]
    return trainer, trainer.data_collator(rows)


@pytest.fixture(scope="module")
def run_dpo(policy, reference, tokenizer, pairs, tmp_path_factory):
    """name -> (config, trainer, batch, TRL loss, TRL logged metrics); each trainer built once per module."""
    runs = {}

    def run(name):
        if name not in runs:
            config, pad_is_eos = DPO_CASES[name]
            trainer, batch = build_dpo_trainer(
                policy, reference, tokenizer, pairs, tmp_path_factory, pad_is_eos, **config
            )
            trainer.model.train()
            loss = trainer.compute_loss(trainer.model, batch).item()
            runs[name] = (config, trainer, batch, loss, last_logged(trainer._metrics))
        return runs[name]

    return run


def dpo_ref_logps(trainer, batch, reduction="sum"):
    """(policy_chosen, policy_rejected, reference_chosen, reference_rejected) from the trainer's own models."""
    pair_batch = dpo_ref_batch(batch)
    with torch.no_grad():
        return (
            *concatenated_logps(trainer.model, pair_batch, reduction=reduction),
            *concatenated_logps(trainer.ref_model, pair_batch, reduction=reduction),
        )


@pytest.mark.parametrize("name", list(DPO_CASES))
def test_dpo_losses_match_trl(run_dpo, name):
    config, trainer, batch, trl_loss, _ = run_dpo(name)
    beta = config["beta"]
    if name == "ipo":
        # TRL divides each log-ratio by its completion length: per-token mean log-probs.
        loss = L.ipo_loss(*dpo_ref_logps(trainer, batch, reduction="mean"), beta=beta)
    elif name == "robust":
        loss = L.robust_dpo_loss(*dpo_ref_logps(trainer, batch), beta=beta, label_smoothing=config["label_smoothing"])
    elif name == "hinge":
        loss = L.hinge_loss(*dpo_ref_logps(trainer, batch), beta=beta)
    else:
        loss = L.dpo_loss(*dpo_ref_logps(trainer, batch), beta=beta)
    assert trl_loss == pytest.approx(loss.mean().item(), **TOL)
    assert abs(trl_loss - math.log(2)) > 1e-3 or name == "hinge"  # the batch is not at the trivial point


@pytest.mark.parametrize("name", list(DPO_CASES))
def test_dpo_metrics_match_trl(run_dpo, name):
    config, trainer, batch, _, logged = run_dpo(name)
    # Every loss type logs rewards from summed log-probs, IPO included.
    expected = L.preference_metrics(*dpo_ref_logps(trainer, batch), beta=config["beta"])
    assert set(PAIR_METRICS) <= set(logged)
    assert_metrics_match(logged, expected)
    assert expected["rewards/margins"] != 0.0


def test_pad_is_eos_batch_scores_the_final_eos(run_dpo):
    _, trainer, batch, _, _ = run_dpo("sigmoid-pad-is-eos")
    eos = trainer.processing_class.eos_token_id
    assert trainer.processing_class.pad_token_id == eos
    pair_batch = dpo_ref_batch(batch)
    for side in ("chosen", "rejected"):
        labels = pair_batch[f"{side}_labels"]
        last = (labels != IGNORE_INDEX).long().cumsum(-1).argmax(-1)  # last completion position
        assert bool((labels.gather(1, last[:, None]) == eos).all())  # ... is the EOS, and it is scored
        assert bool((pair_batch[f"{side}_input_ids"] == eos).sum(-1).gt(1).any())  # and padding shares its id


def test_step_zero_is_ln2_with_zero_rewards_in_trl(reference, tokenizer, pairs, tmp_path_factory):
    trainer, batch = build_dpo_trainer(
        reference, reference, tokenizer, pairs, tmp_path_factory, loss_type=["sigmoid"], beta=0.1
    )
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch).item()
    logged = last_logged(trainer._metrics)
    assert loss == pytest.approx(math.log(2), abs=1e-7)
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
        assert logged[key] == 0.0, key  # accuracy counts strictly higher rewards only
    ours = L.dpo_loss(*dpo_ref_logps(trainer, batch), beta=0.1)
    torch.testing.assert_close(ours, torch.full_like(ours, math.log(2)), rtol=0, atol=1e-7)


# --------------------------------------------------------------------------- conservative DPO: the original code


def original_preference_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta, eps):
    """The DPO loss as eric-mitchell/direct-preference-optimization's trainers.py `preference_loss` defines it
    (non-IPO branch; eq. 3 of the cDPO note, eq. 7 of the DPO paper at eps = 0), written out here:

        logits = (pi_w - pi_l) - (ref_w - ref_l)
        loss = -(1 - eps) log sigma(beta logits) - eps log sigma(-beta logits)
    """
    logits = (policy_chosen - policy_rejected) - (reference_chosen - reference_rejected)
    return -(1 - eps) * torch.nn.functional.logsigmoid(beta * logits) - eps * torch.nn.functional.logsigmoid(
        -beta * logits
    )


@pytest.fixture(scope="module")
def sigmoid_with_label_smoothing(policy, reference, tokenizer, pairs, tmp_path_factory):
    trainer, batch = build_dpo_trainer(
        policy, reference, tokenizer, pairs, tmp_path_factory, loss_type=["sigmoid"], beta=0.1, label_smoothing=0.2
    )
    trainer.model.train()
    return trainer, batch, trainer.compute_loss(trainer.model, batch).item()


def test_conservative_dpo_matches_the_original_code(sigmoid_with_label_smoothing):
    trainer, batch, _ = sigmoid_with_label_smoothing
    logps = dpo_ref_logps(trainer, batch)
    for eps in (0.0, 0.1, 0.2, 0.4):
        ours = L.dpo_loss(*logps, beta=0.1, label_smoothing=eps)
        torch.testing.assert_close(ours, original_preference_loss(*logps, beta=0.1, eps=eps), rtol=1e-6, atol=1e-6)


def test_trl_sigmoid_ignores_label_smoothing(sigmoid_with_label_smoothing):
    """TRL 1.x's "sigmoid" is plain DPO whatever label_smoothing says; conservative DPO is dpo_ref's
    `label_smoothing`, as in the original code and TRL 0.x."""
    trainer, batch, trl_loss = sigmoid_with_label_smoothing
    logps = dpo_ref_logps(trainer, batch)
    assert trl_loss == pytest.approx(L.dpo_loss(*logps, beta=0.1).mean().item(), **TOL)
    assert trl_loss != pytest.approx(L.dpo_loss(*logps, beta=0.1, label_smoothing=0.2).mean().item(), **TOL)


def test_original_code_ipo_sums_where_trl_averages(run_dpo):
    """The original code's IPO branch uses summed log-probs; TRL averages per token. Same function, other inputs."""
    config, trainer, batch, trl_loss, _ = run_dpo("ipo")
    summed = dpo_ref_logps(trainer, batch, reduction="sum")
    h = (summed[0] - summed[1]) - (summed[2] - summed[3])
    original = (h - 1 / (2 * config["beta"])) ** 2  # trainers.py, preference_loss(ipo=True)
    torch.testing.assert_close(L.ipo_loss(*summed, beta=config["beta"]), original, rtol=1e-6, atol=1e-6)
    assert trl_loss != pytest.approx(original.mean().item(), **TOL)


# --------------------------------------------------------------------------- KTO


@pytest.fixture(scope="module")
def kto_case(policy, reference, tokenizer, pairs, tmp_path_factory):
    # Unpaired data, 5 desirable and 3 undesirable, with lambda_D != lambda_U.
    rows = [
        {"prompt": p["prompt"], "completion": p["chosen"] if i % 3 else p["rejected"], "label": bool(i % 3)}
        for i, p in enumerate(pairs)
    ]
    beta, desirable_weight, undesirable_weight = 0.1, 1.2, 0.9
    trainer = KTOTrainer(
        model=copy.deepcopy(policy),
        ref_model=copy.deepcopy(reference),
        args=trainer_args(
            KTOConfig,
            tmp_path_factory,
            beta=beta,
            desirable_weight=desirable_weight,
            undesirable_weight=undesirable_weight,
            train_sampling_strategy="sequential",
        ),
        train_dataset=Dataset.from_list(rows),
        processing_class=copy.deepcopy(tokenizer),
    )
    columns = ("prompt_ids", "completion_ids", "KL_completion_ids", "label")
    batch = trainer.data_collator([{c: trainer.train_dataset[i][c] for c in columns} for i in range(BATCH)])
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch).item()
    weights = {"desirable_weight": desirable_weight, "undesirable_weight": undesirable_weight}
    return trainer, batch, loss, last_logged(trainer._metrics), beta, weights


def test_kto_matches_trl(kto_case):
    trainer, batch, trl_loss, logged, beta, weights = kto_case

    def logps(model, prefix=""):
        labels = batch[f"{prefix}input_ids"].masked_fill(batch[f"{prefix}completion_mask"] == 0, IGNORE_INDEX)
        logits = model(input_ids=batch[f"{prefix}input_ids"], attention_mask=batch[f"{prefix}attention_mask"]).logits
        return sequence_logps(logits, labels)

    with torch.no_grad():
        policy_logps, reference_logps = logps(trainer.model), logps(trainer.ref_model)
        # z0 from mismatched pairs: TRL pairs each prompt with the previous example's completion.
        kl = L.kto_kl_estimate(logps(trainer.model, "KL_"), logps(trainer.ref_model, "KL_"))
    desirable = batch["label"]
    loss = L.kto_loss(policy_logps, reference_logps, desirable, kl, beta=beta, **weights)

    assert trl_loss == pytest.approx(loss.mean().item(), **TOL)
    rewards = L.implicit_rewards(policy_logps, reference_logps, beta=beta)
    expected = {
        "kl": kl.item(),
        "rewards/chosen": rewards[desirable].mean().item(),
        "rewards/rejected": rewards[~desirable].mean().item(),
        "rewards/margins": rewards[desirable].mean().item() - rewards[~desirable].mean().item(),
        "logps/chosen": policy_logps[desirable].mean().item(),
        "logps/rejected": policy_logps[~desirable].mean().item(),
    }
    assert_metrics_match(logged, expected)
    assert expected["kl"] > 0 and expected["rewards/margins"] != 0  # a nonzero reference point is exercised


# --------------------------------------------------------------------------- reference-free: ORPO and SimPO


def build_reference_free(trainer_class, config_class, policy, tokenizer, pairs, tmp_path_factory, **config):
    trainer = trainer_class(
        model=copy.deepcopy(policy),
        args=trainer_args(config_class, tmp_path_factory, max_length=64, **config),
        train_dataset=Dataset.from_list(pairs),
        processing_class=copy.deepcopy(tokenizer),
    )
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(BATCH)])
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch).item()
    pair_batch = {k: v for k, v in batch.items() if k.startswith(("chosen_", "rejected_"))}
    return trainer, pair_batch, loss, last_logged(trainer._stored_metrics)


def reference_free_metrics(chosen_mean_logps, rejected_mean_logps, beta):
    """TRL logs beta * mean log-prob as the reward: DPO's metrics with a reference of log-prob 0."""
    zeros = torch.zeros_like(chosen_mean_logps)
    return L.preference_metrics(chosen_mean_logps, rejected_mean_logps, zeros, zeros, beta=beta)


@pytest.fixture(scope="module")
def orpo_case(policy, tokenizer, pairs, tmp_path_factory):
    return build_reference_free(ORPOTrainer, ORPOConfig, policy, tokenizer, pairs, tmp_path_factory, beta=0.25)


def test_orpo_matches_trl(orpo_case):
    trainer, batch, trl_loss, logged = orpo_case
    lam = 0.25
    with torch.no_grad():
        chosen, rejected = concatenated_logps(trainer.model, batch, reduction="mean")
        # TRL's SFT term: token-mean NLL over prompt *and* completion of the chosen rows, pooled over the batch.
        logits = trainer.model(
            input_ids=batch["chosen_input_ids"], attention_mask=batch["chosen_attention_mask"]
        ).logits
        all_tokens = batch["chosen_input_ids"].masked_fill(batch["chosen_attention_mask"] == 0, IGNORE_INDEX)
        n_tokens = (all_tokens[:, 1:] != IGNORE_INDEX).sum()
        nll = -sequence_logps(logits, all_tokens, reduction="sum").sum() / n_tokens
    loss = L.orpo_loss(chosen, rejected, nll.expand_as(chosen), lam=lam)

    assert trl_loss == pytest.approx(loss.mean().item(), **TOL)
    assert logged["nll_loss"] == pytest.approx(nll.item(), **TOL)
    assert_metrics_match(logged, reference_free_metrics(chosen, rejected, beta=lam))


def test_orpo_sft_term_is_where_trl_differs_from_a_completion_only_nll(orpo_case):
    """A per-example, completion-only NLL (-mean log-prob of y_w) is another convention: not TRL's."""
    trainer, batch, trl_loss, _ = orpo_case
    with torch.no_grad():
        chosen, rejected = concatenated_logps(trainer.model, batch, reduction="mean")
    completion_only = L.orpo_loss(chosen, rejected, -chosen, lam=0.25).mean().item()
    assert trl_loss != pytest.approx(completion_only, **TOL)


def test_simpo_matches_trl_cpo(policy, tokenizer, pairs, tmp_path_factory):
    beta, gamma = 2.0, 1.0
    trainer, batch, trl_loss, logged = build_reference_free(
        CPOTrainer,
        CPOConfig,
        policy,
        tokenizer,
        pairs,
        tmp_path_factory,
        loss_type="simpo",
        beta=beta,
        simpo_gamma=gamma,
        cpo_alpha=0.0,  # default 1.0 adds an NLL term: pure SimPO needs 0
    )
    with torch.no_grad():
        chosen, rejected = concatenated_logps(trainer.model, batch, reduction="mean")
    loss = L.simpo_loss(chosen, rejected, beta=beta, gamma=gamma)

    assert trl_loss == pytest.approx(loss.mean().item(), **TOL)
    assert logged["nll_loss"] == 0.0
    assert_metrics_match(logged, reference_free_metrics(chosen, rejected, beta=beta))
