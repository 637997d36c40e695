"""The embodied app with a data-parallel actor (two FSDP2 ranks over gloo, weights to two
rollout ranks by bucketed broadcasts): the same run as with one actor process and the
object store, and the off-policy learner refused on two."""

from __future__ import annotations

import math

from rlinf.apps.embodied.cli import main
from rlinf.core import read_metrics

SHORT = [
    "runner.horizon=128",
    "runner.progress=false",
    # Two updates: the second rolls out with the weights the first trained (and synced by
    # collectives to both rollout ranks), so a diverging update or sync shows from there on.
    "runner.total_env_steps=2048",
    "placement.rollout=0-1",
    # Rollout workers of their own (the preset runs the policy in the env worker): the
    # collective weight sync to 2 rollout ranks is what this covers.
    "runner.policy_in_env=false",
    # A 4 KiB bucket: the 64x64 weights travel alone, the biases packed together.
    "runner.weight_sync_bucket_mb=0.004",
]
COMPARED = ("train/pg_loss", "train/vf_loss", "train/approx_kl", "env/return_mean")


def test_two_actor_ranks_train_like_one(ray_cluster, tmp_path, capsys):
    runs = {}
    for name, actor in (("one", "0"), ("two", "0-1")):
        run_dir = tmp_path / name
        args = ["train", "--config", "cartpole", "--run-dir", str(run_dir), *SHORT]
        assert main([*args, f"placement.actor={actor}"]) == 0
        runs[name] = read_metrics(run_dir / "metrics.jsonl")
    assert "(hybrid, ray)" in capsys.readouterr().out  # actor and rollout on 0-1, env on 0
    assert [r["step"] for r in runs["two"]] == [1024, 2048]
    # Two ranks each train half of every minibatch and sum the gradients: the same update
    # as one process up to float summation order, so the same episodes follow. The weights
    # reach the rollout ranks by the object store from one actor rank and by collectives
    # from two (runner.weight_sync=auto), so this also checks that path end to end.
    for one, two in zip(runs["one"], runs["two"], strict=True):
        for key in COMPARED:
            assert math.isclose(one[key], two[key], rel_tol=1e-3, abs_tol=1e-5), (key, one, two)


def test_off_policy_learner_is_one_process(capsys):
    args = ["train", "--config", "sac_pendulum", "placement.actor=0-1"]
    assert main(args) == 2
    assert (
        "placement.actor: the actor runs as exactly one process (got 2)" in capsys.readouterr().err
    )
