import pytest
import torch
from torch import nn

from rlinf.algos import (
    SACConfig,
    hard_update,
    polyak_update,
    sac_actor_loss,
    sac_critic_loss,
    sac_critic_target,
    sac_temperature_loss,
)


def test_critic_target_hand_values():
    rewards = torch.tensor([1.0, 2.0])
    term = torch.tensor([False, True])
    next_q = torch.tensor([[3.0, 10.0], [2.0, 20.0]])
    next_logp = torch.tensor([-1.0, -1.0])
    y = sac_critic_target(rewards, term, next_q, next_logp, gamma=0.5, alpha=0.2)
    # row 0: 1 + .5 * (min(3, 2) + .2) = 2.1; row 1 terminated: 2
    torch.testing.assert_close(y, torch.tensor([2.1, 2.0]))
    assert not y.requires_grad


def test_critic_loss_hand_values():
    q = torch.tensor([[1.0, 2.0], [0.0, 4.0]], requires_grad=True)
    y = torch.tensor([2.0, 2.0])
    loss, m = sac_critic_loss(q, y)
    # critic 0: (1 + 0) / 2 = .5; critic 1: (4 + 4) / 2 = 4
    assert loss.item() == pytest.approx(4.5)
    assert m["td_abs"].item() == pytest.approx((1 + 0 + 2 + 2) / 4)
    loss.backward()
    torch.testing.assert_close(q.grad, torch.tensor([[-1.0, 0.0], [-2.0, 2.0]]))


def test_actor_loss_hand_values():
    q = torch.tensor([[1.0, 5.0], [3.0, 4.0]])
    logp = torch.tensor([-2.0, 0.0], requires_grad=True)
    loss, m = sac_actor_loss(q, logp, alpha=0.5)
    # min over critics: [1, 4]; mean(.5 * logp - q) = mean(-2, -4) = -3
    assert loss.item() == pytest.approx(-3.0)
    assert m["entropy"].item() == pytest.approx(1.0)
    loss, _ = sac_actor_loss(q, logp, alpha=0.5, reduce="mean")
    assert loss.item() == pytest.approx(((-1 - 2) + (0 - 4.5)) / 2)


def test_actor_loss_gradient_through_actions_on_tiny_net():
    critic = nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[1.0, 2.0]]))
        critic.bias.zero_()
    obs = torch.tensor([[1.0]])
    action = torch.tensor([[0.5]], requires_grad=True)
    q = critic(torch.cat([obs, action], -1)).T  # [1, B]
    loss, _ = sac_actor_loss(q, torch.tensor([0.0]), alpha=1.0)
    assert loss.item() == pytest.approx(-(1.0 + 1.0))
    loss.backward()
    torch.testing.assert_close(action.grad, torch.tensor([[-2.0]]))


def test_temperature_loss_sign():
    log_alpha = torch.zeros((), requires_grad=True)
    # entropy -logp = 0.5 below target 2 -> alpha must grow -> negative gradient
    loss, m = sac_temperature_loss(log_alpha, torch.tensor([-0.5, -0.5]), target_entropy=2.0)
    assert loss.item() == pytest.approx(0.0)
    loss.backward()
    assert log_alpha.grad.item() == pytest.approx(-1.5)
    assert m["alpha"].item() == pytest.approx(1.0)
    log_alpha.grad = None
    # entropy 5 above target 2 -> alpha shrinks -> positive gradient
    loss, _ = sac_temperature_loss(log_alpha, torch.tensor([-5.0]), target_entropy=2.0)
    loss.backward()
    assert log_alpha.grad.item() == pytest.approx(3.0)


def test_temperature_descent_moves_alpha_toward_target():
    log_alpha = torch.zeros((), requires_grad=True)
    opt = torch.optim.SGD([log_alpha], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        sac_temperature_loss(log_alpha, torch.tensor([0.0]), target_entropy=1.0)[0].backward()
        opt.step()
    assert log_alpha.item() == pytest.approx(0.3)


def test_polyak_update_hand_values():
    src, tgt = nn.Linear(1, 1), nn.Linear(1, 1)
    with torch.no_grad():
        src.weight.fill_(1.0)
        src.bias.fill_(2.0)
        tgt.weight.fill_(0.0)
        tgt.bias.fill_(0.0)
    polyak_update(tgt, src, 0.1)
    assert tgt.weight.item() == pytest.approx(0.1) and tgt.bias.item() == pytest.approx(0.2)
    polyak_update(tgt, src, 0.1)
    assert tgt.weight.item() == pytest.approx(0.19)
    hard_update(tgt, src)
    assert tgt.bias.item() == pytest.approx(2.0)
    assert not tgt.weight.requires_grad or tgt.weight.grad is None


def test_polyak_buffers():
    src, tgt = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    src.running_mean.fill_(1.0)
    src.num_batches_tracked.fill_(7)
    polyak_update(tgt, src, 0.5)
    torch.testing.assert_close(tgt.running_mean, torch.full((2,), 0.5))
    assert int(tgt.num_batches_tracked) == 7


def test_sac_bad_inputs():
    with pytest.raises(ValueError, match="next_q_values must be"):
        sac_critic_target(
            torch.zeros(2), torch.zeros(2, dtype=torch.bool), torch.zeros(2), gamma=0.9
        )
    with pytest.raises(ValueError, match=r"rewards must have shape \(2,\)"):
        sac_critic_target(
            torch.zeros(3), torch.zeros(2, dtype=torch.bool), torch.zeros(2, 2), gamma=0.9
        )
    with pytest.raises(ValueError, match="q_values contains NaN"):
        sac_critic_loss(torch.full((2, 2), float("nan")), torch.zeros(2))
    with pytest.raises(ValueError, match="alpha must be finite"):
        sac_actor_loss(torch.zeros(1, 2), torch.zeros(2), alpha=float("nan"))
    with pytest.raises(ValueError, match="reduce must be"):
        sac_actor_loss(torch.zeros(1, 2), torch.zeros(2), alpha=1.0, reduce="max")
    with pytest.raises(ValueError, match="log_probs contains NaN"):
        sac_temperature_loss(torch.zeros(()), torch.tensor([float("nan")]), 1.0)
    with pytest.raises(ValueError, match="tau must be in"):
        polyak_update(nn.Linear(1, 1), nn.Linear(1, 1), 1.5)
    with pytest.raises(ValueError, match="different parameters"):
        polyak_update(nn.Linear(1, 1), nn.Linear(1, 1, bias=False), 0.5)
    with pytest.raises(ValueError, match="init_alpha must be > 0"):
        SACConfig(init_alpha=0.0)
    assert SACConfig().resolved_target_entropy(6) == -6.0
    assert SACConfig(target_entropy=-2.0).resolved_target_entropy(6) == -2.0
