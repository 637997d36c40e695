"""The embodied app with ``runner.weight_sync=collective`` (bucketed broadcasts from the
actor to two rollout ranks): the same run, metric for metric, as with the object store."""

from __future__ import annotations

import pytest

from rlinf.apps.embodied.cli import main
from rlinf.core import read_metrics

SHORT = [
    "runner.horizon=64",
    "runner.progress=false",
    "runner.total_env_steps=1024",
    "placement.rollout=0-1",
    "runner.policy_in_env=false",  # rollout workers of their own receive the weights
    "env.num_envs=8",
    "algo.epochs=2",
]
COMPARED = ("train/pg_loss", "train/vf_loss", "train/weight_version", "env/return_mean")


# Two app runs: slow. The quick suite has the same path in test_embodied_data_parallel
# (two actor ranks pick collectives, two rollout ranks, a 4 KiB bucket) and the bit-exact
# transfer in rlinf-models' test_models_weight_collective.
@pytest.mark.slow
def test_collective_weight_sync_runs_like_the_object_store(ray_cluster, tmp_path):
    runs = {}
    for method in ("object_store", "collective"):
        run_dir = tmp_path / method
        args = ["train", "--config", "cartpole", "--run-dir", str(run_dir), *SHORT]
        # A 4 KiB bucket: the 64x64 weights travel alone, the biases packed together.
        assert (
            main([*args, f"runner.weight_sync={method}", "runner.weight_sync_bucket_mb=0.004"]) == 0
        )
        runs[method] = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in runs["collective"]] == [512, 1024]
    # The rollout ranks act with bit-identical weights either way: identical runs.
    for a, b in zip(runs["object_store"], runs["collective"], strict=True):
        for key in COMPARED:
            assert a[key] == b[key], (key, a, b)


def test_collective_with_the_policy_in_the_env_workers_is_refused(capsys):
    args = ["train", "--config", "cartpole", "runner.policy_in_env=true"]
    assert main([*args, "runner.weight_sync=collective"]) == 2
    err = capsys.readouterr().err
    assert "runner.weight_sync=collective needs rollout workers" in err
