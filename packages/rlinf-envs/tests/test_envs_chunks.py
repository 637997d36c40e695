"""Action chunks: in-order execution, stop at the episode's end, summed rewards."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from rlinf.envs import EnvConfig, GymVectorEnv


def test_chunk_stops_at_truncation_and_drops_the_rest():
    cfg = EnvConfig("CartPole-v1", num_envs=2, seed=0, max_episode_steps=4, chunk_size=3)
    acts = np.array([[[0, 1, 0], [1, 0, 1]], [[1, 0, 1], [0, 1, 0]]])  # [T=2, N=2, K=3]
    with GymVectorEnv(cfg) as env:
        env.reset()
        r1 = env.step(acts[0])
        r2 = env.step(acts[1])
    np.testing.assert_array_equal(r1.info.chunk_executed, [3, 3])
    np.testing.assert_array_equal(r1.reward, [3.0, 3.0])
    assert not r1.info.done.any()
    # Only the first action of the second chunk runs: the time limit ends the episode there.
    np.testing.assert_array_equal(r2.info.chunk_executed, [1, 1])
    np.testing.assert_array_equal(r2.info.chunk_rewards, [[1, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(r2.reward, [1.0, 1.0])
    assert r2.truncated.all()
    np.testing.assert_array_equal(r2.info.episode_length, [4, 4])
    for i in range(2):
        env1 = gym.make("CartPole-v1", max_episode_steps=4)
        env1.reset(seed=i)
        for a in [*acts[0, i], acts[1, i, 0]]:
            last, *_ = env1.step(int(a))
        np.testing.assert_array_equal(r2.info.final_obs["state"][i], last)
        # The dropped actions never touch the next episode: obs is the plain reset obs.
        reset_obs, _ = env1.reset()
        np.testing.assert_array_equal(r2.obs["state"][i], reset_obs)


def test_chunk_matches_hand_run_with_terminations():
    n, k, t, seed = 3, 4, 40, 21
    rng = np.random.default_rng(3)
    acts = rng.integers(0, 2, size=(t, n, k))
    with GymVectorEnv(EnvConfig("CartPole-v1", num_envs=n, seed=seed, chunk_size=k)) as env:
        env.reset()
        results = [env.step(a) for a in acts]
    terminations = 0
    for i in range(n):
        env1 = gym.make("CartPole-v1")
        env1.reset(seed=seed + i)
        ret, length = 0.0, 0
        for res, chunk in zip(results, acts[:, i], strict=True):
            total, executed, done = 0.0, 0, False
            for a in chunk:
                obs, r, term, trunc, _ = env1.step(int(a))
                total, executed = total + r, executed + 1
                if term or trunc:
                    done = True
                    break
            ret, length = ret + total, length + executed
            assert res.info.chunk_executed[i] == executed
            assert res.reward[i] == total == res.info.chunk_rewards[i].sum()
            assert res.info.done[i] == done
            np.testing.assert_array_equal(res.info.final_obs["state"][i], obs)
            if done:
                terminations += int(res.terminated[i])
                assert (res.info.episode_return[i], res.info.episode_length[i]) == (ret, length)
                ret, length = 0.0, 0
                obs, _ = env1.reset()
            np.testing.assert_array_equal(res.obs["state"][i], obs)
    assert terminations >= n


def test_chunk_size_one_accepts_both_layouts():
    cfg = EnvConfig("Pendulum-v1", num_envs=2, seed=1)
    outs = []
    for layout in [(2, 1), (2, 1, 1)]:
        with GymVectorEnv(cfg) as env:
            env.reset()
            outs.append(env.step(np.full(layout, 0.3, np.float32)).obs["state"])
    np.testing.assert_array_equal(outs[0], outs[1])
