"""EnvWorker <-> direct links on a real CartPole vector env; the test plays the rollout
(a link listener in the test process answering like a rollout worker)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray")

import ray

from rlinf.channel import LinkListener, wait_links
from rlinf.core import Cluster, ClusterConfig, Trajectory, WorkerError
from rlinf.envs import EnvConfig, EnvWorker, GymVectorEnv, stage_link_name


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    # Joins the shared Ray (root conftest.py); shutdown kills what this module launched.
    with Cluster(ClusterConfig(num_cpus=2, num_gpus=0, devices_per_node=2)) as c:
        yield c


class _Rollout:
    """A link listener that plays the rollout worker's side of the protocol."""

    def __init__(self) -> None:
        self.listener = LinkListener("test rollout", host=ray.util.get_node_ip_address())
        self.endpoint = self.listener.address
        self.peers: list = []

    def accept(self, n: int, timeout: float = 60.0) -> None:
        self.peers += self.listener.accept(n - len(self.peers), timeout)

    def serve(self, num_requests: int, rng: np.random.Generator) -> list[tuple]:
        """Random actions; record each obs' first feature as a per-step field and each
        final obs' first feature (rows not sent are the new obs) for the previous step."""
        seen = []
        while len(seen) < num_requests:
            for link in wait_links(self.peers, 60):
                req = link.recv()
                seen.append(link.peer)
                reply = {}
                if req["obs"] is not None:
                    n = len(req["obs"]["state"])
                    reply["action"] = rng.integers(0, 2, n)
                    reply["record"] = {"x": req["obs"]["state"][:, 0].copy()}
                if req["final"] is not None:
                    index, rows = req["final"]
                    if req["obs"] is None:
                        final_x = np.empty(len(index))
                    else:
                        final_x = req["obs"]["state"][:, 0].copy()
                    final_x[index] = rows["state"][:, 0]
                    reply["record_prev"] = {"final_x": final_x}
                link.send(reply)
        return seen

    def close(self) -> None:
        for link in self.peers:
            link.close()
        self.listener.close()


def test_env_worker_exchanges_through_connections_in_stages(cluster):
    pgs = cluster.allocate({"env": "0-1"})
    cfg = EnvConfig("CartPole-v1", num_envs=4, seed=10)
    group = cluster.launch(EnvWorker, pgs, "env", args=(cfg, 2))
    rollout = _Rollout()
    try:
        horizon = 30
        endpoints = [rollout.endpoint, rollout.endpoint]
        fut = group.call_per_rank("rollout", [(endpoints, horizon), (endpoints, horizon)])
        rollout.accept(4)
        seen = rollout.serve(2 * 2 * (horizon + 1), np.random.default_rng(0))
        results = fut.wait(120)
        # A second rollout reuses the open connections (no new ones are accepted).
        fut = group.call_per_rank("rollout", [(endpoints, 2), (endpoints, 2)])
        rollout.serve(2 * 2 * 3, np.random.default_rng(1))
        assert [r["env_steps"] for r in fut.wait(120)] == [8, 8]
    finally:
        rollout.close()
        group.kill()
        pgs.remove()  # give the CPU slots back for the next test
    assert {stage_link_name(r, s) for r in (0, 1) for s in (0, 1)} == set(seen)
    for res in results:
        traj = res["trajectory"]
        assert isinstance(traj, Trajectory) and traj.dims == {"N": 4, "T": horizon}
        assert traj.obs["state"].shape == (4, horizon, 4)
        assert traj.actions.shape == traj.rewards.shape == (4, horizon)
        assert traj.terminated.dtype == bool
        # Recorded fields line up with the observations they were computed from...
        np.testing.assert_array_equal(traj.records["x"], traj.obs["state"][..., 0])
        # ...and the previous-step records with the next observation unless an episode ended.
        cont = ~(traj.terminated | traj.truncated)[:, :-1]
        final_x = traj.records["final_x"]
        np.testing.assert_array_equal(final_x[:, :-1][cont], traj.obs["state"][:, 1:, 0][cont])
        # Where an episode ended, the final rows were sent: the terminal state, not the reset.
        ended = ~cont
        assert ended.any()
        assert np.all(final_x[:, :-1][ended] != traj.obs["state"][:, 1:, 0][ended])
        assert res["env_steps"] == 4 * horizon
        ends = int(traj.terminated.sum() + traj.truncated.sum())
        assert len(res["episode_returns"]) == res["episodes"]["count"] == ends
        assert res["episodes"]["return_sum"] == pytest.approx(res["episode_returns"].sum())
        # Discrete actions: nothing to clip.
        assert res["actions_out_of_bounds"] == res["action_components"] == 0
    # Rank r's stage s runs envs seeded 10 + 4 r + 2 s + j: replaying rank 1 stage 1 with the
    # same actions in a local env reproduces its observations exactly.
    local = GymVectorEnv(EnvConfig("CartPole-v1", num_envs=2, seed=16))
    obs = local.reset()
    traj = results[1]["trajectory"]
    for t in range(horizon):
        np.testing.assert_allclose(obs["state"], traj.obs["state"][2:, t])
        obs = local.step(traj.actions[2:, t]).obs
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
    silent, rollout = _Rollout(), _Rollout()
    try:
        # Nobody answers: the worker must fail with a timeout, not hang.
        fut = group.call("rollout", [silent.endpoint], 3, reply_timeout=1.0)
        silent.accept(1)
        with pytest.raises(WorkerError, match=r"LinkTimeout.*'test rollout'.*within 1.0 s"):
            fut.wait(90)
        # The peer goes away mid-rollout: a clear connection error, at once.
        fut = group.call("rollout", [rollout.endpoint], 3, reply_timeout=60.0)
        rollout.accept(1)
        rollout.close()
        with pytest.raises(WorkerError, match=r"LinkClosed.*'test rollout'.*closed the link"):
            fut.wait(30)
        # Nothing listens any more: the worker names the endpoint it could not reach.
        with pytest.raises(WorkerError, match=r"LinkRefused.*'test rollout'.*cannot connect"):
            group.call("rollout", [rollout.endpoint], 3, reply_timeout=5.0).wait(30)
    finally:
        silent.close()
        rollout.close()
        group.kill()
        pgs.remove()


class _Responder:
    """Plays the policy inside the env worker's process (a StageResponder): pushes the cart
    away from the way the pole leans (so episodes end fast), records each obs' first feature
    and, for the previous step, each final obs' first feature; holds a weight version."""

    def __init__(self, obs_spec, action_spec, *, rank: int) -> None:
        assert "state" in obs_spec and rank in (0, 1)
        self.version = -1
        self.calls = 0

    def load_weights(self, snapshot) -> int:
        self.version = int(snapshot)
        return self.version

    def require(self, version: int) -> None:
        if version != self.version:
            raise RuntimeError(f"asked for version {version}, holding {self.version}")

    def answer(self, requests):
        assert len(requests) == 1
        self.calls += 1
        req, reply = requests[0], {}
        if req["obs"] is not None:
            reply["action"] = (req["obs"]["state"][:, 2] < 0).astype(np.int64)
            reply["record"] = {"x": req["obs"]["state"][:, 0].copy()}
        if req["final"] is not None:
            index, rows = req["final"]
            final_x = (
                np.empty(len(index)) if req["obs"] is None else req["obs"]["state"][:, 0].copy()
            )
            final_x[index] = rows["state"][:, 0]
            reply["record_prev"] = {"final_x": final_x}
        return [reply]


def _make_responder(obs_spec, action_spec, *, rank):
    return _Responder(obs_spec, action_spec, rank=rank)


def test_env_worker_with_in_process_policy(cluster):
    import sys

    import ray.cloudpickle

    # The worker cannot import this test module: ship the responder by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    pgs = cluster.allocate({"env": "0"})
    cfg = EnvConfig("CartPole-v1", num_envs=4, seed=10)
    group = cluster.launch(
        EnvWorker,
        pgs,
        "env",
        name="env-local",
        args=(cfg, 2),
        kwargs={"responder_factory": _make_responder},
    )
    try:
        with pytest.raises(WorkerError, match="holding -1"):
            group.call("rollout", None, 3, version=0).wait(60)
        with pytest.raises(WorkerError, match="needs the weight version"):
            group.call("rollout", None, 3).wait(60)
        assert group.call("load_weights", 5).wait(60) == [5]
        res = group.call("rollout", None, 40, version=5).wait(120)[0]
    finally:
        group.kill()
    plain = cluster.launch(EnvWorker, pgs, "env", name="env-plain", args=(cfg, 1))
    try:
        with pytest.raises(WorkerError, match="no in-process policy"):
            plain.call("load_weights", 1).wait(60)
        with pytest.raises(WorkerError, match="no rollout endpoints and no in-process policy"):
            plain.call("rollout", None, 3, version=1).wait(60)
    finally:
        plain.kill()
        pgs.remove()
    traj = res["trajectory"]
    assert res["env_steps"] == 160 and res["time/policy"] > 0
    assert traj.obs["state"].shape == (4, 40, 4)
    # The in-process policy's replies are recorded exactly like a remote rollout's.
    np.testing.assert_array_equal(traj.records["x"], traj.obs["state"][..., 0])
    np.testing.assert_array_equal(traj.actions, traj.obs["state"][..., 2] < 0)
    cont = ~(traj.terminated | traj.truncated)[:, :-1]
    np.testing.assert_array_equal(
        traj.records["final_x"][:, :-1][cont], traj.obs["state"][:, 1:, 0][cont]
    )
    assert (~cont).any()


class _Pusher:
    """A continuous in-process policy: envs with an even index push 3.0 (outside
    Pendulum's [-2, 2]), odd ones 0.5; it records the pendulum's cos(theta) after acting."""

    def __init__(self, obs_spec, action_spec, *, rank: int) -> None:
        self.version = 0

    def load_weights(self, snapshot) -> int:
        return self.version

    def require(self, version: int) -> None:
        pass

    def answer(self, requests):
        reply, req = {}, requests[0]
        if req["obs"] is not None:
            n = len(req["obs"]["state"])
            reply["action"] = np.where(np.arange(n)[:, None] % 2 == 0, 3.0, 0.5)
        return [reply]


def _make_pusher(obs_spec, action_spec, *, rank):
    return _Pusher(obs_spec, action_spec, rank=rank)


@pytest.mark.parametrize("clip", [True, False])
def test_out_of_bounds_actions_are_counted_clipped_or_not(cluster, clip):
    import sys

    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    pgs = cluster.allocate({"env": "0"})
    cfg = EnvConfig("Pendulum-v1", num_envs=4, seed=3, clip_actions=clip)
    group = cluster.launch(
        EnvWorker,
        pgs,
        "env",
        name=f"env-push-{clip}",
        args=(cfg,),
        kwargs={"responder_factory": _make_pusher},
    )
    try:
        res = group.call("rollout", None, 5, version=0, store=True).wait(120)[0]
        traj = ray.get(res["trajectory"])
        returns = ray.get(res["episode_returns"])
    finally:
        group.kill()
        pgs.remove()
    # 4 envs x 5 steps x 1 component, half of them outside the bounds.
    assert (res["actions_out_of_bounds"], res["action_components"]) == (10, 20)
    # The trajectory keeps what the policy chose (its log-probs are of that action).
    assert float(traj.actions.max()) == 3.0 and len(returns) == 0
    # Clipped, the push of 3.0 acts like 2.0: replay env 0 locally with both.
    local = GymVectorEnv(EnvConfig("Pendulum-v1", num_envs=4, seed=3, clip_actions=False))
    local.reset()
    applied = np.where(np.arange(4)[:, None] % 2 == 0, 2.0 if clip else 3.0, 0.5)
    expected = [local.step(applied).reward for _ in range(5)]
    local.close()
    np.testing.assert_allclose(traj.rewards, np.stack(expected, axis=1), rtol=1e-5)
