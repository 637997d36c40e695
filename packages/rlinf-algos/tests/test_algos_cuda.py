"""The same functions on a CUDA device give the CPU results (skipped without CUDA)."""

import pytest
import torch

from rlinf.algos import (
    ReplayBuffer,
    chunked_entropy_from_logits,
    decoupled_ppo_loss,
    gae_advantages,
    grpo_advantages,
    ppo_policy_loss,
    rlpd_critic_target,
    sample_mixed,
    value_loss,
)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def both(*tensors):
    return [t for t in tensors], [t.cuda() for t in tensors]


def test_on_policy_functions_match_cpu():
    g = torch.Generator().manual_seed(0)
    r, v, nv = (torch.randn(4, 16, generator=g) for _ in range(3))
    term = torch.rand(4, 16, generator=g) < 0.1
    trunc = torch.rand(4, 16, generator=g) < 0.1
    mask = torch.rand(4, 16, generator=g) < 0.9
    cpu, gpu = both(r, v, nv, term, trunc, mask)
    kw = {"gamma": 0.99, "lam": 0.95}
    a_cpu, _ = gae_advantages(
        cpu[0], cpu[1], next_values=cpu[2], terminated=cpu[3], truncated=cpu[4], mask=cpu[5], **kw
    )
    a_gpu, _ = gae_advantages(
        gpu[0], gpu[1], next_values=gpu[2], terminated=gpu[3], truncated=gpu[4], mask=gpu[5], **kw
    )
    torch.testing.assert_close(a_gpu.cpu(), a_cpu)
    torch.testing.assert_close(
        grpo_advantages(r[:, 0].cuda(), 2).cpu(), grpo_advantages(r[:, 0], 2)
    )
    lc, mc = ppo_policy_loss(cpu[0], cpu[1], cpu[2], cpu[5], rollout_log_probs=cpu[1] * 0.9)
    lg, mg = ppo_policy_loss(gpu[0], gpu[1], gpu[2], gpu[5], rollout_log_probs=gpu[1] * 0.9)
    torch.testing.assert_close(lg.cpu(), lc)
    for k in mc:
        torch.testing.assert_close(mg[k].cpu(), mc[k])
    ld, _ = decoupled_ppo_loss(gpu[0], gpu[1], gpu[2], gpu[1], gpu[5])
    assert torch.isfinite(ld)
    vl, _ = value_loss(gpu[0], gpu[1], gpu[5], old_values=gpu[2], clip=0.2)
    assert vl.device.type == "cuda"
    logits = torch.randn(64, 1000, generator=g)
    torch.testing.assert_close(
        chunked_entropy_from_logits(logits.cuda().bfloat16(), chunk_size=16).cpu(),
        chunked_entropy_from_logits(logits.bfloat16(), chunk_size=16),
        atol=1e-3,
        rtol=1e-3,
    )


def test_off_policy_and_replay_on_cuda():
    next_q = torch.randn(10, 8, device="cuda")
    y, _ = rlpd_critic_target(
        torch.zeros(8, device="cuda"),
        torch.zeros(8, dtype=torch.bool, device="cuda"),
        next_q,
        gamma=0.9,
    )
    assert y.device.type == "cuda"
    a, b = ReplayBuffer(16, device="cuda"), ReplayBuffer(16, device="cuda")
    a.add({"x": torch.ones(5, 2)})
    b.add({"x": -torch.ones(5, 2)})
    batch = sample_mixed(a, b, 8, generator=torch.Generator().manual_seed(0))
    assert batch["x"].device.type == "cuda" and int((batch["x"][:, 0] > 0).sum()) == 4
