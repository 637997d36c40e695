"""EmbodiedRolloutWorker.serve over direct links: the test plays two env stages."""

from __future__ import annotations

import secrets
import socket

import numpy as np
import pytest
import torch

pytest.importorskip("ray")

from rlinf.channel import DirectLink
from rlinf.core import Cluster, ClusterConfig, WorkerError
from rlinf.models import PolicyConfig, build_policy
from rlinf.models.embodied import EmbodiedRolloutWorker, WeightSnapshot


class _Spec:
    def __init__(self, shape, dtype=np.float32):
        self.shape, self.dtype = shape, np.dtype(dtype)


class _Action:
    kind, shape, n, low, high = "discrete", (), 2, None, None


OBS_SPEC = {"state": _Spec((3,))}
CFG = PolicyConfig(hidden_sizes=(8,))


@pytest.fixture(scope="module")
def cluster(ray_cluster):
    # Joins the shared Ray (root conftest.py); shutdown kills what this module launched.
    with Cluster(ClusterConfig(num_cpus=2, num_gpus=0, devices_per_node=1)) as c:
        yield c


def _connect(endpoint, name) -> DirectLink:
    return DirectLink.connect(endpoint, name=name, timeout=60)


def test_serve_answers_stages_with_values_of_final_rows(cluster):
    pgs = cluster.allocate({"rollout": "0"})
    rollout = cluster.launch(EmbodiedRolloutWorker, pgs, "rollout", args=(CFG, OBS_SPEC, _Action()))
    torch.manual_seed(3)
    policy = build_policy(CFG, OBS_SPEC, _Action()).eval()
    assert rollout.call("load_weights", WeightSnapshot.of(policy, 5)).wait(60) == [5]
    token = secrets.token_bytes(32)
    endpoint = rollout.call("open_endpoint", token).wait(60)[0]
    g = np.random.default_rng(0)
    obs = [{"state": g.normal(size=(2, 3)).astype(np.float32)} for _ in range(2)]
    final_row = {"state": g.normal(size=(1, 3)).astype(np.float32)}
    last = {"state": g.normal(size=(2, 3)).astype(np.float32)}
    assert endpoint.token == token and endpoint.name == "rollout rank 0"
    stranger = socket.create_connection((endpoint.host, endpoint.port), timeout=60)  # no token
    stranger.sendall(b"\x00\x00\x00\x05hello")
    fut = rollout.call("serve", 4, 2, version=5, request_timeout=60)
    stages = [_connect(endpoint, f"env 0 stage {s}") for s in range(2)]
    try:
        # Step 0 of both stages, then step 1 of stage 0 (env 1's episode ended: its final
        # row travels), then the last request of stage 1 (every env's final row).
        for s in range(2):
            stages[s].send({"obs": obs[s], "final": None})
        first = [stages[s].recv() for s in range(2)]
        stages[0].send({"obs": obs[1], "final": (np.array([1]), final_row)})
        stages[1].send({"obs": None, "final": (np.arange(2), last)})
        second = [stages[s].recv() for s in range(2)]
        stats = fut.wait(60)[0]
    finally:
        stranger.close()
        for conn in stages:
            conn.close()
    with torch.no_grad():
        value = {k: policy.value(v).numpy() for k, v in (("a", obs[1]), ("f", final_row))}
        value_last = policy.value(last).numpy()
    for s in range(2):
        assert first[s]["action"].shape == (2,) and "record_prev" not in first[s]
        assert first[s]["version"] == 5
    np.testing.assert_allclose(second[0]["record"]["values"], value["a"], rtol=1e-5)
    # next values: V(obs) where the episode went on, V(final row) where it ended.
    expected = np.array([value["a"][0], value["f"][0]])
    np.testing.assert_allclose(second[0]["record_prev"]["next_values"], expected, rtol=1e-5)
    np.testing.assert_allclose(second[1]["record_prev"]["next_values"], value_last, rtol=1e-5)
    assert "action" not in second[1]
    assert stats["rollout/requests"] == 4.0
    # The two step-0 requests may arrive together and share one forward pass.
    assert 2 <= stats["rollout/forward_passes"] <= 4


def test_serve_refuses_wrong_version_and_times_out(cluster):
    pgs = cluster.allocate({"rollout": "0"})
    rollout = cluster.launch(
        EmbodiedRolloutWorker, pgs, "rollout", name="lonely", args=(CFG, OBS_SPEC, _Action())
    )
    policy = build_policy(CFG, OBS_SPEC, _Action())
    rollout.call("load_weights", WeightSnapshot.of(policy, 0)).wait(60)
    with pytest.raises(WorkerError, match="StaleWeightsError"):
        rollout.call("serve", 1, 1, version=1).wait(60)
    with pytest.raises(WorkerError, match="open_endpoint"):
        rollout.call("serve", 1, 1, version=0, request_timeout=1).wait(60)
    with pytest.raises(WorkerError, match="16 bytes"):
        rollout.call("open_endpoint", b"short").wait(60)
    rollout.call("open_endpoint", secrets.token_bytes(16)).wait(60)
    with pytest.raises(WorkerError, match=r"0 of 1 peers connected"):
        rollout.call("serve", 1, 1, version=0, request_timeout=1).wait(60)
