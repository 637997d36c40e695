import pytest
import torch
from torch import nn

from rlinf.algos import (
    BatchRenorm1d,
    CriticEnsemble,
    crossq_critic_loss,
    joint_critic_forward,
    sac_critic_loss,
)


def test_batch_renorm_warmup_is_batch_norm():
    x = torch.tensor([[1.0, 10.0], [3.0, 20.0], [5.0, 60.0]])
    brn = BatchRenorm1d(2, momentum=0.5, eps=0.0, warmup_steps=10)
    out = brn(x)
    mean = x.mean(0)
    std = x.var(0, unbiased=False).sqrt()
    torch.testing.assert_close(out, (x - mean) / std)
    # running stats: lerp toward batch mean / unbiased var with momentum .5
    torch.testing.assert_close(brn.running_mean, 0.5 * mean)
    torch.testing.assert_close(brn.running_var, 0.5 + 0.5 * x.var(0, unbiased=True))
    assert int(brn.num_batches_tracked) == 1


def test_batch_renorm_corrections_hand_values():
    brn = BatchRenorm1d(1, momentum=0.0, eps=0.0, r_max=1.5, d_max=0.5, warmup_steps=0)
    brn.running_mean.fill_(0.0)
    brn.running_var.fill_(1.0)
    x = torch.tensor([[0.0], [4.0]])  # batch mean 2, std 2
    out = brn(x)
    # r = clip(2 / 1, 1/1.5, 1.5) = 1.5; d = clip(2 / 1, -.5, .5) = .5
    torch.testing.assert_close(out, torch.tensor([[-1.0], [2.0]]))
    brn.eval()
    torch.testing.assert_close(brn(x), x)


def test_batch_renorm_matches_running_stats_when_unclipped():
    brn = BatchRenorm1d(3, momentum=0.0, eps=1e-3, r_max=100.0, d_max=100.0, warmup_steps=0)
    brn.running_mean.copy_(torch.tensor([1.0, -2.0, 0.5]))
    brn.running_var.copy_(torch.tensor([4.0, 0.25, 1.0]))
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    train_out = brn(x)
    brn.eval()
    torch.testing.assert_close(train_out, brn(x), atol=1e-5, rtol=1e-5)


def test_batch_renorm_gradient_flows_and_bad_input():
    brn = BatchRenorm1d(2, warmup_steps=0)
    x = torch.randn(4, 2, requires_grad=True)
    brn(x).pow(2).sum().backward()
    assert x.grad is not None and brn.weight.grad is not None
    with pytest.raises(ValueError, match=r"x must be \[B, 2\]"):
        brn(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="at least 2"):
        brn(torch.zeros(1, 2))


def test_joint_forward_single_call_over_union():
    calls = []

    def critic(o, a):
        calls.append(o.shape[0])
        return torch.stack([o.sum(-1) + a.sum(-1), o.sum(-1) - a.sum(-1)])

    obs, next_obs = torch.ones(3, 2), 2 * torch.ones(3, 2)
    act, next_act = torch.zeros(3, 1), torch.ones(3, 1)
    q, nq = joint_critic_forward(critic, obs, act, next_obs, next_act)
    assert calls == [6]
    torch.testing.assert_close(q, torch.tensor([[2.0] * 3, [2.0] * 3]))
    torch.testing.assert_close(nq, torch.tensor([[5.0] * 3, [3.0] * 3]))


def test_joint_forward_uses_statistics_of_both_batches():
    torch.manual_seed(0)
    critic = CriticEnsemble(2, 1, hidden_dims=(8,), num_critics=2, norm="batchrenorm")
    obs = torch.randn(4, 2)
    next_obs = torch.randn(4, 2) + 3.0
    act, next_act = torch.randn(4, 1), torch.randn(4, 1)
    q, _ = joint_critic_forward(critic, obs, act, next_obs, next_act)
    separate = critic(obs, act)
    assert not torch.allclose(q, separate)


def test_crossq_critic_loss_hand_values_and_stop_gradient():
    w = torch.tensor([1.0, 2.0], requires_grad=True)

    def critic(o, a):
        x = o.sum(-1) + a.sum(-1)
        return torch.stack([w[0] * x, w[1] * x])

    obs = torch.tensor([[1.0], [0.0]])
    act = torch.tensor([[0.0], [1.0]])
    next_obs = torch.tensor([[2.0], [1.0]])
    next_act = torch.tensor([[0.0], [0.0]])
    rewards = torch.tensor([1.0, 0.0])
    term = torch.tensor([False, True])
    next_logp = torch.tensor([0.0, 0.0])
    loss, m = crossq_critic_loss(
        critic, obs, act, rewards, next_obs, term, next_act, next_logp, gamma=0.5, alpha=0.1
    )
    # x = [1, 1], next x = [2, 1]; next q min = [2, 1]; y = [1 + .5 * 2, 0] = [2, 0]
    # critic 0: q = [1, 1] -> ((1-2)^2 + 1) / 2 = 1; critic 1: q = [2, 2] -> (0 + 4) / 2 = 2
    assert loss.item() == pytest.approx(3.0)
    loss.backward()
    # Target is constant: d/dw0 = mean(2 (q - y) x) = (2 * -1 + 2 * 1) / 2 = 0; d/dw1 = 2
    torch.testing.assert_close(w.grad, torch.tensor([0.0, 2.0]))
    ref, _ = sac_critic_loss(torch.tensor([[1.0, 1.0], [2.0, 2.0]]), torch.tensor([2.0, 0.0]))
    assert m["critic_loss"].item() == pytest.approx(ref.item())


def test_crossq_bad_inputs():
    crit = CriticEnsemble(2, 1, hidden_dims=(4,), norm="batchrenorm")
    with pytest.raises(ValueError, match="next_obs has shape"):
        joint_critic_forward(
            crit, torch.zeros(3, 2), torch.zeros(3, 1), torch.zeros(2, 2), torch.zeros(3, 1)
        )
    with pytest.raises(ValueError, match="critic must return"):
        joint_critic_forward(
            lambda o, a: o,
            torch.zeros(3, 2),
            torch.zeros(3, 1),
            torch.zeros(3, 2),
            torch.zeros(3, 1),
        )
    with pytest.raises(ValueError, match="norm must be one of"):
        CriticEnsemble(2, 1, norm="groupnorm")
    assert any(isinstance(m, BatchRenorm1d) for m in crit.modules())
    assert not any(isinstance(m, nn.LayerNorm) for m in crit.modules())
