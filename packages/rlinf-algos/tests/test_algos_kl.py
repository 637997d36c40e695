import math

import pytest
import torch

from rlinf.algos import kl_estimate, kl_k1, kl_k2, kl_k3, kl_loss, kl_penalized_rewards


def test_kl_formulas():
    lp = torch.log(torch.tensor([0.5, 0.1, 0.3]))
    ref = torch.log(torch.tensor([0.25, 0.4, 0.3]))
    x = [math.log(2.0), math.log(0.25), 0.0]
    torch.testing.assert_close(kl_k1(lp, ref), torch.tensor(x))
    torch.testing.assert_close(kl_k2(lp, ref), torch.tensor([0.5 * v * v for v in x]))
    # k3 = ref/p - 1 - log(ref/p)
    torch.testing.assert_close(
        kl_k3(lp, ref), torch.tensor([0.5 - 1 + math.log(2.0), 4 - 1 - math.log(4.0), 0.0])
    )
    torch.testing.assert_close(kl_estimate(lp, ref, "k2"), kl_k2(lp, ref))


def test_k3_nonnegative_and_finite():
    g = torch.Generator().manual_seed(0)
    lp = torch.randn(1000, generator=g) * 10
    ref = torch.randn(1000, generator=g) * 10
    k3 = kl_k3(lp, ref)
    assert bool((k3 >= 0).all()) and bool(torch.isfinite(k3).all())
    assert torch.isfinite(kl_k3(torch.tensor([0.0]), torch.tensor([-1e4]))).all()


def test_k1_k3_unbiased_on_samples():
    p = torch.tensor([0.5, 0.2, 0.2, 0.1])
    q = torch.tensor([0.25, 0.25, 0.25, 0.25])
    true_kl = (p * (p / q).log()).sum().item()
    idx = torch.multinomial(p, 40_000, replacement=True, generator=torch.Generator().manual_seed(0))
    lp, lq = p.log()[idx], q.log()[idx]
    assert kl_k1(lp, lq).mean().item() == pytest.approx(true_kl, abs=0.01)
    assert kl_k3(lp, lq).mean().item() == pytest.approx(true_kl, abs=0.01)


def test_kl_penalized_rewards():
    r = torch.tensor([[0.0, 1.0, 9.0]])
    lp = torch.tensor([[-1.0, -2.0, 0.0]], requires_grad=True)
    ref = torch.tensor([[-1.5, -1.0, 0.0]])
    mask = torch.tensor([[True, True, False]])
    out, m = kl_penalized_rewards(r, lp, ref, mask, coef=0.1)
    torch.testing.assert_close(out, torch.tensor([[-0.05, 1.1, 0.0]]))
    assert m["kl"].item() == pytest.approx((0.5 - 1.0) / 2)
    assert not out.requires_grad


def test_kl_loss_aggregates_and_has_gradient():
    lp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    ref = torch.tensor([[-1.0, -1.0]])
    loss, m = kl_loss(lp, ref, kind="k2")
    assert loss.item() == pytest.approx(0.25)
    loss.backward()
    torch.testing.assert_close(lp.grad, torch.tensor([[0.0, -0.5]]))
    assert m["kl"].item() == pytest.approx(0.25)


def test_kl_bad_inputs():
    with pytest.raises(KeyError, match="valid names: abs, k1, k2, k3"):
        kl_estimate(torch.zeros(2), torch.zeros(2), "k5")
    with pytest.raises(ValueError, match="ref_log_probs has shape"):
        kl_estimate(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="ref_log_probs contains NaN"):
        kl_estimate(torch.zeros(2), torch.tensor([0.0, float("nan")]))
