"""GymVectorEnv: auto-reset, final observations, episode stats, seeding, sync vs async."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from rlinf.envs import EnvConfig, GymVectorEnv, StepResult, VectorEnv, make_env


def hand_run(env_id: str, seed: int, actions: list, max_episode_steps: int | None = None):
    """One env, stepped by hand: per step (obs after the step before any reset, reward,
    terminated, truncated, obs returned after auto-reset), plus the finished episodes."""
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    env = gym.make(env_id, **kwargs)
    obs, _ = env.reset(seed=seed)
    steps, episodes, ret, length = [], [], 0.0, 0
    for a in actions:
        nxt, r, term, trunc, _ = env.step(a)
        ret, length = ret + r, length + 1
        after = nxt
        if term or trunc:
            episodes.append((ret, length))
            ret, length = 0.0, 0
            after, _ = env.reset()
        steps.append((nxt, r, term, trunc, after))
    env.close()
    return obs, steps, episodes


def run_vector(env: GymVectorEnv, actions: np.ndarray) -> list[StepResult]:
    return [env.step(a) for a in actions]


def test_satisfies_protocol_and_specs():
    with make_env(EnvConfig("CartPole-v1", num_envs=2)) as env:
        assert isinstance(env, VectorEnv)
        assert env.observation_spec["state"].shape == (4,)
        assert env.action_spec.discrete and env.action_spec.n == 2
        obs = env.reset()
        assert obs["state"].shape == (2, 4) and obs["state"].dtype == np.float32


@pytest.mark.parametrize("max_steps", [None, 6])
def test_autoreset_final_obs_and_stats_match_hand_run(max_steps):
    n, seed, t = 3, 11, 60
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, size=(t, n))
    cfg = EnvConfig("CartPole-v1", num_envs=n, seed=seed, max_episode_steps=max_steps)
    with GymVectorEnv(cfg) as env:
        first = env.reset()
        results = run_vector(env, actions)
    ended = 0
    for i in range(n):
        obs0, steps, episodes = hand_run("CartPole-v1", seed + i, list(actions[:, i]), max_steps)
        np.testing.assert_array_equal(first["state"][i], obs0)
        got_eps = []
        for res, (nxt, r, term, trunc, after) in zip(results, steps, strict=True):
            np.testing.assert_array_equal(res.info.final_obs["state"][i], nxt)
            np.testing.assert_array_equal(res.obs["state"][i], after)
            assert (res.reward[i], res.terminated[i], res.truncated[i]) == (r, term, trunc)
            if res.info.done[i]:
                ended += 1
                # The returned obs is the next episode's reset obs, not the final one.
                assert not np.array_equal(res.obs["state"][i], res.info.final_obs["state"][i])
                got_eps.append((res.info.episode_return[i], res.info.episode_length[i]))
            else:
                assert res.info.episode_length[i] == 0
        assert got_eps == episodes
    assert ended >= n  # every env finished at least one episode in 60 steps
    if max_steps is not None:
        assert any(res.truncated.any() for res in results)


def test_truncation_on_time_limited_continuous_env():
    cfg = EnvConfig("Pendulum-v1", num_envs=2, seed=3, max_episode_steps=5)
    with GymVectorEnv(cfg) as env:
        assert env.action_spec.kind == "continuous" and env.action_spec.shape == (1,)
        env.reset()
        acts = np.full((2, 1), 0.5, np.float32)
        for _ in range(4):
            res = env.step(acts)
            assert not res.info.done.any()
            np.testing.assert_array_equal(res.info.final_obs["state"], res.obs["state"])
        res = env.step(acts)
    assert res.truncated.all() and not res.terminated.any()
    assert not np.allclose(res.info.final_obs["state"], res.obs["state"])
    for i in range(2):
        _, steps, episodes = hand_run("Pendulum-v1", 3 + i, [acts[i]] * 5, max_episode_steps=5)
        np.testing.assert_allclose(res.info.final_obs["state"][i], steps[-1][0])
        np.testing.assert_allclose(res.obs["state"][i], steps[-1][4])
        assert res.info.episode_length[i] == 5
        assert res.info.episode_return[i] == pytest.approx(episodes[0][0])


def test_seeding_reproducible_and_distinct():
    def trajectory(seed: int, reset_seed: int | None = None) -> np.ndarray:
        with GymVectorEnv(EnvConfig("CartPole-v1", num_envs=2, seed=seed)) as env:
            states = [env.reset(seed=reset_seed)["state"]]
            acts = np.random.default_rng(1).integers(0, 2, size=(30, 2))
            states += [env.step(a).obs["state"] for a in acts]
        return np.stack(states)

    a, b = trajectory(5), trajectory(5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, trajectory(99, reset_seed=5))
    assert not np.array_equal(a, trajectory(6))
    assert not np.array_equal(a[:, 0], a[:, 1])  # env i is seeded seed + i


def test_sync_and_async_give_identical_trajectories():
    rng = np.random.default_rng(2)
    acts = rng.uniform(-2, 2, size=(40, 2, 2, 1)).astype(np.float32)
    out = {}
    for backend in ("sync", "async"):
        cfg = EnvConfig(
            "Pendulum-v1", num_envs=2, seed=7, backend=backend, max_episode_steps=9, chunk_size=2
        )
        with GymVectorEnv(cfg) as env:
            obs = [env.reset()["state"]]
            res = run_vector(env, acts)
        out[backend] = (
            np.stack(obs + [r.obs["state"] for r in res]),
            np.stack([r.info.final_obs["state"] for r in res]),
            np.stack([r.reward for r in res]),
            np.stack([r.truncated for r in res]),
            np.stack([r.info.episode_return for r in res]),
        )
    for s, a in zip(out["sync"], out["async"], strict=True):
        np.testing.assert_array_equal(s, a)
    assert out["sync"][3].any()


def test_reset_required_and_close_idempotent():
    env = GymVectorEnv(EnvConfig("CartPole-v1"))
    assert repr(env) == "GymVectorEnv('CartPole-v1', num_envs=1, backend='sync', chunk_size=1)"
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(1, np.int64))
    env.close()
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.reset()


@pytest.mark.parametrize("backend", ["sync", "async"])
def test_returned_arrays_are_not_reused(backend):
    """Rollout buffers keep references to returned arrays; later steps must not mutate them."""
    cfg = EnvConfig("CartPole-v1", num_envs=2, backend=backend, max_episode_steps=3)
    with GymVectorEnv(cfg) as env:
        first = env.reset()
        kept = [first["state"].copy()]
        results = [env.step(np.zeros(2, np.int64)) for _ in range(4)]
        kept += [r.obs["state"].copy() for r in results]
        finals = [r.info.final_obs["state"].copy() for r in results]
    np.testing.assert_array_equal(first["state"], kept[0])
    for r, obs, fin in zip(results, kept[1:], finals, strict=True):
        np.testing.assert_array_equal(r.obs["state"], obs)
        np.testing.assert_array_equal(r.info.final_obs["state"], fin)


def test_per_env_builders():
    import functools

    from rlinf.envs._single import make_single_env

    def limited(steps, config):
        return make_single_env(dataclasses.replace(config, max_episode_steps=steps))

    config = EnvConfig("CartPole-v1", num_envs=2)
    builders = [functools.partial(limited, 2), functools.partial(limited, 3)]
    with GymVectorEnv(config, make_singles=builders) as env:
        env.reset()
        done = [env.step(np.zeros(2, np.int64)).info.done.tolist() for _ in range(3)]
    # Env 0 ends its 2-step episodes, env 1 its 3-step ones.
    assert done == [[False, False], [True, False], [False, True]]
    with pytest.raises(ValueError, match="1 env builders for num_envs=2"):
        GymVectorEnv(config, make_singles=builders[:1])
