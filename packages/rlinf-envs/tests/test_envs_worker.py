"""EnvWorker <-> channels on a real CartPole vector env; the test itself plays the rollout."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray")

from rlinf.channel import Channel
from rlinf.core import Cluster, ClusterConfig, WorkerError
from rlinf.envs import EnvConfig, EnvWorker, GymVectorEnv, stage_reply_key


@pytest.fixture(scope="module")
def cluster():
    with Cluster(ClusterConfig(num_cpus=2, num_gpus=0, devices_per_node=2)) as c:
        yield c


def _serve(obs_ch, act_ch, key, num_requests, rng):
    """Answer requests like a rollout worker: random actions; record each obs' first
    feature as a per-step field and each final obs' first feature for the previous step."""
    seen = []
    for _ in range(num_requests):
        req = obs_ch.get(key=key, timeout=60)
        seen.append(req["reply_key"])
        reply = {}
        if req["obs"] is not None:
            n = len(req["obs"]["state"])
            reply["action"] = rng.integers(0, 2, n)
            reply["record"] = {"x": req["obs"]["state"][:, 0].copy()}
        if req["final_obs"] is not None:
            reply["record_prev"] = {"final_x": req["final_obs"]["state"][:, 0].copy()}
        act_ch.put(reply, key=req["reply_key"], timeout=60)
    return seen


def test_env_worker_exchanges_through_channels_in_stages(cluster):
    pgs = cluster.allocate({"env": "0-1"})
    cfg = EnvConfig("CartPole-v1", num_envs=4, seed=10)
    group = cluster.launch(EnvWorker, pgs, "env", args=(cfg, 2))
    obs_ch, act_ch = Channel.create("test-env-obs"), Channel.create("test-env-act")
    try:
        horizon = 30
        fut = group.call_per_rank(
            "rollout",
            [(obs_ch, act_ch, ["r", "r"], horizon), (obs_ch, act_ch, ["r", "r"], horizon)],
        )
        seen = _serve(obs_ch, act_ch, "r", 2 * 2 * (horizon + 1), np.random.default_rng(0))
        results = fut.wait(120)
    finally:
        obs_ch.kill()
        act_ch.kill()
        group.kill()
        pgs.remove()  # give the CPU slots back for the next test
    assert {stage_reply_key(r, s) for r in (0, 1) for s in (0, 1)} == set(seen)
    for res in results:
        traj = res["trajectory"]
        assert traj["obs"]["state"].shape == (4, horizon, 4)
        assert traj["actions"].shape == traj["rewards"].shape == (4, horizon)
        assert traj["terminated"].dtype == bool
        # Recorded fields line up with the observations they were computed from...
        np.testing.assert_array_equal(traj["x"], traj["obs"]["state"][..., 0])
        # ...and the previous-step records with the next observation unless an episode ended.
        cont = ~(traj["terminated"] | traj["truncated"])[:, :-1]
        np.testing.assert_array_equal(
            traj["final_x"][:, :-1][cont], traj["obs"]["state"][:, 1:, 0][cont]
        )
        assert res["env_steps"] == 4 * horizon
        assert len(res["episodes"]["return"]) == int(
            traj["terminated"].sum() + traj["truncated"].sum()
        )
    # Rank r's stage s runs envs seeded 10 + 4 r + 2 s + j: replaying rank 1 stage 1 with the
    # same actions in a local env reproduces its observations exactly.
    local = GymVectorEnv(EnvConfig("CartPole-v1", num_envs=2, seed=16))
    obs = local.reset()
    traj = results[1]["trajectory"]
    for t in range(horizon):
        np.testing.assert_allclose(obs["state"], traj["obs"]["state"][2:, t])
        obs = local.step(traj["actions"][2:, t]).obs
    local.close()


def test_env_worker_rejects_uneven_stages_and_times_out(cluster):
    pgs = cluster.allocate({"env": "0"})
    with pytest.raises(WorkerError, match="not divisible"):
        cluster.launch(
            EnvWorker, pgs, "env", name="env-uneven", args=(EnvConfig("CartPole-v1", num_envs=3), 2)
        )
    group = cluster.launch(
        EnvWorker, pgs, "env", name="env-lonely", args=(EnvConfig("CartPole-v1", num_envs=2), 1)
    )
    obs_ch, act_ch = Channel.create("test-env-obs2"), Channel.create("test-env-act2")
    try:
        # Nobody answers: the worker must fail with a timeout, not hang.
        with pytest.raises(WorkerError, match="ChannelTimeout"):
            group.call("rollout", obs_ch, act_ch, ["nobody"], 3, channel_timeout=1.0).wait(90)
    finally:
        obs_ch.kill()
        act_ch.kill()
