import pytest
import torch

from rlinf.algos import dynamic_sampling_filter, overlong_reward_penalty


def test_dynamic_sampling_filter_drops_all_equal_groups():
    r = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 2.0, 2.0, 2.0, 0.0, 0.0, 1.0])
    keep, dropped = dynamic_sampling_filter(r, 3)
    assert dropped == 2 and isinstance(dropped, int)
    assert keep.tolist() == [False] * 3 + [True] * 3 + [False] * 3 + [True] * 3
    assert r[keep].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0, 1.0]


def test_dynamic_sampling_filter_tolerance():
    r = torch.tensor([1.0, 1.0 + 1e-5, 0.0, 1.0])
    assert dynamic_sampling_filter(r, 2)[1] == 0
    assert dynamic_sampling_filter(r, 2, atol=1e-3)[1] == 1


def test_overlong_penalty_hand_values():
    lengths = torch.tensor([10, 15, 16, 18, 20, 21, 100])
    out = overlong_reward_penalty(lengths, max_length=20, buffer_length=5)
    torch.testing.assert_close(out, torch.tensor([0.0, 0.0, -0.2, -0.6, -1.0, -1.0, -1.0]))
    out = overlong_reward_penalty(lengths, max_length=20, buffer_length=5, penalty_factor=0.5)
    torch.testing.assert_close(out, torch.tensor([0.0, 0.0, -0.1, -0.3, -0.5, -0.5, -0.5]))


def test_dapo_bad_inputs():
    with pytest.raises(ValueError, match="not a positive multiple"):
        dynamic_sampling_filter(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="rewards contains NaN"):
        dynamic_sampling_filter(torch.tensor([0.0, float("nan")]), 2)
    with pytest.raises(ValueError, match="buffer_length must be in"):
        overlong_reward_penalty(torch.tensor([1]), max_length=10, buffer_length=0)
    with pytest.raises(ValueError, match="lengths must be non-negative"):
        overlong_reward_penalty(torch.tensor([-1]), max_length=10, buffer_length=2)
