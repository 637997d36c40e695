"""Env state round trip: get_state -> more steps -> set_state -> the same actions give the
same observations, rewards and episode ends (mid-episode and across auto-resets)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlinf.envs import EnvConfig, make_env
from rlinf.envs._single import ChunkedEpisodeEnv

CASES = [
    ("CartPole-v1", "gym", "sync"),
    ("CartPole-v1", "gym", "async"),
    ("HalfCheetah-v5", "mujoco", "sync"),
    ("Pendulum-v1", "gym", "sync"),
]


def _play(env, actions: list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
    out = []
    for a in actions:
        r = env.step(a)
        out.append(
            (
                r.obs["state"].copy(),
                r.reward.copy(),
                r.info.done.copy(),
                r.info.final_obs["state"].copy(),
                r.info.episode_return.copy(),
                r.info.episode_length.copy(),
            )
        )
    return out


@pytest.mark.parametrize(("env_id", "kind", "backend"), CASES)
def test_round_trip_reproduces_steps_and_auto_resets(env_id, kind, backend):
    if kind == "mujoco":
        pytest.importorskip("mujoco")
    cfg = EnvConfig(
        env_id=env_id, kind=kind, num_envs=3, seed=5, backend=backend, max_episode_steps=12
    )
    with make_env(cfg) as env:
        env.reset()
        for _ in range(7):  # mid-episode: 7 of 12 steps done
            env.step(env.sample_actions())
        state = env.get_state()
        # Actions from the env's own sampler: its RNG is part of the state too.
        actions = [env.sample_actions() for _ in range(30)]
        first = _play(env, actions)
        after = env.sample_actions()
        env.set_state(state)
        for want in actions:
            np.testing.assert_array_equal(env.sample_actions(), want)
        np.testing.assert_array_equal(env.sample_actions(), after)
        env.set_state(state)
        again = _play(env, actions)
    assert sum(int(step[2].sum()) for step in first) >= 3  # auto-resets happened
    if env_id != "CartPole-v1":
        # No termination: time limit 12 from step 7 ends every episode at steps 5, 17, 29
        # (the elapsed steps and the episode length went through the state).
        assert [int(step[2].sum()) for step in first].count(3) == 3
        assert first[4][5].tolist() == [12, 12, 12]
    for a, b in zip(first, again, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)


def test_restored_env_continues_another_env_exactly():
    # The state moves between envs (as into a resumed run's freshly built workers).
    cfg = EnvConfig(env_id="CartPole-v1", num_envs=2, seed=3, max_episode_steps=40)
    with make_env(cfg) as a, make_env(EnvConfig(env_id="CartPole-v1", num_envs=2, seed=99)) as b:
        a.reset()
        b.reset()
        for _ in range(5):
            a.step(a.sample_actions())
        b.set_state(a.get_state())
        actions = [np.array([t % 2, (t // 3) % 2]) for t in range(60)]
        want, got = _play(a, actions), _play(b, actions)
    assert sum(int(s[2].sum()) for s in want) >= 2  # episodes ended (and reset from the RNG)
    for x, y in zip(want, got, strict=True):
        for u, v in zip(x, y, strict=True):
            np.testing.assert_array_equal(u, v)


def test_state_of_other_env_count_is_refused():
    with (
        make_env(EnvConfig(env_id="CartPole-v1", num_envs=2)) as a,
        make_env(EnvConfig(env_id="CartPole-v1", num_envs=3)) as b,
    ):
        a.reset()
        b.reset()
        with pytest.raises(ValueError, match="env state of 2 envs for 3 envs"):
            b.set_state(a.get_state())


class _OpaqueEnv(gym.Env):
    """State in an object rlinf cannot see into."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self) -> None:
        self.world = object()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, False, False, {}


def test_env_with_hidden_state_is_reported_not_snapshot():
    env = ChunkedEpisodeEnv(_OpaqueEnv(), 1, "opaque")
    env.reset(seed=0)
    assert "_OpaqueEnv keeps state that rlinf cannot save" in env.state_unsupported
    with pytest.raises(ValueError, match="only MuJoCo, classic-control and toy-text"):
        _ = env.episode_state


def test_worker_state_round_trip_and_layout_check():
    from rlinf.envs._worker_state import restore_worker_state, worker_state

    envs = [make_env(EnvConfig(env_id="CartPole-v1", num_envs=2, seed=s)) for s in (10, 12)]
    try:
        obs = [env.reset() for env in envs]
        state = worker_state(envs, [10, 12], obs, None)
        assert state is not None and state["responder"] is None
        want = [env.step(np.array([1, 0])).obs["state"] for env in envs]
        held = restore_worker_state("env worker 0", envs, [10, 12], None, state)
        for o, saved in zip(held, obs, strict=True):
            np.testing.assert_array_equal(o["state"], saved["state"])
        for env, w in zip(envs, want, strict=True):
            np.testing.assert_array_equal(env.step(np.array([1, 0])).obs["state"], w)
        with pytest.raises(ValueError, match=r"env worker 3: saved env state is of .*'seeds'"):
            restore_worker_state("env worker 3", envs, [14, 16], None, state)
    finally:
        for env in envs:
            env.close()
