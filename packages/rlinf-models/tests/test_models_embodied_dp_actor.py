"""EmbodiedActorWorker on two actor ranks (Ray, gloo, fsdp2): an update equals the
one-process PolicyUpdater's on the same batch, rank 0 exports the full weights, and a
resume from checkpoint_state repeats the next update exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlinf.core import Cluster, ClusterConfig, Trajectory
from rlinf.models import PolicyConfig, build_policy
from rlinf.models.embodied import EmbodiedActorWorker, PolicyUpdater, UpdaterConfig


class _Spec:
    def __init__(self, shape, dtype=np.float32):
        self.shape, self.dtype = shape, np.dtype(dtype)


class _Action:
    kind, shape, n, low, high = "discrete", (), 2, None, None


OBS_SPEC = {"state": _Spec((3,))}
CFG = PolicyConfig(hidden_sizes=(8, 8), normalize_obs=True)
UPD = UpdaterConfig(epochs=2, minibatches=3, lr=1e-3)


def _traj(seed: int) -> Trajectory:
    g = np.random.default_rng(seed)
    n, t = 3, 5
    return Trajectory(
        obs={"state": g.normal(size=(n, t, 3)).astype(np.float32)},
        actions=g.integers(0, 2, (n, t)),
        rewards=g.normal(size=(n, t)),
        terminated=g.random((n, t)) < 0.2,
        truncated=np.zeros((n, t), bool),
        records={
            "log_probs": np.full((n, t), np.log(0.5), np.float32),
            "values": g.normal(size=(n, t)).astype(np.float32),
            "next_values": g.normal(size=(n, t)).astype(np.float32),
        },
    )


# Covered in the quick suite by test_models_train_dp (the same update equality without Ray)
# and apps/embodied/tests/test_embodied_data_parallel.py (these workers through the app).
@pytest.mark.slow
def test_two_actor_ranks_update_like_one_process(ray_cluster):
    torch.manual_seed(0)
    policy = build_policy(CFG, OBS_SPEC, _Action())
    # The actor orders minibatches with a generator of its own, seeded with its seed (0).
    local = PolicyUpdater(policy, UPD, total_updates=4, generator=torch.Generator().manual_seed(0))
    expected = local.update(_traj(1))
    with Cluster(ClusterConfig(num_cpus=2, num_gpus=0, devices_per_node=2)) as cluster:
        pgs = cluster.allocate({"actor": "0-1"})
        actor = cluster.launch(
            EmbodiedActorWorker, pgs, "actor", args=(CFG, UPD, OBS_SPEC, _Action(), 4)
        )
        got = actor.call("update", _traj(1)).wait(120)
        for k, v in expected.items():
            assert got[0][k] == pytest.approx(v, rel=1e-5, abs=1e-6), k
            assert got[1][k] == pytest.approx(v, rel=1e-5, abs=1e-6), k
        snap = actor.call("export_weights", ranks=0).wait(60)[0]
        assert snap.version == 1
        for k, v in policy.state_dict().items():
            torch.testing.assert_close(snap.state[k], v, atol=1e-5, rtol=1e-5)
        state = actor.call("checkpoint_state").wait(60)[0]
        first = actor.call("update", _traj(2)).wait(120)[0]
        assert actor.call("load_checkpoint_state", state).wait(60) == [1, 1]
        again = actor.call("update", _traj(2)).wait(120)[0]
        for k in ("train/pg_loss", "train/vf_loss", "train/grad_norm"):
            assert again[k] == pytest.approx(first[k], rel=1e-6), k
