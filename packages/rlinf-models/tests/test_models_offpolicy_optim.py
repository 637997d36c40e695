"""The learner's fused Adam and foreach Polyak step equal the plain ones."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from rlinf.algos import polyak_update
from rlinf.models.embodied._offpolicy_optim import adam, polyak_pairs, polyak_step


def _net() -> nn.Module:
    torch.manual_seed(0)
    # BatchNorm brings float running stats and an integer step counter.
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def test_polyak_step_equals_polyak_update():
    source, target = _net(), _net()
    with torch.no_grad():
        for p in target.parameters():
            p.add_(1.0)
    source(torch.randn(16, 4))  # moves the running stats and the counter
    reference = copy.deepcopy(target)
    polyak_update(reference, source, 0.25)
    polyak_step(polyak_pairs(target, source), 0.25)
    for (name, got), want in zip(
        target.state_dict().items(), reference.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(got, want, msg=name)
    assert int(target[1].num_batches_tracked) == 1


def test_polyak_pairs_refuses_other_structures():
    with pytest.raises(ValueError, match="different parameters"):
        polyak_pairs(nn.Linear(4, 2), nn.Sequential(nn.Linear(4, 2)))


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))


@pytest.mark.parametrize("threads", [1, 2])
def test_fused_adam_matches_plain_adam(threads):
    # No BatchNorm here: the bias in front of one has a gradient of ~0 (rounding noise),
    # where Adam's g / (sqrt(v) + eps) amplifies the last bit into visible steps and the
    # two kernels legitimately differ.
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _compare_adam()
    finally:
        torch.set_num_threads(before)


def _compare_adam() -> None:
    a, b = _mlp(), _mlp()
    fused = adam(list(a.parameters()), 1e-2, (0.5, 0.999))
    plain = torch.optim.Adam(b.parameters(), 1e-2, betas=(0.5, 0.999))
    x = torch.randn(16, 4)
    for _ in range(3):
        for net, opt in ((a, fused), (b, plain)):
            opt.zero_grad(set_to_none=True)
            net(x).pow(2).mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
