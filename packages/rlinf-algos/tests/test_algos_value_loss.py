import pytest
import torch

from rlinf.algos import huber, value_loss


def test_value_loss_clipped_hand_values():
    values = torch.tensor([1.0, 3.0], requires_grad=True)
    old = torch.tensor([0.0, 0.0])
    returns = torch.tensor([2.0, 0.0])
    loss, m = value_loss(values, returns, old_values=old, clip=0.5)
    # unclipped: .5, 4.5; clipped preds .5, .5 -> 1.125, .125; max -> 1.125, 4.5
    assert loss.item() == pytest.approx((1.125 + 4.5) / 2)
    assert m["vf_clip_frac"].item() == pytest.approx(0.5)
    assert m["value_mean"].item() == pytest.approx(2.0)
    loss.backward()
    # Entry 0 takes the clipped branch (constant in V): zero gradient; entry 1: (V - R) / 2.
    torch.testing.assert_close(values.grad, torch.tensor([0.0, 1.5]))


def test_value_loss_unclipped_and_huber():
    values = torch.tensor([[1.0, 3.0]])
    returns = torch.tensor([[2.0, 0.0]])
    loss, _ = value_loss(values, returns)
    assert loss.item() == pytest.approx((0.5 + 4.5) / 2)
    loss, _ = value_loss(values, returns, huber_delta=1.0)
    assert loss.item() == pytest.approx((0.5 + 2.5) / 2)


def test_huber_matches_formula_and_torch():
    e = torch.linspace(-3, 3, 13)
    ref = torch.where(e.abs() <= 1.5, 0.5 * e**2, 1.5 * (e.abs() - 0.75))
    torch.testing.assert_close(huber(e, 1.5), ref)
    torch.testing.assert_close(
        huber(e, 1.5), torch.nn.functional.huber_loss(e, torch.zeros_like(e), "none", 1.5)
    )


def test_value_loss_mask():
    values = torch.tensor([[1.0, 50.0]])
    returns = torch.tensor([[0.0, 0.0]])
    loss, _ = value_loss(values, returns, torch.tensor([[True, False]]))
    assert loss.item() == pytest.approx(0.5)


def test_value_loss_bad_inputs():
    v = torch.zeros(3)
    with pytest.raises(ValueError, match="old_values is required"):
        value_loss(v, v, clip=0.2)
    with pytest.raises(ValueError, match="returns has shape"):
        value_loss(v, torch.zeros(4))
    with pytest.raises(ValueError, match="returns contains NaN"):
        value_loss(v, torch.tensor([0.0, float("nan"), 0.0]))
    with pytest.raises(ValueError, match="mask is empty"):
        value_loss(v, v, torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="huber delta must be > 0"):
        huber(v, 0.0)
