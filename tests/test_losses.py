"""Pin the maths of dpo_ref.losses: hand-computed values, the paper's gradient, edge cases.

Expected values are worked out with the `math` module in float64, independently of torch.
"""

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from dpo_ref import losses as L
from dpo_ref.errors import NonFiniteError
from dpo_ref.logps import concatenated_logps
from dpo_ref.models import tiny_gpt2

LN2 = math.log(2.0)


def t(*values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


def log_sigmoid(x: float) -> float:
    """log(1 / (1 + e^-x)), by hand."""
    return -math.log1p(math.exp(-x))


def pair(h_values, dtype=torch.float64):
    """Four log-prob tensors whose DPO log-ratio h equals ``h_values`` (reference log-probs nonzero)."""
    h = torch.tensor(h_values, dtype=dtype)
    reference_chosen = torch.full_like(h, -7.0)
    reference_rejected = torch.full_like(h, -5.0)
    policy_rejected = torch.full_like(h, -6.0)
    # h = (pc - rc) - (pr - rr)  =>  pc = h + rc + (pr - rr)
    policy_chosen = h + reference_chosen + (policy_rejected - reference_rejected)
    return policy_chosen, policy_rejected, reference_chosen, reference_rejected


# --------------------------------------------------------------------------- DPO family: hand values


@pytest.mark.parametrize("beta", [0.01, 0.1, 0.5, 3.0])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.3])
def test_dpo_at_zero_margin_is_ln2(beta, label_smoothing):
    # policy == reference: every log-ratio is 0, sigma(0) = 1/2, whatever beta and epsilon.
    logps = t(-3.0, -40.0, -0.5)
    loss = L.dpo_loss(logps, logps - 1, logps, logps - 1, beta=beta, label_smoothing=label_smoothing)
    torch.testing.assert_close(loss, torch.full_like(loss, LN2), rtol=0, atol=1e-12)


def test_dpo_hand_values():
    beta, h = 0.5, 2.0  # beta * h = 1
    (loss,) = L.dpo_loss(*pair([h]), beta=beta).tolist()
    assert loss == pytest.approx(math.log1p(math.exp(-1.0)), abs=1e-12)
    # Conservative DPO, eq. 3 of the cDPO note: -(1-e) log s(bh) - e log s(-bh).
    (loss,) = L.dpo_loss(*pair([h]), beta=beta, label_smoothing=0.1).tolist()
    assert loss == pytest.approx(-0.9 * log_sigmoid(1.0) - 0.1 * log_sigmoid(-1.0), abs=1e-12)
    # A wrongly ordered pair costs more than a rightly ordered one.
    right, wrong = L.dpo_loss(*pair([h, -h]), beta=beta).tolist()
    assert wrong == pytest.approx(math.log1p(math.exp(1.0)), abs=1e-12) and wrong > right


def test_robust_dpo_hand_value_and_unbiasedness():
    beta, eps = 0.5, 0.2
    (loss,) = L.robust_dpo_loss(*pair([2.0]), beta=beta, label_smoothing=eps).tolist()
    expected = (-(1 - eps) * log_sigmoid(1.0) + eps * log_sigmoid(-1.0)) / (1 - 2 * eps)
    assert loss == pytest.approx(expected, abs=1e-12)
    # Chowdhury et al.'s point: averaged over label flips at rate eps, it is the clean DPO loss.
    h = torch.linspace(-30, 30, 13, dtype=torch.float64)
    kept = L.robust_dpo_loss(*pair(h.tolist()), beta=beta, label_smoothing=eps)
    flipped = L.robust_dpo_loss(*pair((-h).tolist()), beta=beta, label_smoothing=eps)
    clean = L.dpo_loss(*pair(h.tolist()), beta=beta)
    torch.testing.assert_close((1 - eps) * kept + eps * flipped, clean, rtol=0, atol=1e-10)
    # With eps = 0 it is plain DPO.
    torch.testing.assert_close(L.robust_dpo_loss(*pair(h.tolist()), beta=beta, label_smoothing=0.0), clean)


def test_hinge_hand_values():
    beta = 0.5  # the hinge closes at h = 1/beta = 2
    loss = L.hinge_loss(*pair([0.0, 1.0, 2.0, 5.0, -1.0]), beta=beta)
    torch.testing.assert_close(loss, t(1.0, 0.5, 0.0, 0.0, 1.5), rtol=0, atol=1e-12)


@pytest.mark.parametrize("beta", [0.05, 0.1, 0.5, 2.0])
def test_ipo_at_zero_margin_is_one_over_four_beta_squared(beta):
    loss = L.ipo_loss(*pair([0.0, 0.0]), beta=beta)
    torch.testing.assert_close(loss, torch.full_like(loss, 1 / (4 * beta**2)), rtol=1e-12, atol=0)


def test_ipo_hand_values():
    beta = 0.25  # target margin 1/(2 beta) = 2
    loss = L.ipo_loss(*pair([2.0, 3.0, -1.0]), beta=beta)
    torch.testing.assert_close(loss, t(0.0, 1.0, 9.0), rtol=0, atol=1e-12)


def test_bradley_terry_hand_values():
    loss = L.bradley_terry_loss(t(2.0, 0.0, 1.0), t(1.0, 0.0, 3.0))
    expected = [math.log1p(math.exp(-1.0)), LN2, math.log1p(math.exp(2.0))]
    torch.testing.assert_close(loss, t(*expected), rtol=0, atol=1e-12)
    (with_margin,) = L.bradley_terry_loss(t(2.0), t(1.0), margin=0.5).tolist()
    assert with_margin == pytest.approx(-log_sigmoid(0.5), abs=1e-12)
    # Only the difference of the rewards matters (eq. 1).
    shifted = L.bradley_terry_loss(t(2.0, 0.0, 1.0) + 100, t(1.0, 0.0, 3.0) + 100)
    torch.testing.assert_close(shifted, loss)


def test_simpo_hand_values():
    # beta/|y| log pi(y) is beta times the mean log-prob: margin 2 * (-1 - -2) - 1 = 1.
    (loss,) = L.simpo_loss(t(-1.0), t(-2.0), beta=2.0, gamma=1.0).tolist()
    assert loss == pytest.approx(-log_sigmoid(1.0), abs=1e-12)
    # Equal rewards and no margin: ln 2; a margin gamma costs -log sigma(-gamma).
    loss = L.simpo_loss(t(-1.5, -1.5), t(-1.5, -1.5), beta=2.5, gamma=0.0)
    torch.testing.assert_close(loss, t(LN2, LN2), rtol=0, atol=1e-12)
    (loss,) = L.simpo_loss(t(-1.5), t(-1.5), beta=2.5, gamma=1.25).tolist()
    assert loss == pytest.approx(-log_sigmoid(-1.25), abs=1e-12)


# --------------------------------------------------------------------------- DPO-Positive


def dpop_by_the_paper(pc: float, pr: float, rc: float, rr: float, beta: float, lam: float) -> float:
    """Pal et al. 2024, eq. (3), written with probabilities and their ratios, in plain floats:
    -log sigma(beta (log pi(y_w)/ref(y_w) - log pi(y_l)/ref(y_l) - lam max(0, log ref(y_w)/pi(y_w))))."""
    pi_w, pi_l, ref_w, ref_l = (math.exp(v) for v in (pc, pr, rc, rr))
    argument = beta * (math.log(pi_w / ref_w) - math.log(pi_l / ref_l) - lam * max(0.0, math.log(ref_w / pi_w)))
    return math.log1p(math.exp(-argument))  # -log sigma(a) = log(1 + e^-a)


def test_dpop_hand_values():
    # The chosen completion kept its reference probability or gained: no penalty, DPO's loss.
    # h = (-3 - -4) - (-6 - -5) = 2; beta h = 0.2.
    (loss,) = L.dpop_loss(t(-3.0), t(-6.0), t(-4.0), t(-5.0), beta=0.1, lam=50.0).tolist()
    assert loss == pytest.approx(-log_sigmoid(0.2), abs=1e-12)
    # The chosen completion fell 2 nats below the reference while the rejected fell 5:
    # h = (-5 - -3) - (-9 - -4) = 3, penalty 50 * 2 = 100, argument 0.1 * (3 - 100) = -9.7.
    (loss,) = L.dpop_loss(t(-5.0), t(-9.0), t(-3.0), t(-4.0), beta=0.1, lam=50.0).tolist()
    assert loss == pytest.approx(math.log1p(math.exp(9.7)), abs=1e-12)
    # DPO calls the same pair a success: its loss is -log sigma(0.3) < ln 2.
    (dpo,) = L.dpo_loss(t(-5.0), t(-9.0), t(-3.0), t(-4.0), beta=0.1).tolist()
    assert dpo == pytest.approx(-log_sigmoid(0.3), abs=1e-12) and dpo < LN2 < loss


def test_dpop_is_the_papers_formula():
    generator = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (-torch.rand(64, generator=generator, dtype=torch.float64) * 8 for _ in range(4))
    for beta, lam in [(0.1, 50.0), (0.5, 5.0), (1.0, 0.5)]:
        got = L.dpop_loss(pc, pr, rc, rr, beta=beta, lam=lam)
        expected = [dpop_by_the_paper(*row, beta=beta, lam=lam) for row in zip(*(v.tolist() for v in (pc, pr, rc, rr)))]
        assert got.tolist() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert bool((pc < rc).any() and (pc > rc).any()), "the draws should hold both sides of the penalty's kink"


def test_dpop_without_its_penalty_is_dpo():
    pc, pr, rc, rr = t(-5.0, -1.0, -2.0), t(-9.0, -3.0, -2.5), t(-3.0, -2.0, -2.0), t(-4.0, -1.0, -2.0)
    torch.testing.assert_close(L.dpop_loss(pc, pr, rc, rr, beta=0.3, lam=0.0), L.dpo_loss(pc, pr, rc, rr, beta=0.3))


def test_dpop_gradient_on_the_chosen_log_prob_grows_by_one_plus_lambda_below_the_reference():
    """d loss / d log pi(y_w) = -sigma(-a) * beta * (1 + lam [log pi(y_w) < log ref(y_w)]), a the argument."""
    beta, lam = 0.1, 50.0
    for pc_value, below in [(-5.0, True), (-2.0, False)]:
        pc = t(pc_value).requires_grad_()
        L.dpop_loss(pc, t(-9.0), t(-3.0), t(-4.0), beta=beta, lam=lam).sum().backward()
        h = (pc_value - -3.0) - (-9.0 - -4.0)
        argument = beta * (h - lam * max(0.0, -3.0 - pc_value))
        sigma = 1 / (1 + math.exp(argument))  # sigma(-a)
        assert pc.grad.item() == pytest.approx(-sigma * beta * (1 + (lam if below else 0.0)), rel=1e-12)


# --------------------------------------------------------------------------- KTO


def test_kto_kl_estimate_by_hand():
    policy, reference = t(-10.0, -4.0, -7.0), t(-11.0, -5.0, -4.0)  # log-ratios 1, 1, -3
    z0 = L.kto_kl_estimate(policy, reference)
    assert z0.ndim == 0 and float(z0) == 0.0  # mean -1/3, clamped at 0
    policy = policy.clone().requires_grad_(True)
    z0 = L.kto_kl_estimate(policy, t(-11.0, -5.0, -8.0))  # log-ratios 1, 1, 1
    assert float(z0) == pytest.approx(1.0) and not z0.requires_grad  # no gradient through z0


def test_kto_hand_values():
    beta, kl, lam_d, lam_u = 0.1, 0.5, 1.33, 0.75
    policy = t(-10.0, -12.0, -3.0, -8.0)
    reference = t(-12.0, -11.0, -3.0, -20.0)
    desirable = torch.tensor([True, False, True, False])
    loss = L.kto_loss(
        policy, reference, desirable, torch.tensor(kl), beta=beta, desirable_weight=lam_d, undesirable_weight=lam_u
    )

    def sigmoid(x):
        return 1 / (1 + math.exp(-x))

    rho = [2.0, -1.0, 0.0, 12.0]  # log pi / pi_ref
    expected = [
        lam_d * (1 - sigmoid(beta * (rho[0] - kl))),
        lam_u * (1 - sigmoid(beta * (kl - rho[1]))),
        lam_d * (1 - sigmoid(beta * (rho[2] - kl))),
        lam_u * (1 - sigmoid(beta * (kl - rho[3]))),
    ]
    torch.testing.assert_close(loss, t(*expected), rtol=0, atol=1e-12)
    # A float reference point works like a 0-d tensor.
    torch.testing.assert_close(
        L.kto_loss(policy, reference, desirable, kl, beta=beta, desirable_weight=lam_d, undesirable_weight=lam_u),
        loss,
    )


# --------------------------------------------------------------------------- ORPO


def test_orpo_hand_values():
    chosen_mean, rejected_mean, nll, lam = -0.5, -1.5, 0.7, 0.1
    p_w, p_l = math.exp(chosen_mean), math.exp(rejected_mean)  # length-normalised probabilities
    log_odds_ratio = math.log((p_w / (1 - p_w)) / (p_l / (1 - p_l)))
    expected = nll - lam * log_sigmoid(log_odds_ratio)
    (loss,) = L.orpo_loss(t(chosen_mean), t(rejected_mean), t(nll), lam=lam).tolist()
    assert loss == pytest.approx(expected, abs=1e-6)  # ORPO computes in float32
    # lam = 0 is plain SFT; equal odds cost lam * ln 2 on top of the NLL.
    (loss,) = L.orpo_loss(t(-0.5), t(-1.5), t(0.7), lam=0.0).tolist()
    assert loss == pytest.approx(0.7, abs=1e-6)
    (loss,) = L.orpo_loss(t(-0.9), t(-0.9), t(0.2), lam=0.25).tolist()
    assert loss == pytest.approx(0.2 + 0.25 * LN2, abs=1e-6)


def test_orpo_near_certain_and_very_unlikely_completions():
    # log(1 - e^x) for x -> 0- and x -> -inf: the stable branch must not return -inf or NaN.
    loss = L.orpo_loss(t(-1e-9, -80.0, 0.0), t(-80.0, -1e-9, -1e-9), t(0.0, 0.0, 0.0), lam=1.0)
    assert bool(torch.isfinite(loss).all())
    assert float(loss[0]) < 1e-6 < float(loss[1])  # right and wrong orderings


# --------------------------------------------------------------------------- metrics


def test_implicit_rewards_and_preference_metrics_by_hand():
    beta = 0.5
    pc, pr, rc, rr = t(-10.0, -20.0), t(-12.0, -18.0), t(-11.0, -19.0), t(-11.0, -19.0)
    torch.testing.assert_close(L.implicit_rewards(pc, rc, beta=beta), t(0.5, -0.5))
    metrics = L.preference_metrics(pc, pr, rc, rr, beta=beta)
    # rewards: chosen (0.5, -0.5), rejected (-0.5, 0.5)
    assert metrics == pytest.approx(
        {
            "rewards/chosen": 0.0,
            "rewards/rejected": 0.0,
            "rewards/margins": 0.0,  # (1.0 + -1.0) / 2
            "rewards/accuracies": 0.5,
            "logps/chosen": -15.0,
            "logps/rejected": -15.0,
        }
    )


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_gradient_matches_paper_closed_form(beta):
    """d loss / d log pi(y_w) = -beta sigma(r_l - r_w) and d loss / d log pi(y_l) = +beta sigma(r_l - r_w).

    DPO paper, section 4: grad L = -beta E[sigma(r_hat(y_l) - r_hat(y_w)) (grad log pi(y_w) - grad log pi(y_l))].
    """
    gen = torch.Generator().manual_seed(0)
    pc, pr, rc, rr = (-50 * torch.rand(64, generator=gen, dtype=torch.float64) for _ in range(4))
    pc.requires_grad_(True)
    pr.requires_grad_(True)
    loss = L.dpo_loss(pc, pr, rc, rr, beta=beta)
    grad_chosen, grad_rejected = torch.autograd.grad(loss.sum(), (pc, pr))

    r_w, r_l = beta * (pc - rc).detach(), beta * (pr - rr).detach()
    weight = torch.sigmoid(r_l - r_w)  # large when the implicit reward orders the pair wrongly
    torch.testing.assert_close(grad_chosen, -beta * weight, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(grad_rejected, beta * weight, rtol=1e-12, atol=1e-15)


def test_dpo_gradient_through_model_parameters_matches_paper():
    """The same closed form on a tiny GPT-2's parameters, from per-example grad log pi(y | x)."""
    beta, vocab = 0.2, 32
    policy = tiny_gpt2(vocab, n_layer=1, n_embd=16, n_head=2, seed=0).double()
    reference = tiny_gpt2(vocab, n_layer=1, n_embd=16, n_head=2, seed=1).double()
    gen = torch.Generator().manual_seed(0)
    batch = {}
    for side, length in (("chosen", 7), ("rejected", 9)):
        ids = torch.randint(0, vocab, (3, length), generator=gen)
        labels = ids.clone()
        labels[:, :3] = -100  # 3 prompt tokens
        labels[1, -2:] = -100  # a shorter, right-padded completion
        attention = (labels != -100) | (torch.arange(length) < 3)
        batch.update({f"{side}_input_ids": ids, f"{side}_attention_mask": attention.long(), f"{side}_labels": labels})

    params = [p for p in policy.parameters() if p.requires_grad]
    policy_chosen, policy_rejected = concatenated_logps(policy, batch)
    with torch.no_grad():
        reference_chosen, reference_rejected = concatenated_logps(reference, batch)
    loss = L.dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta=beta).mean()
    autograd = torch.autograd.grad(loss, params, retain_graph=True)

    r_w = beta * (policy_chosen - reference_chosen).detach()
    r_l = beta * (policy_rejected - reference_rejected).detach()
    closed_form = [torch.zeros_like(p) for p in params]
    for i in range(3):
        grad_w = torch.autograd.grad(policy_chosen[i], params, retain_graph=True)
        grad_l = torch.autograd.grad(policy_rejected[i], params, retain_graph=True)
        for acc, g_w, g_l in zip(closed_form, grad_w, grad_l, strict=True):
            acc -= beta * torch.sigmoid(r_l[i] - r_w[i]) * (g_w - g_l) / 3  # mean over the batch
    # sequence_logps works in float32 (even for this float64 model), hence float32 tolerances.
    for a, c in zip(autograd, closed_form, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-7)


# --------------------------------------------------------------------------- low precision

EXTREME = -1e4  # a log-prob of a long, very unlikely completion


def _all_losses(pc, pr, rc, rr):
    desirable = torch.tensor([True, False, True, False])
    return {
        "dpo": L.dpo_loss(pc, pr, rc, rr, beta=0.1),
        "cdpo": L.dpo_loss(pc, pr, rc, rr, beta=0.1, label_smoothing=0.2),
        "robust": L.robust_dpo_loss(pc, pr, rc, rr, beta=0.1, label_smoothing=0.2),
        "dpop": L.dpop_loss(pc, pr, rc, rr, beta=0.1, lam=50.0),
        "hinge": L.hinge_loss(pc, pr, rc, rr, beta=0.1),
        "ipo": L.ipo_loss(pc, pr, rc, rr, beta=0.1),
        "bradley_terry": L.bradley_terry_loss(pc, pr),
        "kto": L.kto_loss(pc, rc, desirable, L.kto_kl_estimate(pr, rr), beta=0.1),
        "orpo": L.orpo_loss(pc / 100, pr / 100, -pc / 100, lam=0.1),
        "simpo": L.simpo_loss(pc / 100, pr / 100, beta=2.5, gamma=1.25),
    }


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_losses_stay_finite_in_half_precision_for_extreme_logps(dtype):
    pc = torch.tensor([EXTREME, 0.0, -1.0, EXTREME], dtype=dtype, requires_grad=True)
    pr = torch.tensor([0.0, EXTREME, EXTREME, -1.0], dtype=dtype, requires_grad=True)
    rc = torch.tensor([0.0, EXTREME, -1.0, 0.0], dtype=dtype)
    rr = torch.tensor([EXTREME, 0.0, 0.0, EXTREME], dtype=dtype)
    for name, loss in _all_losses(pc, pr, rc, rr).items():
        assert bool(torch.isfinite(loss).all()), f"{name} is not finite in {dtype}: {loss}"
        grads = torch.autograd.grad(loss.sum(), (pc, pr), allow_unused=True)
        for g in grads:
            assert g is None or bool(torch.isfinite(g).all()), f"{name} has a non-finite gradient in {dtype}"


def test_ipo_squares_in_float32_for_half_inputs():
    # |h| = 2e4: its square overflows float16 (max 65504) unless computed in float32.
    pc, pr, rc, rr = (torch.tensor([v], dtype=torch.float16) for v in (EXTREME, 0.0, 0.0, EXTREME))
    loss = L.ipo_loss(pc, pr, rc, rr, beta=0.1)
    assert loss.dtype == torch.float32
    assert float(loss) == pytest.approx((-2e4 - 5.0) ** 2, rel=1e-6)


# --------------------------------------------------------------------------- argument checks

GOOD = t(-1.0, -2.0)
YES_NO = torch.tensor([True, False])


def call_pairwise(name, *, beta=0.1, label_smoothing=0.1):
    logps = (GOOD, GOOD, GOOD, GOOD)
    if name == "dpo":
        return L.dpo_loss(*logps, beta=beta, label_smoothing=label_smoothing)
    if name == "robust":
        return L.robust_dpo_loss(*logps, beta=beta, label_smoothing=label_smoothing)
    if name == "hinge":
        return L.hinge_loss(*logps, beta=beta)
    return L.ipo_loss(*logps, beta=beta)


@pytest.mark.parametrize("name", ["dpo", "robust", "hinge", "ipo"])
@pytest.mark.parametrize("beta", [0.0, -0.1, float("nan")])
def test_pairwise_losses_reject_non_positive_beta(name, beta):
    with pytest.raises(ValueError, match="beta must be a positive number"):
        call_pairwise(name, beta=beta)


@pytest.mark.parametrize(
    "call",
    [
        lambda beta: L.kto_loss(GOOD, GOOD, YES_NO, 0.0, beta=beta),
        lambda beta: L.simpo_loss(GOOD, GOOD, beta=beta, gamma=0.5),
        lambda beta: L.implicit_rewards(GOOD, GOOD, beta=beta),
        lambda beta: L.preference_metrics(GOOD, GOOD, GOOD, GOOD, beta=beta),
    ],
    ids=["kto", "simpo", "implicit_rewards", "preference_metrics"],
)
@pytest.mark.parametrize("beta", [0.0, -1.0])
def test_other_losses_reject_non_positive_beta(call, beta):
    with pytest.raises(ValueError, match="beta must be a positive number"):
        call(beta)


@pytest.mark.parametrize("name", ["dpo", "robust"])
@pytest.mark.parametrize("label_smoothing", [-0.1, 0.5, 0.7, float("nan")])
def test_label_smoothing_must_lie_in_zero_to_half(name, label_smoothing):
    with pytest.raises(ValueError, match=r"label_smoothing must lie in \[0, 0.5\)"):
        call_pairwise(name, label_smoothing=label_smoothing)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: L.kto_loss(GOOD, GOOD, YES_NO, 0.0, beta=0.1, desirable_weight=-1), "desirable_weight"),
        (lambda: L.kto_loss(GOOD, GOOD, YES_NO, 0.0, beta=0.1, undesirable_weight=-1), "undesirable_weight"),
        (lambda: L.kto_loss(GOOD, GOOD, torch.tensor([1, 0]), 0.0, beta=0.1), "desirable must be a bool tensor"),
        (lambda: L.kto_loss(GOOD, GOOD, torch.tensor([True]), 0.0, beta=0.1), "desirable must be a bool tensor"),
        (lambda: L.kto_loss(GOOD, GOOD, YES_NO, t(0.0, 1.0), beta=0.1), "kl must be a single number"),
        (lambda: L.orpo_loss(GOOD, GOOD, GOOD, lam=-0.1), "lam must be a non-negative number"),
        (lambda: L.dpop_loss(GOOD, GOOD, GOOD, GOOD, beta=0.1, lam=-1.0), "lam must be a non-negative number"),
        (lambda: L.dpop_loss(GOOD, GOOD, GOOD, GOOD, beta=0.0, lam=50.0), "beta must be a positive number"),
        (lambda: L.simpo_loss(GOOD, GOOD, beta=2.0, gamma=-1.0), "gamma must be a non-negative number"),
    ],
    ids=[
        "desirable_weight",
        "undesirable_weight",
        "desirable_dtype",
        "desirable_shape",
        "kl_shape",
        "lam",
        "dpop_lam",
        "dpop_beta",
        "gamma",
    ],
)
def test_hyperparameter_checks_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


PAIR_NAMES = ["policy_chosen_logps", "policy_rejected_logps", "reference_chosen_logps", "reference_rejected_logps"]


@pytest.mark.parametrize("position, name", list(enumerate(PAIR_NAMES)))
def test_pairwise_inputs_are_checked_by_name(position, name):
    def call_with(bad):
        args = [GOOD] * 4
        args[position] = bad
        return L.dpo_loss(*args, beta=0.1)

    with (
        torch.autograd.set_detect_anomaly(True),
        pytest.raises(NonFiniteError, match=rf"^{name} contains NaN \(rows \[1\]\)$"),
    ):
        call_with(t(-1.0, float("nan")))
    with (
        torch.autograd.set_detect_anomaly(True),
        pytest.raises(NonFiniteError, match=rf"^{name} contains inf \(rows \[0\]\)$"),
    ):
        call_with(t(-float("inf"), -1.0))
    with pytest.raises(ValueError, match=f"{name} must be 1-D"):
        call_with(t(-1.0, -2.0).reshape(2, 1))
    with pytest.raises(ValueError, match=f"{name} must be 1-D"):
        call_with(torch.tensor(-1.0, dtype=torch.float64))
    with pytest.raises(ValueError, match=f"{name} must be a torch.Tensor"):
        call_with([-1.0, -2.0])
    if position > 0:  # shapes are compared with the first argument
        with pytest.raises(ValueError, match=f"{name} has shape \\(3,\\) but policy_chosen_logps has \\(2,\\)"):
            call_with(t(-1.0, -2.0, -3.0))


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda bad: L.bradley_terry_loss(GOOD, bad), "rejected_rewards"),
        (lambda bad: L.kto_loss(GOOD, bad, YES_NO, 0.0, beta=0.1), "reference_logps"),
        (lambda bad: L.kto_kl_estimate(GOOD, bad), "reference_mismatched_logps"),
        (lambda bad: L.orpo_loss(GOOD, GOOD, bad, lam=0.1), "chosen_nll"),
        (lambda bad: L.simpo_loss(GOOD, bad, beta=2.0, gamma=0.5), "policy_rejected_mean_logps"),
        (lambda bad: L.implicit_rewards(GOOD, bad, beta=0.1), "reference_logps"),
    ],
    ids=["bradley_terry", "kto", "kto_kl_estimate", "orpo", "simpo", "implicit_rewards"],
)
def test_every_loss_checks_its_tensors(call, name):
    with torch.autograd.set_detect_anomaly(True), pytest.raises(NonFiniteError, match=f"{name} contains NaN"):
        call(t(-1.0, float("nan")))
    with torch.autograd.set_detect_anomaly(True), pytest.raises(NonFiniteError, match=f"{name} contains inf"):
        call(t(-1.0, float("inf")))
    with pytest.raises(ValueError, match=f"{name} must be 1-D"):
        call(t(-1.0, -2.0).reshape(1, 2))
    with pytest.raises(ValueError, match=f"{name} has shape"):
        call(t(-1.0, -2.0, -3.0))


# --------------------------------------------------------------------------- no host synchronisation


class HostReads(TorchDispatchMode):
    """Counts the reads of a tensor's value back to the host (``bool(t)``, ``t.item()``):
    on a GPU each one waits for every queued kernel, so a loss called every step must not."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func is torch.ops.aten._local_scalar_dense.default
        return func(*args, **(kwargs or {}))


LOSS_CALLS = {
    "bradley_terry": lambda: L.bradley_terry_loss(GOOD, GOOD),
    "dpo": lambda: L.dpo_loss(GOOD, GOOD, GOOD, GOOD, beta=0.1),
    "robust_dpo": lambda: L.robust_dpo_loss(GOOD, GOOD, GOOD, GOOD, beta=0.1, label_smoothing=0.1),
    "dpop": lambda: L.dpop_loss(GOOD, GOOD, GOOD, GOOD, beta=0.1, lam=50.0),
    "hinge": lambda: L.hinge_loss(GOOD, GOOD, GOOD, GOOD, beta=0.1),
    "ipo": lambda: L.ipo_loss(GOOD, GOOD, GOOD, GOOD, beta=0.1),
    "kto": lambda: L.kto_loss(GOOD, GOOD, YES_NO, L.kto_kl_estimate(GOOD, GOOD), beta=0.1),
    "orpo": lambda: L.orpo_loss(GOOD, GOOD, -GOOD, lam=0.1),
    "simpo": lambda: L.simpo_loss(GOOD, GOOD, beta=2.0, gamma=0.5),
    "unlikelihood": lambda: L.unlikelihood_loss(
        GOOD, t(-1.0, -2.0, -3.0, -4.0).reshape(2, 2), torch.ones(2, 2), alpha=1.0
    ),
    "implicit_rewards": lambda: L.implicit_rewards(GOOD, GOOD, beta=0.1),
}


@pytest.mark.parametrize("call", LOSS_CALLS.values(), ids=LOSS_CALLS.keys())
def test_a_loss_reads_no_value_back_to_the_host_outside_debug_mode(call):
    with HostReads() as reads:
        call()
    assert reads.count == 0
    with torch.autograd.set_detect_anomaly(True), HostReads() as reads:  # debug mode: the value checks run, and read
        call()
    assert reads.count > 0
