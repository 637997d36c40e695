"""RunningNormalizer: equals numpy mean/var over concatenated data; state_dict round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlinf.models import PolicyConfig, RunningNormalizer, build_policy


def test_matches_numpy_over_concatenated_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) * [1, 10, 0.1, 1] for n in (1, 7, 100, 3, 50)]
    norm = RunningNormalizer((4,))
    for b in batches:
        norm.update(torch.as_tensor(b, dtype=torch.float32))
    data = np.concatenate(batches).astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(0), rtol=1e-10)
    np.testing.assert_allclose(norm.var.numpy(), data.var(0), rtol=1e-10)
    assert float(norm.count) == len(data)
    x = torch.as_tensor(data[:5], dtype=torch.float32)
    expected = (data[:5] - data.mean(0)) / np.sqrt(data.var(0) + 1e-8)
    np.testing.assert_allclose(norm(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_clip_identity_and_state_dict_round_trip():
    norm = RunningNormalizer((2,), clip=3.0)
    x = torch.tensor([[0.5, -100.0]])
    torch.testing.assert_close(norm(x), torch.tensor([[0.5, -3.0]]))
    norm.update(torch.randn(10, 2) * 5 + 1)
    other = RunningNormalizer((2,), clip=3.0)
    other.load_state_dict(norm.state_dict())
    torch.testing.assert_close(other(x), norm(x))
    assert set(norm.state_dict()) == {"mean", "var", "count"}


def test_rejects_bad_batches():
    norm = RunningNormalizer((2,))
    with pytest.raises(ValueError, match="batch"):
        norm.update(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="NaN"):
        norm.update(torch.tensor([[float("nan"), 0.0]]))


def test_policy_normalizer_is_saved_and_used():
    from types import SimpleNamespace

    spec = {"state": SimpleNamespace(shape=(3,), dtype=np.dtype("float32"))}
    action = SimpleNamespace(kind="discrete", shape=(), n=2, low=None, high=None)
    policy = build_policy(PolicyConfig(normalize_obs=True), spec, action)
    obs = {"state": torch.randn(50, 3) * 100 + 40}
    before = policy.value(obs)
    policy.update_obs_normalizer(obs)
    assert float(policy.normalizers["state"].count) == 50
    assert not torch.allclose(policy.value(obs), before)
    clone = build_policy(PolicyConfig(normalize_obs=True), spec, action)
    clone.load_state_dict(policy.state_dict())
    torch.testing.assert_close(clone.value(obs), policy.value(obs))
    # One set of statistics, shared by actor and critic encoders.
    assert policy.actor_encoder.normalizers is policy.critic_encoder.normalizers


def test_output_follows_every_change_of_the_statistics():
    # The float32 statistics are cached; a merge, a state_dict load or a move must not
    # leave a stale copy behind.
    torch.manual_seed(0)
    norm = RunningNormalizer((3,))
    x = torch.randn(5, 3)

    def expected():
        return ((x.double() - norm.mean) / torch.sqrt(norm.var + norm.eps)).clamp(-10, 10).float()

    torch.testing.assert_close(norm(x), expected())
    norm.update(torch.randn(50, 3) * 4 + 2)
    torch.testing.assert_close(norm(x), expected())
    other = RunningNormalizer((3,))
    other.update(torch.randn(50, 3) - 5)
    norm.load_state_dict(other.state_dict())
    torch.testing.assert_close(norm(x), expected())
    norm.to(torch.device("cpu"))
    torch.testing.assert_close(norm(x), expected())
    assert norm(x.double()).dtype == torch.float64
