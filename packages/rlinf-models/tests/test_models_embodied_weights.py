"""Weight versions: the rollout copy never acts on stale or skipped weights."""

from __future__ import annotations

import numpy as np
import pytest
import ray
import torch

from rlinf.core import Cluster, ClusterConfig, Trajectory, WorkerError
from rlinf.models import PolicyConfig, build_policy
from rlinf.models.embodied import (
    EmbodiedActorWorker,
    EmbodiedRolloutWorker,
    StaleWeightsError,
    UpdaterConfig,
    VersionedWeights,
    WeightSnapshot,
)


class _Spec:
    def __init__(self, shape, dtype=np.float32):
        self.shape, self.dtype = shape, np.dtype(dtype)


class _Action:
    kind, shape, n, low, high = "discrete", (), 2, None, None


OBS_SPEC = {"state": _Spec((3,))}
CFG = PolicyConfig(hidden_sizes=(8,))


def test_versioned_weights_reject_stale_and_skipped():
    src, dst = build_policy(CFG, OBS_SPEC, _Action()), build_policy(CFG, OBS_SPEC, _Action())
    held = VersionedWeights(dst)
    with pytest.raises(StaleWeightsError, match="holding -1"):
        held.require(0)
    held.load(WeightSnapshot.of(src, 3))  # the first load may start anywhere (resume)
    for (_, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b)
    held.load(WeightSnapshot.of(src, 4))
    with pytest.raises(StaleWeightsError, match="stale"):
        held.load(WeightSnapshot.of(src, 4))
    with pytest.raises(StaleWeightsError, match="skipped"):
        held.load(WeightSnapshot.of(src, 6))
    assert held.version == 4
    held.require(4)
    with pytest.raises(StaleWeightsError):
        held.require(5)


def test_snapshot_is_a_copy():
    policy = build_policy(CFG, OBS_SPEC, _Action())
    snap = WeightSnapshot.of(policy, 0)
    with torch.no_grad():
        next(policy.parameters()).add_(1.0)
    assert not torch.equal(next(iter(snap.state.values())), next(policy.parameters()))


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    # Joins the shared Ray (root conftest.py); shutdown kills what this module launched.
    with Cluster(ClusterConfig(num_cpus=2, num_gpus=0, devices_per_node=1)) as c:
        yield c


def test_actor_to_rollout_sync_through_workers(cluster):
    pgs = cluster.allocate({"actor": "0", "rollout": "0"})
    actor = cluster.launch(
        EmbodiedActorWorker,
        pgs,
        "actor",
        args=(CFG, UpdaterConfig(epochs=1, minibatches=1), OBS_SPEC, _Action(), 4),
    )
    rollout = cluster.launch(EmbodiedRolloutWorker, pgs, "rollout", args=(CFG, OBS_SPEC, _Action()))
    obs = {"state": np.zeros((2, 3), np.float32)}
    with pytest.raises(WorkerError, match="StaleWeightsError"):
        rollout.call("act", obs, version=0).wait(60)
    v0 = actor.call("export_weights").wait(60)[0]
    assert v0.version == 0
    assert rollout.call("load_weights", ray.put(v0)).wait(60) == [0]
    out = rollout.call("act", obs, version=0).wait(60)[0]
    assert out["action"].shape == (2,) and out["log_prob"].shape == (2,)
    g = np.random.default_rng(0)
    traj = Trajectory(
        obs={"state": g.normal(size=(2, 4, 3)).astype(np.float32)},
        actions=g.integers(0, 2, (2, 4)),
        rewards=np.ones((2, 4)),
        terminated=np.zeros((2, 4), bool),
        truncated=np.zeros((2, 4), bool),
        records={
            "log_probs": np.full((2, 4), np.log(0.5), np.float32),
            "values": np.zeros((2, 4), np.float32),
            "next_values": np.zeros((2, 4), np.float32),
        },
    )
    # One part by object-store reference (as env workers hand them on), one by value.
    first, second = traj.split(2)
    metrics = actor.call("update", [ray.put(first), second]).wait(60)[0]
    assert metrics["train/weight_version"] == 1.0
    # Acting with version 1 before it arrived must fail, never use version 0 silently.
    with pytest.raises(WorkerError, match="StaleWeightsError"):
        rollout.call("act", obs, version=1).wait(60)
    with pytest.raises(WorkerError, match="stale"):
        rollout.call("load_weights", v0).wait(60)
    v1 = actor.call("export_weights").wait(60)[0]
    assert rollout.call("load_weights", v1).wait(60) == [1]
    assert rollout.call("act", obs, version=1).wait(60)[0]["value"].shape == (2,)
