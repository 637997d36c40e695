"""``mask=None`` (no mask materialized) gives what an all-true mask gives: losses, gradients
and every metric, for each loss function that takes a mask."""

from __future__ import annotations

import pytest
import torch

from rlinf.algos import (
    AsyncPPOConfig,
    PPOLossConfig,
    aggregate_loss,
    decoupled_ppo_loss,
    ppo_policy_loss,
    value_loss,
)
from rlinf.algos._aggregation import AGG_MODES


def _data(shape=(3, 7), seed=0):
    g = torch.Generator().manual_seed(seed)
    logp = (torch.randn(shape, generator=g) * 0.3 - 1.0).requires_grad_(True)
    old = logp.detach() + torch.randn(shape, generator=g) * 0.3
    behav = old + torch.randn(shape, generator=g) * 0.5
    adv = torch.randn(shape, generator=g)
    ent = torch.rand(shape, generator=g).requires_grad_(True)
    return logp, old, behav, adv, ent


def _same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert torch.allclose(
            torch.as_tensor(a[k]).float(), torch.as_tensor(b[k]).float(), atol=1e-6
        ), k


def _grads(loss, *leaves):
    return torch.autograd.grad(loss, leaves)


@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("dual_clip", [None, 3.0])
def test_ppo_policy_loss(mode, dual_clip):
    logp, old, _, adv, ent = _data()
    cfg = PPOLossConfig(clip_high=0.28, dual_clip=dual_clip, agg_mode=mode, entropy_coef=0.01)
    full = torch.ones(logp.shape, dtype=torch.bool)
    a, ma = ppo_policy_loss(logp, old, adv, None, cfg, entropy=ent)
    b, mb = ppo_policy_loss(logp, old, adv, full, cfg, entropy=ent)
    assert torch.allclose(a, b, atol=1e-6)
    _same(ma, mb)
    for ga, gb in zip(_grads(a, logp, ent), _grads(b, logp, ent), strict=True):
        assert torch.allclose(ga, gb, atol=1e-7)


@pytest.mark.parametrize("cap", [None, 2.0])
def test_decoupled_ppo_loss(cap):
    logp, prox, behav, adv, _ = _data(seed=1)
    cfg = AsyncPPOConfig(ppo=PPOLossConfig(), behaviour_weight_cap=cap)
    full = torch.ones(logp.shape, dtype=torch.bool)
    a, ma = decoupled_ppo_loss(logp, prox, behav, adv, None, config=cfg)
    b, mb = decoupled_ppo_loss(logp, prox, behav, adv, full, config=cfg)
    assert torch.allclose(a, b, atol=1e-6)
    _same(ma, mb)
    assert torch.allclose(_grads(a, logp)[0], _grads(b, logp)[0], atol=1e-7)


def test_decoupled_weight_masking_still_masks_without_a_mask():
    logp, prox, behav, adv, _ = _data(seed=2)
    cfg = AsyncPPOConfig(behaviour_weight_cap=1.5, behaviour_weight_mode="mask")
    _, metrics = decoupled_ppo_loss(logp, prox, behav, adv, None, config=cfg)
    expected = (torch.exp(prox - behav) > 1.5).float().mean()
    assert 0 < float(metrics["behav_masked_frac"]) == pytest.approx(float(expected))


@pytest.mark.parametrize("shape", [(3, 7), (11,)])
@pytest.mark.parametrize("clip", [None, 0.2])
def test_value_loss(shape, clip):
    g = torch.Generator().manual_seed(3)
    values = torch.randn(shape, generator=g).requires_grad_(True)
    returns = torch.randn(shape, generator=g)
    old = values.detach() + torch.randn(shape, generator=g) * 0.5
    full = torch.ones(shape, dtype=torch.bool)
    a, ma = value_loss(values, returns, None, old_values=old, clip=clip)
    b, mb = value_loss(values, returns, full, old_values=old, clip=clip)
    assert torch.allclose(a, b, atol=1e-6)
    _same(ma, mb)
    assert torch.allclose(_grads(a, values)[0], _grads(b, values)[0], atol=1e-7)


@pytest.mark.parametrize("mode", AGG_MODES)
def test_aggregate_loss(mode):
    loss = torch.randn(4, 6)
    full = torch.ones(4, 6, dtype=torch.bool)
    for norm in (None, 10.0):
        assert torch.allclose(
            aggregate_loss(loss, None, mode, norm_length=norm),
            aggregate_loss(loss, full, mode, norm_length=norm),
            atol=1e-6,
        )


def test_unmasked_inputs_are_still_checked():
    logp, old, _, adv, _ = _data()
    bad = old.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="old_log_probs contains NaN"):
        ppo_policy_loss(logp, bad, adv)
    with pytest.raises(ValueError, match="returns contains NaN"):
        value_loss(torch.zeros(3), torch.tensor([0.0, float("inf"), 1.0]))
