import math

import pytest
import torch
from torch import nn

from rlinf.algos import (
    CriticEnsemble,
    expectile_loss,
    iql_policy_loss,
    iql_q_loss,
    iql_value_loss,
    rlpd_actor_loss,
    rlpd_critic_loss,
    rlpd_critic_target,
    sample_subset,
)


def test_rlpd_target_with_explicit_subset():
    next_q = torch.tensor([[5.0, 1.0], [3.0, 4.0], [0.0, 0.0], [9.0, 9.0]])
    rewards = torch.tensor([1.0, 1.0])
    term = torch.tensor([False, False])
    y, subset = rlpd_critic_target(rewards, term, next_q, gamma=0.5, subset=torch.tensor([0, 1]))
    torch.testing.assert_close(y, torch.tensor([1 + 0.5 * 3.0, 1 + 0.5 * 1.0]))
    assert subset.tolist() == [0, 1]
    y, _ = rlpd_critic_target(
        rewards,
        term,
        next_q,
        torch.tensor([-1.0, 0.0]),
        gamma=0.5,
        alpha=1.0,
        subset=torch.tensor([3]),
    )
    torch.testing.assert_close(y, torch.tensor([1 + 0.5 * 10.0, 1 + 0.5 * 9.0]))


def test_rlpd_random_subset_is_min_over_drawn_members():
    next_q = torch.randn(10, 6, generator=torch.Generator().manual_seed(0))
    rewards, term = torch.zeros(6), torch.zeros(6, dtype=torch.bool)
    y, subset = rlpd_critic_target(
        rewards, term, next_q, gamma=1.0, subset_size=2, generator=torch.Generator().manual_seed(1)
    )
    assert subset.numel() == 2 and len(set(subset.tolist())) == 2
    torch.testing.assert_close(y, next_q[subset].min(0).values)
    _, subset2 = rlpd_critic_target(
        rewards, term, next_q, gamma=1.0, subset_size=2, generator=torch.Generator().manual_seed(1)
    )
    assert subset2.tolist() == subset.tolist()
    seen = set()
    g = torch.Generator().manual_seed(2)
    for _ in range(50):
        seen.update(sample_subset(10, 2, g).tolist())
    assert seen == set(range(10))


def test_rlpd_losses():
    q = torch.tensor([[1.0, 2.0], [3.0, 4.0], [2.0, 0.0]])
    loss, _ = rlpd_critic_loss(q, torch.tensor([1.0, 2.0]))
    assert loss.item() == pytest.approx(0.0 + (4 + 4) / 2 + (1 + 4) / 2)
    loss, m = rlpd_actor_loss(q, torch.tensor([0.0, -1.0]), alpha=0.5)
    # ensemble mean [2, 2]; mean(0 - 2, -.5 - 2)
    assert loss.item() == pytest.approx(-2.25)
    assert m["q_pi_mean"].item() == pytest.approx(2.0)


def test_layernorm_critic_ensemble():
    torch.manual_seed(0)
    crit = CriticEnsemble(3, 2, hidden_dims=(16, 16), num_critics=10, norm="layernorm")
    q = crit(torch.randn(5, 3), torch.randn(5, 2))
    assert q.shape == (10, 5)
    assert sum(isinstance(m, nn.LayerNorm) for m in crit.modules()) == 20
    assert not torch.allclose(q[0], q[1])


def test_expectile_loss_hand():
    out = expectile_loss(torch.tensor([2.0, -2.0, 0.0]), 0.7)
    torch.testing.assert_close(out, torch.tensor([2.8, 1.2, 0.0]))


def test_expectile_minimizer_is_upper_expectile():
    data = torch.tensor([0.0, 1.0, 2.0, 10.0])
    v = torch.zeros((), requires_grad=True)
    opt = torch.optim.SGD([v], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        expectile_loss(data - v, 0.9).mean().backward()
        opt.step()
    # first-order condition: sum_i |tau - 1(d_i < v)| (d_i - v) = 0
    d = data - v.detach()
    w = torch.where(d < 0, 0.1, 0.9)
    assert (w * d).sum().item() == pytest.approx(0.0, abs=1e-4)
    assert v.item() > data.mean().item()


def test_iql_value_loss_hand():
    q_target = torch.tensor([[3.0, 0.0], [2.0, 1.0]])  # min: [2, 0]
    v = torch.tensor([0.0, 2.0], requires_grad=True)
    loss, m = iql_value_loss(q_target, v, expectile=0.7)
    # diffs [2, -2] -> [2.8, 1.2] -> mean 2
    assert loss.item() == pytest.approx(2.0)
    loss.backward()
    torch.testing.assert_close(v.grad, torch.tensor([-2 * 0.7 * 2 / 2, 2 * 0.3 * 2 / 2]))
    assert m["adv_mean"].item() == pytest.approx(0.0)


def test_iql_q_loss_hand():
    q = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    loss, m = iql_q_loss(
        q,
        torch.tensor([1.0, 1.0]),
        torch.tensor([False, True]),
        torch.tensor([2.0, 100.0]),
        gamma=0.5,
    )
    # target [2, 1]; critic 0: (1 + 1)/2 = 1; critic 1: (4 + 1)/2 = 2.5
    assert loss.item() == pytest.approx(3.5)
    assert m["target_mean"].item() == pytest.approx(1.5)


def test_iql_policy_loss_weights_and_clamp():
    logp = torch.tensor([-1.0, -2.0, -0.5], requires_grad=True)
    q = torch.tensor([1.0, 0.0, 10.0])
    v = torch.tensor([0.0, 0.0, 0.0])
    loss, m = iql_policy_loss(logp, q, v, beta=2.0, max_weight=100.0)
    w = [math.exp(2.0), 1.0, 100.0]  # exp(20) clamped to 100
    assert loss.item() == pytest.approx(-(w[0] * -1.0 + w[1] * -2.0 + w[2] * -0.5) / 3)
    assert m["weight_clip_frac"].item() == pytest.approx(1 / 3)
    assert m["weight_max"].item() == pytest.approx(100.0)
    loss.backward()
    torch.testing.assert_close(logp.grad, -torch.tensor(w) / 3)


def test_rlpd_iql_bad_inputs():
    with pytest.raises(ValueError, match="subset_size must be in"):
        sample_subset(4, 5)
    with pytest.raises(ValueError, match="subset must be a non-empty"):
        rlpd_critic_target(
            torch.zeros(2),
            torch.zeros(2, dtype=torch.bool),
            torch.zeros(3, 2),
            gamma=0.9,
            subset=torch.tensor([5]),
        )
    with pytest.raises(ValueError, match="expectile must be in"):
        expectile_loss(torch.zeros(2), 1.0)
    with pytest.raises(ValueError, match=r"values must have shape \(2,\)"):
        iql_value_loss(torch.zeros(1, 2), torch.zeros(3))
    with pytest.raises(ValueError, match="next_values contains NaN"):
        iql_q_loss(
            torch.zeros(1, 2),
            torch.zeros(2),
            torch.zeros(2, dtype=torch.bool),
            torch.tensor([0.0, float("nan")]),
            gamma=0.9,
        )
    with pytest.raises(ValueError, match="q_values contains NaN"):
        iql_policy_loss(torch.zeros(2), torch.tensor([float("inf"), 0.0]), torch.zeros(2))
