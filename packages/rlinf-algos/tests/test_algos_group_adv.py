import math

import pytest
import torch

from rlinf.algos import (
    broadcast_to_tokens,
    drgrpo_advantages,
    grpo_advantages,
    reinforce_pp_advantages,
    reinforce_pp_baseline_advantages,
    rloo_advantages,
)

D = torch.float64


def test_grpo_hand_values():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 5.0], dtype=D)
    adv = grpo_advantages(r, 4, eps=0.0)
    # group 1: mean .5, unbiased std sqrt(1/3); group 2: mean 2.75, std 1.5
    s = 0.5 / math.sqrt(1 / 3)
    expected = torch.tensor([s, -s, -s, s, -0.5, -0.5, -0.5, 1.5], dtype=D)
    torch.testing.assert_close(adv, expected)


def test_grpo_zero_mean_per_group_and_unit_std():
    r = torch.randn(5 * 6, generator=torch.Generator().manual_seed(0), dtype=D)
    adv = grpo_advantages(r, 6, eps=0.0).view(5, 6)
    torch.testing.assert_close(adv.mean(dim=1), torch.zeros(5, dtype=D))
    torch.testing.assert_close(adv.std(dim=1), torch.ones(5, dtype=D))


def test_drgrpo_no_std_scaling():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 5.0], dtype=D)
    expected = torch.tensor([0.5, -0.5, -0.5, 0.5, -0.75, -0.75, -0.75, 2.25], dtype=D)
    torch.testing.assert_close(drgrpo_advantages(r, 4), expected)
    torch.testing.assert_close(grpo_advantages(r, 4, scale_by_std=False), expected)
    torch.testing.assert_close(drgrpo_advantages(r, 4).view(2, 4).mean(1), torch.zeros(2, dtype=D))


def test_grpo_all_equal_group_is_zero_not_nan():
    adv = grpo_advantages(torch.tensor([1.0, 1.0, 1.0]), 3)
    assert torch.equal(adv, torch.zeros(3))


def test_rloo_matches_loop():
    r = torch.randn(12, generator=torch.Generator().manual_seed(1), dtype=D)
    k = 4
    ref = []
    for i in range(12):
        g0 = (i // k) * k
        others = [r[j].item() for j in range(g0, g0 + k) if j != i]
        ref.append(r[i].item() - sum(others) / len(others))
    torch.testing.assert_close(rloo_advantages(r, k), torch.tensor(ref, dtype=D))


def test_rloo_hand():
    torch.testing.assert_close(
        rloo_advantages(torch.tensor([1.0, 0.0, 0.0]), 3), torch.tensor([1.0, -0.5, -0.5])
    )


def test_reinforce_pp_matches_loop():
    rewards = torch.tensor(
        [[0.0, -0.1, 0.0, 1.0], [0.2, 0.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0]], dtype=D
    )
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    gamma = 0.9
    returns = []
    for b in range(3):
        valid = [t for t in range(4) if mask[b, t]]
        g, row = 0.0, {}
        for t in reversed(valid):
            g = rewards[b, t].item() + gamma * g
            row[t] = g
        returns.append(row)
    flat = [x for row in returns for x in row.values()]
    mean = sum(flat) / len(flat)
    std = math.sqrt(sum((x - mean) ** 2 for x in flat) / (len(flat) - 1))
    expected = torch.zeros(3, 4, dtype=D)
    for b, row in enumerate(returns):
        for t, g in row.items():
            expected[b, t] = (g - mean) / std
    adv = reinforce_pp_advantages(rewards, mask, gamma=gamma, eps=0.0)
    torch.testing.assert_close(adv, expected)
    raw = reinforce_pp_advantages(rewards, mask, gamma=gamma, whiten=False)
    # row 0 by hand: G3 = 1, G2 = .9, G1 = -.1 + .81, G0 = .9 * .71
    torch.testing.assert_close(raw[0], torch.tensor([0.639, 0.71, 0.9, 1.0], dtype=D))


def test_reinforce_pp_baseline_hand():
    rewards = torch.tensor([1.0, 0.0, 3.0, 3.0], dtype=D)
    mask = torch.tensor([[1, 1], [1, 0], [1, 1], [1, 1]], dtype=torch.bool)
    adv = reinforce_pp_baseline_advantages(rewards, mask, 2, eps=0.0)
    # centered per group: [.5, -.5, 0, 0]; tokens: .5,.5,-.5,0,0,0,0 -> mean 1/14
    toks = torch.tensor([0.5, 0.5, -0.5, 0.0, 0.0, 0.0, 0.0], dtype=D)
    z = (toks - toks.mean()) / toks.std()
    expected = torch.tensor([[z[0], z[1]], [z[2], 0.0], [z[3], z[4]], [z[5], z[6]]], dtype=D)
    torch.testing.assert_close(adv, expected)


def test_broadcast_to_tokens():
    out = broadcast_to_tokens(torch.tensor([2.0, -1.0]), torch.tensor([[1, 1, 0], [1, 0, 0]]))
    torch.testing.assert_close(out, torch.tensor([[2.0, 2.0, 0.0], [-1.0, 0.0, 0.0]]))


def test_group_bad_inputs():
    with pytest.raises(ValueError, match="not a positive multiple of group_size=4"):
        grpo_advantages(torch.zeros(6), 4)
    with pytest.raises(ValueError, match="rewards contains NaN"):
        grpo_advantages(torch.tensor([0.0, float("nan")]), 2)
    with pytest.raises(ValueError, match="rewards must be 1-D"):
        rloo_advantages(torch.zeros(2, 2), 2)
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        rloo_advantages(torch.zeros(3), 1)
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        grpo_advantages(torch.zeros(3), 1)
    with pytest.raises(ValueError, match="mask is empty"):
        reinforce_pp_advantages(torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask has shape"):
        reinforce_pp_advantages(torch.zeros(2, 2), torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be"):
        reinforce_pp_baseline_advantages(torch.zeros(4), torch.ones(3, 2), 2)
