"""SyncEnvs returns exactly what gymnasium's SyncVectorEnv (SAME_STEP autoreset) returns."""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from rlinf.envs import EnvConfig
from rlinf.envs._single import make_single_env
from rlinf.envs._sync_vector import SyncEnvs, batch_infos


def _assert_same(ours: Any, ref: Any, where: str) -> None:
    if isinstance(ref, dict):
        assert isinstance(ours, dict), where
        assert sorted(ours) == sorted(ref), f"{where}: keys {sorted(ours)} vs {sorted(ref)}"
        for key in ref:
            _assert_same(ours[key], ref[key], f"{where}.{key}")
    elif isinstance(ref, np.ndarray) and ref.dtype == object:
        assert ours.dtype == object and ours.shape == ref.shape, where
        for i, (a, b) in enumerate(zip(ours, ref, strict=True)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(ref, np.ndarray):
        assert isinstance(ours, np.ndarray), where
        assert ours.dtype == ref.dtype and ours.shape == ref.shape, where
        np.testing.assert_array_equal(ours, ref, err_msg=where)
    else:
        assert ours == ref, f"{where}: {ours!r} vs {ref!r}"


@pytest.mark.parametrize(
    ("env_id", "max_steps", "chunk"),
    [("CartPole-v1", 30, 1), ("CartPole-v1", None, 3), ("Pendulum-v1", 25, 2)],
)
def test_matches_gymnasium_sync_vector_env(env_id, max_steps, chunk):
    cfg = EnvConfig(
        env_id=env_id, num_envs=4, seed=0, max_episode_steps=max_steps, chunk_size=chunk
    )
    fns = [functools.partial(make_single_env, cfg) for _ in range(cfg.num_envs)]
    ours = SyncEnvs(fns)
    ref = gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    obs, info = ours.reset(seed=7)
    ref_obs, ref_info = ref.reset(seed=7)
    _assert_same(obs, ref_obs, "reset obs")
    _assert_same(info, ref_info, "reset info")
    rng = np.random.default_rng(0)
    ended = 0
    for t in range(120):
        actions = np.asarray(
            rng.integers(0, 2, size=(4, chunk))
            if env_id.startswith("CartPole")
            else rng.uniform(-2, 2, size=(4, chunk, 1)).astype(np.float32)
        )
        got = ours.step(actions)
        want = ref.step(actions)
        for name, a, b in zip(
            ("obs", "reward", "terminated", "truncated", "info"), got, want, strict=True
        ):
            _assert_same(a, b, f"step {t} {name}")
        ended += int(np.logical_or(got[2], got[3]).sum())
    assert ended >= 4  # the comparison covered auto-resets
    ours.close()
    ref.close()


def test_observations_are_fresh_arrays_every_step():
    cfg = EnvConfig(env_id="CartPole-v1", num_envs=2, seed=0)
    envs = SyncEnvs([functools.partial(make_single_env, cfg)] * 2)
    first, _ = envs.reset(seed=0)
    kept = first["state"].copy()
    second = envs.step(np.zeros((2, 1), np.int64))[0]
    assert second["state"] is not first["state"]
    np.testing.assert_array_equal(first["state"], kept)


def test_batch_infos_layout():
    infos = [(0, {"a": 1, "x": np.ones(2), "d": {"b": True}}), (2, {"a": 3, "s": "txt"})]
    out = batch_infos(infos, 3)
    np.testing.assert_array_equal(out["a"], [1, 0, 3])
    assert out["a"].dtype == np.int_
    np.testing.assert_array_equal(out["_a"], [True, False, True])
    assert out["x"].shape == (3, 2) and out["_x"].tolist() == [True, False, False]
    assert out["d"]["b"].tolist() == [True, False, False] and out["_d"].tolist() == [
        True,
        False,
        False,
    ]
    assert out["s"].dtype == object and out["s"][2] == "txt" and out["s"][0] is None


def test_seed_list_length_is_checked():
    cfg = EnvConfig(env_id="CartPole-v1", num_envs=2, seed=0)
    envs = SyncEnvs([functools.partial(make_single_env, cfg)] * 2)
    with pytest.raises(ValueError, match="3 seeds for 2 envs"):
        envs.reset(seed=[1, 2, 3])
