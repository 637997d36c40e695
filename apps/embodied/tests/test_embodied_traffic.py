"""Trajectories and weights never pass through the driver: what the driver receives and
sends per iteration is a few KB of counters, metrics and references, the same for a tiny
and a 64 times larger rollout, on both rollout paths (rollout workers; policy in the env
workers)."""

from __future__ import annotations

import pytest
import ray
from ray import cloudpickle

from rlinf.apps.embodied import build_flow
from rlinf.apps.embodied._config import load_embodied_config
from rlinf.core import Trajectory, count_driver_traffic

BOUND = 4096  # bytes per iteration, received and sent alike (measured: ~1.5 KB received)
SIZES = [(2, 16), (16, 128)]  # (num_envs, horizon): 64 times more steps per rollout
ITERATIONS = 2


def _measure(in_env: bool, num_envs: int, horizon: int) -> tuple[float, float, int]:
    """Driver bytes (received, sent) per iteration over ITERATIONS iterations after a first
    one, and the pickled size of one rollout's trajectory."""
    overrides = [
        f"env.num_envs={num_envs}",
        f"runner.horizon={horizon}",
        f"runner.total_env_steps={(ITERATIONS + 2) * num_envs * horizon}",
        f"runner.policy_in_env={in_env}",
        "runner.progress=false",
        "algo.epochs=1",
        "algo.minibatches=1",
    ]
    flow = build_flow(load_embodied_config("cartpole", overrides))
    try:
        assert (flow.rollout is None) == in_env
        version = flow.sync_weights()
        _, steps = flow.iteration(version)  # warm-up: first calls carry function code
        version += 1
        assert steps == num_envs * horizon
        with count_driver_traffic() as traffic:
            for _ in range(ITERATIONS):
                metrics, _ = flow.iteration(version)
                version += 1
        assert metrics["env/episodes"] > 0 and "train/pg_loss" in metrics
        results, _ = flow.collect(version)
        ref = results[0]["trajectory"]
        assert isinstance(ref, ray.ObjectRef)
        traj = ray.get(ref)
        assert isinstance(traj, Trajectory) and traj.dims == {"N": num_envs, "T": horizon}
        size = len(cloudpickle.dumps(traj))
    finally:
        flow.shutdown()
    return traffic.received_bytes / ITERATIONS, traffic.sent_bytes / ITERATIONS, size


# Four short flows; the workspace suite runs it, the isolated-install check (quick tests) not.
@pytest.mark.slow
@pytest.mark.parametrize("in_env", [False, True], ids=["rollout-workers", "policy-in-env"])
def test_driver_traffic_per_iteration_is_small_and_independent_of_rollout_size(ray_cluster, in_env):
    figures = {size: _measure(in_env, *size) for size in SIZES}
    print({f"{n}x{t}": f for (n, t), f in figures.items()})
    for (num_envs, horizon), (received, sent, _) in figures.items():
        assert received < BOUND, f"{num_envs} envs x {horizon} steps: {received} B received"
        assert sent < BOUND, f"{num_envs} envs x {horizon} steps: {sent} B sent"
    # The bigger rollout's trajectory alone is far larger than anything the driver saw.
    assert figures[SIZES[-1]][2] > 20 * BOUND
