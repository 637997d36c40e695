"""Registry, dict/image observations, success stats, MuJoCo extra."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from rlinf.core import Registry, RegistryError
from rlinf.envs import ENVS, EnvConfig, GymVectorEnv, make_env


class ToyDictEnv(gym.Env):
    """Dict obs with an image; succeeds (and terminates) at step 3 when action 1 was taken
    at step 1, reports ``is_success`` every step."""

    observation_space = spaces.Dict(
        {
            "state": spaces.Box(-np.inf, np.inf, (2,), np.float32),
            "rgb": spaces.Box(0, 255, (8, 8, 3), np.uint8),
        }
    )
    action_space = spaces.Discrete(2, start=1)  # actions are 1 and 2 in the env

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.first = 0, None
        return self._obs(), {}

    def step(self, action):
        assert action in (1, 2)
        self.t += 1
        self.first = action if self.first is None else self.first
        done = self.t == 3
        success = done and self.first == 2
        return self._obs(), 0.5, done, False, {"is_success": success}

    def _obs(self):
        img = np.full((8, 8, 3), self.t, np.uint8)
        return {"state": np.array([self.t, -self.t], np.float32), "rgb": img}


gym.register("rlinf-test/ToyDict-v0", entry_point=ToyDictEnv)


def _has_mujoco() -> bool:
    try:
        import mujoco  # noqa: F401
    except ImportError:
        return False
    return True


HAS_MUJOCO = _has_mujoco()


def test_dict_image_obs_and_success_stats():
    with GymVectorEnv(EnvConfig("rlinf-test/ToyDict-v0", num_envs=2, chunk_size=2)) as env:
        spec = env.observation_spec
        assert spec["rgb"].is_image and not spec["state"].is_image
        obs = env.reset()
        assert obs["rgb"].shape == (2, 8, 8, 3) and obs["rgb"].dtype == np.uint8
        env.step(np.array([[1, 0], [0, 0]]))  # policy action 1 -> env action 2
        res = env.step(np.array([[0, 0], [0, 0]]))
    assert res.terminated.all()
    np.testing.assert_array_equal(res.info.chunk_executed, [1, 1])
    np.testing.assert_array_equal(res.info.final_obs["rgb"][:, 0, 0, 0], [3, 3])
    np.testing.assert_array_equal(res.obs["rgb"][:, 0, 0, 0], [0, 0])
    eps = res.info.completed_episodes()
    np.testing.assert_array_equal(eps["env"], [0, 1])
    np.testing.assert_array_equal(eps["success"], [1.0, 0.0])
    np.testing.assert_array_equal(eps["length"], [3, 3])
    np.testing.assert_allclose(eps["return"], [1.5, 1.5])


def test_discrete_observation_is_one_hot():
    with GymVectorEnv(EnvConfig("FrozenLake-v1", num_envs=2)) as env:
        assert env.observation_spec["state"].shape == (16,)
        obs = env.reset()
    np.testing.assert_array_equal(obs["state"].sum(axis=1), [1.0, 1.0])
    assert obs["state"][0, 0] == 1.0  # FrozenLake starts in cell 0


def test_registry_lookup_lazy_and_extra_hint():
    assert isinstance(ENVS, Registry)  # core's registry, not one of its own
    assert "gym" in ENVS and list(ENVS) == ["gym", "maniskill", "metaworld", "mujoco"]
    assert ENVS.get("gym") is GymVectorEnv
    with pytest.raises(
        RegistryError, match=r"unknown env 'nope'; valid names: gym, maniskill, metaworld, mujoco"
    ):
        make_env(EnvConfig("CartPole-v1", kind="nope"))
    reg: Registry = Registry("env")
    reg.register(
        "fake", "rlinf_not_installed_pkg.sim:make", install_hint="pip install 'rlinf-envs[fakesim]'"
    )
    reg.register("direct", GymVectorEnv)
    with pytest.raises(RegistryError, match=r"pip install 'rlinf-envs\[fakesim\]'"):
        reg.get("fake")
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("direct", GymVectorEnv)
    with pytest.raises(RegistryError, match="module:attr"):
        reg.register("bad", "no_colon")
    assert reg.get("direct") is GymVectorEnv


@pytest.mark.skipif(HAS_MUJOCO, reason="mujoco installed")
def test_mujoco_without_extra_names_it():
    with pytest.raises(ImportError, match=r"'HalfCheetah-v5'.*rlinf-envs\[mujoco\]"):
        make_env(EnvConfig("HalfCheetah-v5", kind="mujoco"))


@pytest.mark.skipif(not HAS_MUJOCO, reason="needs rlinf-envs[mujoco]")
def test_mujoco_halfcheetah():
    with make_env(EnvConfig("HalfCheetah-v5", kind="mujoco", num_envs=2)) as env:
        assert env.observation_spec["state"].shape == (17,)
        assert env.action_spec.shape == (6,)
        env.reset()
        res = env.step(env.sample_actions())
    assert res.reward.shape == (2,)


def test_envs_package_imports_no_models_or_apps():
    import subprocess
    import sys

    code = (
        "import sys, rlinf.envs; "
        "bad = [m for m in sys.modules if m.startswith(('rlinf.models', 'rlinf.apps', 'torch'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
