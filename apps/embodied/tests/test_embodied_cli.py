"""The rlinf-embodied CLI end to end on CartPole: collocated, pipelined, resume, eval."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import ray
import torch

from rlinf.apps.embodied.cli import main
from rlinf.core import read_metrics

SHORT = ["runner.horizon=128", "runner.progress=false", "runner.checkpoint_every=1"]


def _check_run_dir(run_dir: pathlib.Path, steps: list[int]) -> list[dict[str, float]]:
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [int(r["step"]) for r in rows] == steps
    for key in (
        "env/return_mean",
        "train/pg_loss",
        "train/vf_loss",
        "time/rollout",
        "time/update",
        "throughput/env_steps_per_s",
    ):
        assert key in rows[0], key
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (run_dir / "config.yaml").is_file()
    png = run_dir / "learning_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return rows


# The quick suite's end-to-end run is test_embodied_resume's collocated case (train, exact
# resume, eval at a tiny size); this one runs the preset's sizes and resumes with a longer budget.
@pytest.mark.slow
def test_collocated_train_and_resume_with_a_longer_budget(ray_cluster, tmp_path, capsys):
    run_dir = tmp_path / "colloc"
    args = ["train", "--config", "cartpole", "--run-dir", str(run_dir)]
    assert main([*args, *SHORT, "runner.total_env_steps=2048"]) == 0
    assert "(collocated, ray)" in capsys.readouterr().out
    _check_run_dir(run_dir, [1024, 2048])
    state = torch.load(run_dir / "checkpoints/update_000002/state.pt", weights_only=False)
    assert state["env_steps"] == 2048 and state["actor"]["version"] == 2
    assert {"policy", "updater", "torch_rng"} <= set(state["actor"])
    assert "optimizer" in state["actor"]["updater"] and "numpy_rng" in state

    # As if a run had logged update 3 and died before its checkpoint: the resumed run does
    # update 3 again and its row replaces this one.
    with (run_dir / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": 3072, "stale": 1.0}) + "\n")
    # Resume with a longer budget: the step counter and weight version continue.
    code = main(["train", "--resume", str(run_dir), *SHORT, "runner.total_env_steps=4096"])
    assert code == 0
    rows = _check_run_dir(run_dir, [1024, 2048, 3072, 4096])
    assert not any("stale" in r for r in rows)
    state = torch.load(run_dir / "checkpoints/update_000004/state.pt", weights_only=False)
    assert state["env_steps"] == 4096 and state["actor"]["version"] == 4
    assert state["actor"]["updater"]["num_updates"] == 4
    assert (run_dir / "checkpoints/latest").read_text().strip() == "update_000004"

    # eval of a checkpoint: test_embodied_resume's collocated case.


# A minute or more of Ray workers: a slow test (CI runs it; the quick suite keeps one
# end-to-end run per app).
@pytest.mark.slow
def test_pipelined_hybrid_placement(ray_cluster, tmp_path, capsys):
    run_dir = tmp_path / "pipe"
    overrides = [
        *SHORT,
        "runner.total_env_steps=2048",
        "runner.pipeline_stages=2",
        "placement.env=0-1",
        "placement.rollout=0-1",
        "placement.actor=1",
    ]
    assert main(["train", "--config", "cartpole", "--run-dir", str(run_dir), *overrides]) == 0
    assert "(hybrid, ray)" in capsys.readouterr().out
    rows = _check_run_dir(run_dir, [1024, 2048])
    assert rows[-1]["train/weight_version"] == 2.0


# A minute or more of Ray workers: a slow test (CI runs it; the quick suite keeps one
# end-to-end run per app).
@pytest.mark.slow
def test_overlapped_update_acts_one_version_behind(ray_cluster, tmp_path, capsys):
    run_dir = tmp_path / "overlap"
    overrides = [
        *SHORT,
        "runner.total_env_steps=4096",
        "runner.overlap_update=true",
        "placement.actor=1",
    ]
    assert main(["train", "--config", "cartpole", "--run-dir", str(run_dir), *overrides]) == 0
    assert "(hybrid, ray)" in capsys.readouterr().out
    rows = _check_run_dir(run_dir, [1024, 2048, 3072, 4096])
    # The first update uses a rollout of the initial weights; each later one a rollout
    # collected during the previous update, with the weights from before it.
    assert [r["train/policy_lag"] for r in rows] == [0.0, 1.0, 1.0, 1.0]
    assert [r["train/weight_version"] for r in rows] == [1.0, 2.0, 3.0, 4.0]


# A minute or more of Ray workers: a slow test (CI runs it; the quick suite keeps one
# end-to-end run per app).
@pytest.mark.slow
def test_policy_in_env_workers_matches_rollout_workers(ray_cluster):
    # Same seed, one env worker, one stage: the policy copy inside the env worker draws
    # exactly the samples the rollout worker draws (same seeding, same calls), before and
    # after an update and its weight sync.
    from rlinf.apps.embodied import build_flow
    from rlinf.apps.embodied._config import load_embodied_config

    trajectories = {}
    for in_env in (False, True):
        overrides = ["runner.horizon=32", "runner.total_env_steps=512", "runner.progress=false"]
        cfg = load_embodied_config("cartpole", [*overrides, f"runner.policy_in_env={in_env}"])
        flow = build_flow(cfg)
        try:
            assert (flow.rollout is None) == in_env
            version = flow.sync_weights()
            metrics, _ = flow.iteration(version)
            assert metrics["time/rollout_infer"] > 0
            results, _ = flow.collect(version + 1)
            # The env worker put its trajectory into the object store: fetch it here.
            trajectories[in_env] = ray.get(results[0]["trajectory"]).to_dict()
        finally:
            flow.shutdown()
    for key in ("log_probs", "values", "next_values"):
        np.testing.assert_array_equal(
            trajectories[False]["records"][key], trajectories[True]["records"][key]
        )
    for key in ("actions", "rewards"):
        np.testing.assert_array_equal(trajectories[False][key], trajectories[True][key])
