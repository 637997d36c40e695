import pytest
import torch

from rlinf.algos import (
    AsyncPPOConfig,
    PPOLossConfig,
    decoupled_ppo_loss,
    ppo_policy_loss,
    staleness_mask,
)

D = torch.float64


def test_reduces_to_ppo_when_behaviour_equals_proximal():
    g = torch.Generator().manual_seed(0)
    old = torch.randn(3, 5, generator=g, dtype=D)
    new = old + 0.3 * torch.randn(3, 5, generator=g, dtype=D)
    adv = torch.randn(3, 5, generator=g, dtype=D)
    a, ma = decoupled_ppo_loss(new, old, old, adv)
    b, mb = ppo_policy_loss(new, old, adv)
    assert a.item() == pytest.approx(b.item())
    assert ma["clip_frac_high"].item() == pytest.approx(mb["clip_frac_high"].item())
    assert ma["behav_weight_mean"].item() == pytest.approx(1.0)


def test_decoupled_hand_values():
    prox = torch.zeros(1, 3, dtype=D)
    behav = torch.log(torch.tensor([[0.5, 2.0, 0.1]], dtype=D))  # w = 2, 0.5, 10 -> cap 5
    new = torch.log(torch.tensor([[1.5, 1.0, 1.1]], dtype=D)).requires_grad_(True)
    adv = torch.ones(1, 3, dtype=D)
    loss, m = decoupled_ppo_loss(new, prox, behav, adv)
    # clip around prox: r = 1.5 -> 1.2; w * (-A * clipped r)
    assert loss.item() == pytest.approx(-(2 * 1.2 + 0.5 * 1.0 + 5.0 * 1.1) / 3)
    assert m["behav_weight_max"].item() == pytest.approx(5.0)
    loss.backward()
    assert new.grad[0, 0] == 0
    torch.testing.assert_close(new.grad[0, 1:], torch.tensor([-0.5 / 3, -5.5 / 3], dtype=D))


def test_behaviour_weight_mask_mode():
    prox = torch.zeros(1, 3, dtype=D)
    behav = torch.log(torch.tensor([[0.5, 2.0, 0.1]], dtype=D))
    new = torch.zeros(1, 3, dtype=D)
    adv = torch.ones(1, 3, dtype=D)
    cfg = AsyncPPOConfig(behaviour_weight_cap=5.0, behaviour_weight_mode="mask")
    loss, m = decoupled_ppo_loss(new, prox, behav, adv, config=cfg)
    assert loss.item() == pytest.approx(-(2.0 + 0.5) / 2)
    assert m["behav_masked_frac"].item() == pytest.approx(1 / 3)


def test_staleness_bound_masks_old_samples():
    assert staleness_mask(torch.tensor([10, 8, 5, 7]), 10, 2).tolist() == [True, True, False, False]
    assert staleness_mask(torch.tensor([1, 2]), 3, None).tolist() == [True, True]
    lp = torch.zeros(3, 2, dtype=D)
    adv = torch.tensor([[1.0, 1.0], [2.0, 2.0], [100.0, 100.0]], dtype=D)
    cfg = AsyncPPOConfig(max_staleness=1)
    loss, m = decoupled_ppo_loss(
        lp, lp, lp, adv, config=cfg, sample_versions=torch.tensor([4, 3, 1]), current_version=4
    )
    assert loss.item() == pytest.approx(-1.5)
    assert m["stale_frac"].item() == pytest.approx(1 / 3)


def test_async_bad_inputs():
    lp = torch.zeros(2, 2)
    cfg = AsyncPPOConfig(max_staleness=0)
    with pytest.raises(ValueError, match="every sample is staler than max_staleness=0"):
        decoupled_ppo_loss(
            lp, lp, lp, lp, config=cfg, sample_versions=torch.tensor([1, 2]), current_version=3
        )
    with pytest.raises(ValueError, match="sample_versions and current_version are required"):
        decoupled_ppo_loss(lp, lp, lp, lp, config=cfg)
    with pytest.raises(ValueError, match="newer than current_version"):
        staleness_mask(torch.tensor([5]), 3, 1)
    with pytest.raises(ValueError, match="behaviour_log_probs has shape"):
        decoupled_ppo_loss(lp, lp, torch.zeros(2, 3), lp)
    with pytest.raises(ValueError, match="proximal_log_probs contains NaN"):
        decoupled_ppo_loss(lp, torch.full((2, 2), float("nan")), lp, lp)
    with pytest.raises(ValueError, match="behaviour_weight_mode must be"):
        AsyncPPOConfig(behaviour_weight_mode="drop")
    assert AsyncPPOConfig(ppo=PPOLossConfig(clip_high=0.28)).ppo.clip_high == 0.28
