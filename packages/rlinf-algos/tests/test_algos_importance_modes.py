"""Truncated (TIS) and masked (MIS) importance sampling: the weights, the PPO loss and its
gradient, and the decoupled loss's behaviour-weight cap from ``PPOLossConfig``, against
hand-computed values."""

import math

import pytest
import torch

from rlinf.algos import (
    IS_MODES,
    POLICY_LOSSES,
    PolicyLossInputs,
    PPOLossConfig,
    ppo_policy_loss,
    truncated_importance_weights,
)

D = torch.float64


def test_masked_weights_drop_tokens_over_the_cap():
    assert IS_MODES == ("truncate", "mask")
    train = torch.log(torch.tensor([[0.5, 0.2, 0.9]], dtype=D))
    rollout = torch.log(torch.tensor([[0.25, 0.4, 0.9]], dtype=D))  # raw 2, 0.5, 1
    w, m = truncated_importance_weights(train, rollout, cap=1.5, mode="mask")
    torch.testing.assert_close(w, torch.tensor([[0.0, 0.5, 1.0]], dtype=D))
    assert m["tis/clip_frac"].item() == pytest.approx(1 / 3)
    assert m["tis/weight_mean"].item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="mode must be one of"):
        truncated_importance_weights(train, rollout, cap=1.5, mode="clip")


def test_ppo_with_mis_drops_tokens_from_the_mean_and_the_gradient():
    new = torch.zeros(1, 3, dtype=D, requires_grad=True)
    old = torch.zeros(1, 3, dtype=D)
    rollout = torch.log(torch.tensor([[0.5, 2.0, 1.0]], dtype=D))  # weights 2 (out), .5, 1
    adv = torch.ones(1, 3, dtype=D)
    cfg = PPOLossConfig(tis_cap=1.5, is_mode="mask")
    loss, m = ppo_policy_loss(new, old, adv, rollout_log_probs=rollout, config=cfg)
    # Ratio 1 everywhere: token loss -1, weighted 0.5 and 1.0, mean over the 2 kept tokens.
    assert loss.item() == pytest.approx(-(0.5 + 1.0) / 2)
    assert m["tis/clip_frac"].item() == pytest.approx(1 / 3)
    loss.backward()
    torch.testing.assert_close(new.grad, torch.tensor([[0.0, -0.25, -0.5]], dtype=D))
    # Truncation keeps the token at the cap and the mean over all 3.
    loss, _ = ppo_policy_loss(
        new, old, adv, rollout_log_probs=rollout, config=PPOLossConfig(tis_cap=1.5)
    )
    assert loss.item() == pytest.approx(-(1.5 + 0.5 + 1.0) / 3)


def test_mis_with_every_token_masked_is_an_error():
    new = torch.zeros(1, 2, dtype=D)
    rollout = torch.full((1, 2), math.log(0.1), dtype=D)  # weights 10
    with pytest.raises(ValueError, match="nothing to train on"):
        ppo_policy_loss(
            new,
            torch.zeros(1, 2, dtype=D),
            torch.ones(1, 2, dtype=D),
            rollout_log_probs=rollout,
            config=PPOLossConfig(tis_cap=2.0, is_mode="mask"),
        )
    with pytest.raises(ValueError, match="is_mode must be one of"):
        PPOLossConfig(is_mode="clip")


def _decoupled(cfg: PPOLossConfig) -> float:
    prox = torch.zeros(1, 3, dtype=D)
    behav = torch.log(torch.tensor([[0.5, 2.0, 0.1]], dtype=D))  # w = 2, 0.5, 10
    new = torch.log(torch.tensor([[1.5, 1.0, 1.1]], dtype=D))  # r = 1.5 (clipped 1.2), 1, 1.1
    adv = torch.ones(1, 3, dtype=D)
    mask = torch.ones(1, 3, dtype=torch.bool)
    inputs = PolicyLossInputs(new, prox, adv, mask, rollout_log_probs=behav)
    loss, metrics = POLICY_LOSSES.get("decoupled_ppo")(inputs, cfg)
    return loss.item(), metrics


def test_decoupled_loss_takes_its_cap_and_mode_from_the_config():
    loss, m = _decoupled(PPOLossConfig(tis_cap=3.0))
    assert loss == pytest.approx(-(2 * 1.2 + 0.5 * 1.0 + 3.0 * 1.1) / 3)
    assert m["behav_weight_max"].item() == pytest.approx(3.0)
    assert m["behav_clip_frac"].item() == pytest.approx(1 / 3)
    assert m["behav_masked_frac"].item() == 0.0
    loss, m = _decoupled(PPOLossConfig(tis_cap=3.0, is_mode="mask"))
    assert loss == pytest.approx(-(2 * 1.2 + 0.5 * 1.0) / 2)
    assert m["behav_masked_frac"].item() == pytest.approx(1 / 3)
    assert m["behav_clip_frac"].item() == pytest.approx(1 / 3)
    # No tis_cap: the decoupled default cap (5).
    loss, _ = _decoupled(PPOLossConfig())
    assert loss == pytest.approx(-(2 * 1.2 + 0.5 * 1.0 + 5.0 * 1.1) / 3)
