"""The ManiSkill3 adapter: CPU simulator (in-process and one process per env), GPU simulator.

ManiSkill needs a Vulkan device even for state observations (on a CPU-only machine, Mesa's
lavapipe: see the README). Whether it can build an env here is probed once, in a subprocess
(a broken Vulkan driver may abort a process rather than raise); without the extra or without
a device the simulator tests skip with the probe's reason.
"""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from rlinf.envs import EnvConfig, GymVectorEnv, make_env

HAS_MANISKILL = importlib.util.find_spec("mani_skill") is not None
TASK = "PushCube-v1"
STATE_DIM = 35  # PushCube-v1's state observation with pd_joint_delta_pos
ACTION_DIM = 8  # 7 arm joints + gripper

_PROBE = (
    "from rlinf.envs import EnvConfig, make_env\n"
    f"env = make_env(EnvConfig({TASK!r}, kind='maniskill'))\n"
    "env.reset()\n"
    "env.close()\n"
)


@functools.cache
def _simulator_unavailable() -> str | None:
    """Why ManiSkill cannot simulate here, or None if it can."""
    if not HAS_MANISKILL:
        return "needs rlinf-envs[maniskill] (mani_skill is not importable)"
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300
    )
    if proc.returncode == 0:
        return None
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else f"exit status {proc.returncode}"
    return f"ManiSkill cannot build {TASK} here (no usable Vulkan device?): {last}"


@pytest.fixture
def simulator() -> None:
    reason = _simulator_unavailable()
    if reason is not None:
        pytest.skip(reason)


# ManiSkill 3.0.1 calls np.isnan on torch tensors (numpy 2 deprecation): its issue, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array_wrap__:DeprecationWarning")
needs_maniskill = pytest.mark.skipif(not HAS_MANISKILL, reason="needs rlinf-envs[maniskill]")


def _config(num_envs: int = 2, **kwargs: object) -> EnvConfig:
    return EnvConfig(TASK, kind="maniskill", num_envs=num_envs, **kwargs)


def _rollout(env, steps: int, seed: int) -> list[np.ndarray]:
    """Observations, rewards and done flags of ``steps`` steps under seeded random actions."""
    rng = np.random.default_rng(seed)
    out = [env.reset(seed=seed)["state"]]
    for _ in range(steps):
        shape = (env.num_envs, env.chunk_size, *env.action_spec.shape)
        res = env.step(rng.uniform(-1, 1, shape).astype(np.float32))
        out += [res.obs["state"], res.info.final_obs["state"], res.reward, res.info.done]
    return out


def _put_cube_on_goal(task) -> None:
    """Place a PushCube-v1 task's cube on its goal (random actions almost never get it there)."""
    from mani_skill.utils.structs.pose import Pose

    goal = task.goal_region.pose.p.clone()
    goal[..., 2] = task.cube_half_size
    task.obj.set_pose(Pose.create_from_pq(p=goal))


@pytest.mark.skipif(HAS_MANISKILL, reason="mani_skill installed")
def test_missing_extra_names_it():
    with pytest.raises(ImportError, match=r"'PushCube-v1'.*rlinf-envs\[maniskill\]"):
        make_env(_config())


@needs_maniskill
def test_config_errors_name_env_and_problem():
    with pytest.raises(ValueError, match=r"'NoSuchTask-v0' is not a ManiSkill task"):
        make_env(EnvConfig("NoSuchTask-v0", kind="maniskill"))
    with pytest.raises(ValueError, match=r"'PushCube-v1': obs_mode must be one of"):
        make_env(_config(env_kwargs={"obs_mode": "pointcloud"}))
    with pytest.raises(ValueError, match=r"'PushCube-v1': sim_backend must be"):
        make_env(_config(env_kwargs={"sim_backend": "mjx"}))
    with pytest.raises(ValueError, match=r"EnvConfig.num_envs"):
        make_env(_config(env_kwargs={"num_envs": 4}))


@needs_maniskill
def test_auto_sim_backend_follows_cuda():
    import torch

    from rlinf.envs._maniskill_setup import make_kwargs

    auto = {"sim_backend": "auto"}
    on_gpu = torch.cuda.is_available()
    kwargs = make_kwargs(_config(env_kwargs=auto))
    assert kwargs["sim_backend"] == ("physx_cuda" if on_gpu else "physx_cpu")
    # Only the CPU simulator gets per-env deterministic resets.
    assert kwargs.get("enhanced_determinism", False) is not on_gpu
    # One process per env is a CPU-simulator layout: "auto" never picks the GPU there.
    parallel = make_kwargs(_config(backend="async", env_kwargs=auto))
    assert parallel["sim_backend"] == "physx_cpu"


def test_state_reset_step_shapes(simulator):
    with make_env(_config(num_envs=2)) as env:
        assert isinstance(env, GymVectorEnv)
        assert env.observation_spec["state"].shape == (STATE_DIM,)
        assert env.action_spec.kind == "continuous" and env.action_spec.shape == (ACTION_DIM,)
        np.testing.assert_array_equal(env.action_spec.low, -1.0)
        obs = env.reset()
        assert set(obs) == {"state"}
        assert obs["state"].shape == (2, STATE_DIM) and obs["state"].dtype == np.float32
        res = env.step(env.sample_actions())
    assert res.obs["state"].shape == (2, STATE_DIM)
    assert res.reward.shape == (2,) and res.reward.dtype == np.float64
    assert res.terminated.dtype == bool and res.truncated.dtype == bool
    assert not res.info.done.any()
    # normalized_dense rewards lie in [0, 1]
    assert ((res.reward >= 0) & (res.reward <= 1)).all()


def test_bad_actions_raise_before_stepping(simulator):
    with make_env(_config(num_envs=2)) as env:
        env.reset()
        with pytest.raises(ValueError, match=r"'PushCube-v1': actions must have shape"):
            env.step(np.zeros((2, ACTION_DIM + 1), np.float32))
        actions = np.zeros((2, ACTION_DIM), np.float32)
        actions[1, 3] = np.nan
        with pytest.raises(ValueError, match=r"'PushCube-v1': actions contain NaN.*\[1\]"):
            env.step(actions)
        res = env.step(np.full((2, ACTION_DIM), 5.0))  # clipped to the bounds, not an error
    assert res.obs["state"].shape == (2, STATE_DIM)


def test_autoreset_final_obs_and_chunks(simulator):
    config = _config(num_envs=2, max_episode_steps=3, chunk_size=2)
    with make_env(config) as env:
        first = env.reset(seed=5)["state"]
        res1 = env.step(env.sample_actions())
        assert not res1.info.done.any()
        np.testing.assert_array_equal(res1.info.chunk_executed, [2, 2])
        res2 = env.step(env.sample_actions())  # the 3rd primitive step ends both episodes
    assert res2.truncated.all() and not res2.terminated.any()
    np.testing.assert_array_equal(res2.info.chunk_executed, [1, 1])
    np.testing.assert_array_equal(res2.info.chunk_rewards[:, 1], [0.0, 0.0])
    np.testing.assert_array_equal(res2.info.episode_length, [3, 3])
    np.testing.assert_allclose(
        res2.info.episode_return, res1.reward + res2.reward, rtol=1e-6, atol=1e-9
    )
    # final_obs is the episode's last state, obs the first state of the next episode
    assert not np.allclose(res2.info.final_obs["state"], res2.obs["state"])
    assert not np.allclose(res2.obs["state"], first)  # a new episode, not a replay
    assert res2.info.success_reported.all()
    eps = res2.info.completed_episodes()
    np.testing.assert_array_equal(eps["success"], [0.0, 0.0])


def test_success_is_reported_and_terminates(simulator):
    with make_env(_config(num_envs=2)) as env:
        env.reset(seed=0)
        # Put env 0's cube on its goal: the next step must report success and terminate.
        # (Random actions almost never push the cube there.) Reaching into the in-process
        # backend's envs is the only way to place it.
        _put_cube_on_goal(env._env.envs[0].unwrapped)
        res = env.step(np.zeros((2, ACTION_DIM), np.float32))
    np.testing.assert_array_equal(res.terminated, [True, False])
    np.testing.assert_array_equal(res.info.done, [True, False])
    eps = res.info.completed_episodes()
    np.testing.assert_array_equal(eps["env"], [0])
    np.testing.assert_array_equal(eps["success"], [1.0])
    np.testing.assert_array_equal(eps["length"], [1])


@pytest.mark.parametrize("batched", [False, True])
def test_ignore_terminations_runs_to_the_time_limit(simulator, batched):
    from rlinf.envs._maniskill import ManiSkillBatchedVectorEnv

    config = _config(num_envs=1, max_episode_steps=2, env_kwargs={"ignore_terminations": True})
    with ManiSkillBatchedVectorEnv(config) if batched else make_env(config) as env:
        env.reset(seed=0)
        task = env._env.unwrapped if batched else env._env.envs[0].unwrapped
        _put_cube_on_goal(task)
        still = np.zeros((1, ACTION_DIM), np.float32)
        res1 = env.step(still)  # success, but the episode goes on
        res2 = env.step(still)  # the time limit ends it, still successful
    assert not res1.info.done.any() and not res1.terminated.any()
    assert res2.truncated.all() and not res2.terminated.any()
    np.testing.assert_array_equal(res2.info.completed_episodes()["success"], [1.0])
    np.testing.assert_array_equal(res2.info.episode_length, [2])


@needs_maniskill
def test_ignore_terminations_must_be_a_bool():
    with pytest.raises(ValueError, match=r"'PushCube-v1': ignore_terminations must be true or"):
        make_env(_config(env_kwargs={"ignore_terminations": "yes"}))


def test_seeding_is_reproducible_and_differs_per_env(simulator):
    config = _config(num_envs=2, max_episode_steps=4)
    with make_env(config) as a, make_env(config) as b:
        run_a, run_b = _rollout(a, 10, seed=3), _rollout(b, 10, seed=3)
        again = a.reset(seed=3)["state"]
        other = a.reset(seed=4)["state"]
    for x, y in zip(run_a, run_b, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(again, run_a[0])
    assert not np.allclose(run_a[0][0], run_a[0][1])  # env i is seeded seed + i
    assert not np.allclose(other, run_a[0])


def test_process_parallel_matches_in_process(simulator):
    sync = _config(num_envs=2, max_episode_steps=3, chunk_size=2)
    parallel = _config(num_envs=2, max_episode_steps=3, chunk_size=2, backend="async")
    with make_env(sync) as a, make_env(parallel) as b:
        run_a, run_b = _rollout(a, 5, seed=7), _rollout(b, 5, seed=7)
    for x, y in zip(run_a, run_b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_rgb_observations(simulator):
    camera = {"width": 32, "height": 32}
    config = _config(num_envs=1, env_kwargs={"obs_mode": "rgb", "sensor_configs": camera})
    with make_env(config) as env:
        assert env.observation_spec["rgb"].is_image
        assert env.observation_spec["rgb"].shape == (32, 32, 3)
        obs = env.reset()
        res = env.step(env.sample_actions())
    assert obs["rgb"].shape == (1, 32, 32, 3) and obs["rgb"].dtype == np.uint8
    assert obs["state"].ndim == 2 and obs["state"].dtype == np.float32
    assert obs["rgb"].std() > 0  # a rendered scene, not a blank image
    assert res.obs["rgb"].shape == (1, 32, 32, 3)


def test_batched_env_matches_process_path_on_one_cpu_env(simulator):
    # The GPU simulator's class, checked without CUDA: ManiSkill batches one CPU env too.
    # With the same seeds it must produce exactly the per-env adapter's trajectory, through
    # chunks cut short by the episode's end and auto-resets.
    from rlinf.envs._maniskill import ManiSkillBatchedVectorEnv

    config = _config(num_envs=1, max_episode_steps=3, chunk_size=2)
    with ManiSkillBatchedVectorEnv(config) as batched, make_env(config) as per_env:
        spec_a, spec_b = batched.observation_spec["state"], per_env.observation_spec["state"]
        assert (spec_a.shape, spec_a.dtype) == (spec_b.shape, spec_b.dtype)
        assert batched.action_spec.shape == per_env.action_spec.shape
        run_a, run_b = _rollout(batched, 7, seed=2), _rollout(per_env, 7, seed=2)
        batched.reset(seed=0)
        res1 = batched.step(batched.sample_actions())
        res2 = batched.step(batched.sample_actions())
        _put_cube_on_goal(batched._env.unwrapped)
        res3 = batched.step(np.zeros((1, 2, ACTION_DIM), np.float32))
    for x, y in zip(run_a, run_b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(res1.info.chunk_executed, [2])
    assert res2.truncated.all() and not res2.terminated.any()
    np.testing.assert_array_equal(res2.info.chunk_executed, [1])
    np.testing.assert_array_equal(res2.info.chunk_rewards[:, 1], [0.0])
    np.testing.assert_array_equal(res2.info.episode_length, [3])
    np.testing.assert_allclose(res2.info.episode_return, res1.reward + res2.reward, rtol=1e-6)
    assert not np.allclose(res2.info.final_obs["state"], res2.obs["state"])
    np.testing.assert_array_equal(res3.terminated, [True])
    np.testing.assert_array_equal(res3.info.completed_episodes()["success"], [1.0])
    np.testing.assert_array_equal(res3.info.chunk_executed, [1])


def test_batched_env_guards_its_calls(simulator):
    from rlinf.envs._maniskill import ManiSkillBatchedVectorEnv

    env = ManiSkillBatchedVectorEnv(_config(num_envs=1))
    assert repr(env) == (
        "ManiSkillBatchedVectorEnv('PushCube-v1', num_envs=1, backend='sync', chunk_size=1)"
    )
    with pytest.raises(RuntimeError, match=r"'PushCube-v1': call reset\(\) before step"):
        env.step(np.zeros((1, ACTION_DIM), np.float32))
    env.close()
    env.close()
    with pytest.raises(RuntimeError, match="is closed"):
        env.reset()


@pytest.mark.gpu
def test_gpu_simulator_batched(simulator):
    from rlinf.envs._maniskill import ManiSkillBatchedVectorEnv

    gpu = {"sim_backend": "physx_cuda"}
    config = _config(num_envs=4, max_episode_steps=3, chunk_size=2, env_kwargs=gpu)
    with make_env(config) as env, make_env(config) as twin:
        assert isinstance(env, ManiSkillBatchedVectorEnv)
        obs = env.reset()
        assert obs["state"].shape == (4, STATE_DIM) and obs["state"].dtype == np.float32
        res1 = env.step(env.sample_actions())
        res2 = env.step(env.sample_actions())
        run_a, run_b = _rollout(env, 6, seed=11), _rollout(twin, 6, seed=11)
    np.testing.assert_array_equal(res1.info.chunk_executed, [2] * 4)
    assert res2.truncated.all()
    np.testing.assert_array_equal(res2.info.chunk_executed, [1] * 4)
    np.testing.assert_array_equal(res2.info.episode_length, [3] * 4)
    assert res2.info.success_reported.all()
    assert not np.allclose(res2.info.final_obs["state"], res2.obs["state"])
    for x, y in zip(run_a, run_b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@needs_maniskill
def test_gpu_simulator_rejects_async_backend():
    config = _config(backend="async", env_kwargs={"sim_backend": "physx_cuda"})
    with pytest.raises(ValueError, match=r"use backend='sync'"):
        make_env(config)
