"""Meta-World adapter: spaces, reset/step against metaworld itself, success, MT10, errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlinf.envs import EnvCheckError, EnvConfig, check_env, make_env
from rlinf.envs._metaworld import EverSucceeded

metaworld = pytest.importorskip("metaworld")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_mt1_spaces_and_distinct_goals():
    config = EnvConfig("reach-v3", kind="metaworld", num_envs=3, seed=0)
    with make_env(config) as env:
        assert env.observation_spec["state"].shape == (39,)
        assert env.observation_spec["state"].dtype == np.float32
        spec = env.action_spec
        assert spec.kind == "continuous" and spec.shape == (4,)
        np.testing.assert_array_equal(spec.low, -np.ones(4))
        np.testing.assert_array_equal(spec.high, np.ones(4))
        obs = env.reset()
        assert obs["state"].shape == (3, 39) and obs["state"].dtype == np.float32
        goals = obs["state"][:, 36:39]  # the observed goal position
        assert len({tuple(g) for g in goals}) == 3


def test_step_matches_metaworld_and_episodes_truncate():
    actions = np.random.default_rng(0).uniform(-1, 1, (30, 4)).astype(np.float32)
    ref = metaworld.make_mt_envs("reach-v3", seed=5, max_episode_steps=20)
    first, _ = ref.reset(seed=5)
    ref_rewards, ref_obs = [], []
    for a in actions[:20]:
        o, r, _, _, _ = ref.step(a)
        ref_rewards.append(r)
        ref_obs.append(o)
    config = EnvConfig("reach-v3", kind="metaworld", num_envs=1, seed=5, max_episode_steps=20)
    with make_env(config) as env:
        obs = env.reset()
        np.testing.assert_allclose(obs["state"][0], first, rtol=1e-6)
        for t, a in enumerate(actions):
            out = env.step(a[None])
            if t < 20:
                assert out.reward[0] == pytest.approx(ref_rewards[t])
                np.testing.assert_allclose(out.info.final_obs["state"][0], ref_obs[t], rtol=1e-6)
            # Episodes always run to the time limit: truncated, never terminated.
            assert not out.terminated[0]
            assert out.truncated[0] == (t == 19)
            if t == 19:
                assert out.info.episode_length[0] == 20
                assert out.info.episode_return[0] == pytest.approx(sum(ref_rewards))
                assert out.info.success_reported[0]


def test_scripted_reach_succeeds_and_random_fails():
    from metaworld.policies import SawyerReachV3Policy

    policy = SawyerReachV3Policy()
    config = EnvConfig("reach-v3", kind="metaworld", num_envs=2, seed=0, max_episode_steps=150)
    with make_env(config) as env:
        obs = env.reset()
        rng = np.random.default_rng(1)
        for _ in range(150):
            scripted = policy.get_action(obs["state"][0].astype(np.float64))
            random = rng.uniform(-0.05, 0.05, 4)  # barely moves: never reaches the goal
            out = env.step(np.stack([scripted, random]))
            obs = out.obs
        assert out.info.done.all()
        np.testing.assert_array_equal(out.info.success_reported, [True, True])
        np.testing.assert_array_equal(out.info.episode_success, [True, False])


class _Flicker(gym.Env):
    """success per step 0, 1, 0, 0: reached, then left the goal."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(2), {}

    def step(self, action):
        self.t += 1
        return np.full(2, 0.5), 1.0, False, self.t == 4, {"success": float(self.t == 2)}


def test_ever_succeeded_keeps_success_and_casts_obs():
    env = EverSucceeded(_Flicker())
    assert env.observation_space.dtype == np.float32
    for _ in range(2):  # reset clears the flag
        obs, _ = env.reset()
        assert obs.dtype == np.float32
        flags = [env.step(np.zeros(1))[4]["success"] for _ in range(4)]
        assert flags == [False, True, True, True]


def test_mt10_assigns_tasks_with_one_hot_ids():
    config = EnvConfig("MT10", kind="metaworld", num_envs=10, seed=0, max_episode_steps=5)
    with make_env(config) as env:
        assert env.observation_spec["state"].shape == (49,)
        obs = env.reset()["state"]
        np.testing.assert_array_equal(obs[:, 39:], np.eye(10, dtype=np.float32))
        for _ in range(5):
            out = env.step(env.sample_actions())
        assert out.info.done.all() and out.info.success_reported.all()


def test_bad_configs_are_named():
    with pytest.raises(ValueError, match="num_envs must be a multiple of 10"):
        make_env(EnvConfig("MT10", kind="metaworld", num_envs=5))
    with pytest.raises(EnvCheckError, match=r"env.num_envs: 'MT10' has 10 tasks"):
        check_env(EnvConfig("MT10", kind="metaworld", num_envs=12))
    with pytest.raises(EnvCheckError, match=r"env.env_id: 'reach-v9' is not a Meta-World"):
        check_env(EnvConfig("reach-v9", kind="metaworld"))
    check_env(EnvConfig("reach-v3", kind="metaworld", num_envs=3))
    check_env(EnvConfig("MT50", kind="metaworld", num_envs=50))
