import math

import pytest
import torch

from rlinf.algos import PPOLossConfig, ppo_policy_loss, ppo_token_loss, truncated_importance_weights

D = torch.float64


def lp(ratios, old=None):
    old = torch.zeros(len(ratios), dtype=D) if old is None else old
    new = (old + torch.log(torch.tensor(ratios, dtype=D))).clone().requires_grad_(True)
    return new, old


def test_ppo_hand_values_and_gradients():
    # ratio, advantage per token:
    #   1.5, +1 -> clipped high (loss -1.2, zero grad)
    #   0.5, +1 -> unclipped (-0.5)
    #   0.5, -1 -> clipped low (0.8, zero grad)
    #   1.5, -1 -> unclipped (1.5)
    #   1.1, +2 -> inside the range (-2.2)
    new, old = lp([1.5, 0.5, 0.5, 1.5, 1.1])
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0, 2.0], dtype=D)
    tok, parts = ppo_token_loss(new, old, adv, clip_low=0.2, clip_high=0.2)
    torch.testing.assert_close(tok, torch.tensor([-1.2, -0.5, 0.8, 1.5, -2.2], dtype=D))
    tok.sum().backward()
    grad = new.grad
    assert grad[0] == 0 and grad[2] == 0
    # d(-A r)/d log p = -A r
    torch.testing.assert_close(grad[[1, 3, 4]], torch.tensor([-0.5, 1.5, -2.2], dtype=D))
    assert parts["clipped_high"].tolist() == [True, False, False, False, False]
    assert parts["clipped_low"].tolist() == [False, False, True, False, False]


def test_ppo_loss_and_metrics():
    new, old = lp([1.5, 0.5, 0.5, 1.5, 1.1])
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0, 2.0]], dtype=D)
    loss, m = ppo_policy_loss(new[None], old[None], adv)
    assert loss.item() == pytest.approx((-1.2 - 0.5 + 0.8 + 1.5 - 2.2) / 5)
    assert m["pg_loss"].item() == pytest.approx(loss.item())
    assert m["clip_frac_high"].item() == pytest.approx(0.2)
    assert m["clip_frac_low"].item() == pytest.approx(0.2)
    assert m["clip_frac_dual"].item() == 0.0
    assert m["ratio_max"].item() == pytest.approx(1.5)
    assert m["ratio_min"].item() == pytest.approx(0.5)
    assert m["ratio_mean"].item() == pytest.approx((1.5 + 0.5 + 0.5 + 1.5 + 1.1) / 5)
    kl = sum(r - 1 - math.log(r) for r in [1.5, 0.5, 0.5, 1.5, 1.1]) / 5
    assert m["approx_kl"].item() == pytest.approx(kl)
    for v in m.values():
        assert isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad


def test_clip_higher_is_asymmetric():
    new, old = lp([1.25, 0.75])
    adv = torch.tensor([[1.0, -1.0]], dtype=D)
    sym, m_sym = ppo_policy_loss(new[None], old[None], adv, config=PPOLossConfig())
    dapo, m_dapo = ppo_policy_loss(
        new[None], old[None], adv, config=PPOLossConfig(clip_low=0.2, clip_high=0.28)
    )
    assert sym.item() == pytest.approx((-1.2 + 0.8) / 2)
    assert dapo.item() == pytest.approx((-1.25 + 0.8) / 2)
    assert m_sym["clip_frac_high"].item() == 0.5
    assert m_dapo["clip_frac_high"].item() == 0.0


def test_dual_clip_bounds_negative_advantage_loss():
    new, old = lp([10.0, 10.0, 2.0])
    adv = torch.tensor([-1.0, 1.0, -0.5], dtype=D)
    tok, parts = ppo_token_loss(new, old, adv, clip_low=0.2, clip_high=0.2, dual_clip=3.0)
    # A<0, r=10: min(max(10, 1.2), 3) = 3 = -c*A; A>0 unaffected: -1.2; r=2, A=-.5: 1.0 < 1.5
    torch.testing.assert_close(tok, torch.tensor([3.0, -1.2, 1.0], dtype=D))
    assert parts["clipped_dual"].tolist() == [True, False, False]
    tok.sum().backward()
    assert new.grad[0] == 0 and new.grad[1] == 0 and new.grad[2] != 0


def test_dual_clip_bound_property_random():
    g = torch.Generator().manual_seed(0)
    new = torch.randn(200, generator=g, dtype=D) * 2
    old = torch.randn(200, generator=g, dtype=D)
    adv = torch.randn(200, generator=g, dtype=D)
    tok, _ = ppo_token_loss(new, old, adv, clip_low=0.2, clip_high=0.3, dual_clip=2.5)
    neg = adv < 0
    assert bool((tok[neg] <= -2.5 * adv[neg] + 1e-12).all())
    plain, _ = ppo_token_loss(new, old, adv, clip_low=0.2, clip_high=0.3)
    torch.testing.assert_close(tok[~neg], plain[~neg])


def test_gradient_zero_iff_clipped_on_advantage_side_random():
    g = torch.Generator().manual_seed(1)
    old = torch.randn(2, 64, generator=g, dtype=D)
    new = (old + 0.5 * torch.randn(2, 64, generator=g, dtype=D)).requires_grad_(True)
    adv = torch.randn(2, 64, generator=g, dtype=D)
    loss, m = ppo_policy_loss(new, old, adv, config=PPOLossConfig(clip_low=0.1, clip_high=0.15))
    loss.backward()
    ratio = torch.exp(new.detach() - old)
    clipped = ((adv > 0) & (ratio > 1.15)) | ((adv < 0) & (ratio < 0.9))
    assert bool(clipped.any()) and bool((~clipped).any())
    assert bool((new.grad[clipped] == 0).all())
    assert bool((new.grad[~clipped] != 0).all())
    assert m["clip_frac_high"].item() + m["clip_frac_low"].item() == pytest.approx(
        clipped.float().mean().item()
    )


def test_log_ratio_clamp_keeps_ratio_finite():
    new = torch.tensor([[200.0]], dtype=D, requires_grad=True)
    old = torch.tensor([[0.0]], dtype=D)
    loss, m = ppo_policy_loss(new, old, torch.tensor([[-1.0]], dtype=D))
    assert math.isfinite(loss.item())
    assert m["ratio_max"].item() == pytest.approx(math.exp(20.0))


def test_mask_and_aggregation_mode():
    new, old = lp([1.0, 1.0, 1.0, 1.0])
    new, old = new.view(2, 2), old.view(2, 2)
    adv = torch.tensor([[1.0, 3.0], [5.0, 7.0]], dtype=D)
    mask = torch.tensor([[1, 1], [1, 0]], dtype=torch.bool)
    loss, _ = ppo_policy_loss(new, old, adv, mask)
    assert loss.item() == pytest.approx(-3.0)
    cfg = PPOLossConfig(agg_mode="seq-mean-token-mean")
    loss, _ = ppo_policy_loss(new, old, adv, mask, cfg)
    assert loss.item() == pytest.approx(-(2.0 + 5.0) / 2)


def test_truncated_importance_sampling():
    train = torch.log(torch.tensor([[0.5, 0.2, 0.9]], dtype=D))
    rollout = torch.log(torch.tensor([[0.25, 0.4, 0.9]], dtype=D))
    w, m = truncated_importance_weights(train, rollout, cap=1.5)
    torch.testing.assert_close(w, torch.tensor([[1.5, 0.5, 1.0]], dtype=D))
    assert m["tis/clip_frac"].item() == pytest.approx(1 / 3)
    assert m["tis/weight_mean"].item() == pytest.approx(1.0)
    d = [math.log(2.0), math.log(0.5), 0.0]
    assert m["tis/mismatch_kl"].item() == pytest.approx(sum(math.exp(x) - 1 - x for x in d) / 3)
    assert m["tis/mismatch_abs"].item() == pytest.approx(2 * math.log(2.0) / 3)
    assert m["tis/mismatch_kl"].item() >= 0


def test_ppo_with_tis_reweights_tokens():
    new = torch.zeros(1, 3, dtype=D, requires_grad=True)
    old = torch.zeros(1, 3, dtype=D)
    rollout = torch.log(torch.tensor([[0.5, 2.0, 1.0]], dtype=D))  # weights 2 -> cap 1.5, .5, 1
    adv = torch.ones(1, 3, dtype=D)
    loss, m = ppo_policy_loss(
        new, old, adv, rollout_log_probs=rollout, config=PPOLossConfig(tis_cap=1.5)
    )
    assert loss.item() == pytest.approx(-(1.5 + 0.5 + 1.0) / 3)
    assert m["tis/clip_frac"].item() == pytest.approx(1 / 3)
    # Without a cap the mismatch is still reported but the loss is unweighted.
    loss, m = ppo_policy_loss(new, old, adv, rollout_log_probs=rollout)
    assert loss.item() == pytest.approx(-1.0)
    assert m["tis/mismatch_kl"].item() > 0


def test_entropy_bonus():
    new, old = lp([1.0, 1.0])
    ent = torch.tensor([[0.5, 1.5]], dtype=D)
    adv = torch.ones(1, 2, dtype=D)
    loss, m = ppo_policy_loss(
        new[None], old[None], adv, entropy=ent, config=PPOLossConfig(entropy_coef=0.1)
    )
    assert m["entropy"].item() == pytest.approx(1.0)
    assert loss.item() == pytest.approx(-1.0 - 0.1)
    with pytest.raises(ValueError, match="entropy must be given"):
        ppo_policy_loss(new[None], old[None], adv, config=PPOLossConfig(entropy_coef=0.1))


def test_ppo_bad_inputs():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="advantages has shape"):
        ppo_policy_loss(x, x, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="mask is empty"):
        ppo_policy_loss(x, x, x, torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="log_probs contains NaN"):
        ppo_policy_loss(torch.full((2, 3), float("nan")), x, x)
    with pytest.raises(ValueError, match="advantages contains NaN or inf"):
        ppo_policy_loss(x, x, torch.full((2, 3), float("inf")))
    with pytest.raises(ValueError, match="dual_clip must be > 1"):
        PPOLossConfig(dual_clip=1.0)
    with pytest.raises(ValueError, match="clip_low must be in"):
        PPOLossConfig(clip_low=1.0)
    with pytest.raises(ValueError, match="agg_mode 'mean' is unknown; valid: seq-mean"):
        PPOLossConfig(agg_mode="mean")
    with pytest.raises(ValueError, match="cap must be > 0"):
        truncated_importance_weights(x, x, cap=0.0)
    with pytest.raises(ValueError, match="rollout_log_probs contains NaN"):
        truncated_importance_weights(x, torch.full((2, 3), float("nan")))


def test_config_is_frozen():
    cfg = PPOLossConfig()
    with pytest.raises(AttributeError):
        cfg.clip_low = 0.3  # type: ignore[misc]
