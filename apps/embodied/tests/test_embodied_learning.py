"""The issue's bar through the full CLI / flow: CartPole-v1 average return >= 475 within
100k env steps (cartpole preset, seed 0: as shipped, and with the update overlapped)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rlinf.apps.embodied.cli import main
from rlinf.core import read_metrics

# The preset runs the policy inside the env worker, collocated. A rollout worker of its
# own draws exactly the same samples (test_embodied_cli's
# test_policy_in_env_workers_matches_rollout_workers), so it is not trained again here.
# Overlapped: the actor on its own slot updates while the next rollout is collected with
# the previous weights (one-step off-policy); the bar is the same.
OVERLAPPED = ["runner.overlap_update=true", "placement.actor=1"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [[], OVERLAPPED],
    ids=["in_env_collocated", "in_env_overlapped"],
)
def test_cartpole_preset_solves_within_100k_steps(tmp_path, overrides):
    run_dir = tmp_path / "cartpole"
    start = time.perf_counter()
    args = ["train", "--config", "cartpole", "--run-dir", str(run_dir), "runner.progress=false"]
    assert main([*args, *overrides]) == 0
    wall = time.perf_counter() - start
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "env/return_mean" in r]
    steps = int(rows[-1]["step"])
    # Episode-weighted mean return of the last 10 iterations that finished episodes.
    tail = rows[-10:]
    weights = np.array([r["env/episodes"] for r in tail])
    final = float(np.average([r["env/return_mean"] for r in tail], weights=weights))
    print(
        f"\nCartPole-v1 via rlinf-embodied (seed 0, {overrides or 'collocated'}): return "
        f"{rows[0]['env/return_mean']:.1f} -> {final:.1f} in {steps} env steps, {wall:.0f}s"
    )
    assert steps <= 100_000
    assert final >= 475
