"""Exact resume: a run resumed from its checkpoint after update 2 reports the same
updates 3-4 (returns, losses, everything but timings) as the run that went on; the quick
suite's end-to-end CLI run of the embodied app (run directory, resume, eval)."""

from __future__ import annotations

import json
import pathlib
import shutil

import pytest
import torch

from rlinf.apps.embodied.cli import main
from rlinf.core import read_metrics

# One env worker, one stage, one rollout rank: a rollout rank that batches requests of
# several stages draws its samples in arrival order, which no run reproduces.
TINY = [
    "env.num_envs=2",
    "runner.horizon=32",
    "runner.pipeline_stages=1",
    "runner.checkpoint_every=1",
    "runner.progress=false",
    "algo.epochs=2",
    "algo.minibatches=2",
]
CARTPOLE = [*TINY, "runner.total_env_steps=256"]  # 4 updates of 2 x 32 steps
IN_ENV_OVERLAPPED = ["runner.overlap_update=true", "runner.policy_in_env=true", "placement.actor=1"]
# Episodes cut at 20 steps so that some end (and restart) within the 128 steps.
HALFCHEETAH = [*TINY, "runner.total_env_steps=256", "env.max_episode_steps=20"]


def _compared(row: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in row.items() if not k.startswith(("time/", "throughput/"))}


def _resume_after_update_2(
    full: pathlib.Path, tmp_path: pathlib.Path, overrides: tuple[str, ...] = (), name: str = "cut"
) -> pathlib.Path:
    """A copy of ``full`` as a run killed after logging update 3 but before its
    checkpoint left it, resumed (with ``overrides``): the resumed run does update 3 again
    and its row replaces the logged one."""
    cut = tmp_path / name
    shutil.copytree(full, cut)
    for later in ("update_000003", "update_000004"):
        shutil.rmtree(cut / "checkpoints" / later)
    (cut / "checkpoints" / "latest").write_text("update_000002\n")
    lines = (cut / "metrics.jsonl").read_text().splitlines(keepends=True)
    stale = json.dumps({"step": json.loads(lines[2])["step"], "stale": 1.0}) + "\n"
    (cut / "metrics.jsonl").write_text("".join(lines[:2]) + stale)
    assert main(["train", "--resume", str(cut), *overrides]) == 0
    assert not any("stale" in r for r in read_metrics(cut / "metrics.jsonl"))
    return cut


def _assert_same_updates_3_4(full: pathlib.Path, resumed: pathlib.Path) -> None:
    want = read_metrics(full / "metrics.jsonl")
    got = read_metrics(resumed / "metrics.jsonl")
    assert [int(r["step"]) for r in got] == [int(r["step"]) for r in want]
    for w, g in zip(want[2:], got[2:], strict=True):
        w, g = _compared(w), _compared(g)
        assert set(w) == set(g)
        assert "train/pg_loss" in w and "train/vf_loss" in w
        for key in w:
            assert g[key] == pytest.approx(w[key], rel=1e-6, abs=1e-9), key


@pytest.mark.parametrize(
    "extra",
    [[], pytest.param(IN_ENV_OVERLAPPED, marks=pytest.mark.slow)],
    ids=["collocated", "in_env_overlapped"],
)
def test_cartpole_resumed_after_update_2_equals_uninterrupted(ray_cluster, tmp_path, capsys, extra):
    full = tmp_path / "full"
    args = ["train", "--config", "cartpole", "--run-dir", str(full), *CARTPOLE, *extra]
    assert main(args) == 0
    rows = read_metrics(full / "metrics.jsonl")
    assert sum(r.get("env/episodes", 0) for r in rows[2:]) > 0  # episodes end in 3-4
    state = torch.load(full / "checkpoints/update_000002/state.pt", weights_only=False)
    (env_state,) = state["flow"]["envs"]
    assert env_state is not None and len(env_state["stages"][0]["envs"]) == 2
    resumed = _resume_after_update_2(full, tmp_path)
    _assert_same_updates_3_4(full, resumed)
    state = torch.load(resumed / "checkpoints/update_000004/state.pt", weights_only=False)
    assert state["env_steps"] == 256 and state["actor"]["version"] == 4
    assert state["actor"]["updater"]["num_updates"] == 4
    assert (resumed / "checkpoints/latest").read_text().strip() == "update_000004"
    _assert_run_dir_artifacts(full)
    _assert_eval_runs(full, capsys)


def _assert_run_dir_artifacts(run_dir: pathlib.Path) -> None:
    rows = read_metrics(run_dir / "metrics.jsonl")
    for key in ("train/pg_loss", "time/update", "throughput/env_steps_per_s"):
        assert all(key in r for r in rows), key
    # Returns are logged for iterations in which episodes ended.
    assert any("env/return_mean" in r for r in rows)
    # Time to first step, once: process start (pytest's, here) to the end of update 1, so
    # at least that update's own time.
    assert [i for i, r in enumerate(rows) if "time/first_step_s" in r] == [0]
    assert rows[0]["time/first_step_s"] >= rows[0]["time/iteration"] > 0
    # Its parts, also once; in order they end before the first iteration starts.
    parts = ("time/startup_driver_s", "time/startup_ray_s", "time/startup_workers_s")
    for key in parts:
        assert [i for i, r in enumerate(rows) if key in r] == [0], key
        assert rows[0][key] > 0, key
    started = sum(rows[0][k] for k in parts)
    assert started + rows[0]["time/iteration"] <= rows[0]["time/first_step_s"]
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (run_dir / "config.yaml").is_file()
    assert (run_dir / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _assert_eval_runs(run_dir: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run_dir), "--episodes", "3"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["eval/episodes"] == 3 and metrics["eval/return_mean"] > 0
    # Overrides change the config for the evaluation only: episodes cut at 5 steps.
    short = ["--episodes", "4", "env.env_kwargs.max_episode_steps=5"]
    assert main(["eval", "--checkpoint", str(run_dir), *short]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["eval/episodes"] == 4 and metrics["eval/length_mean"] <= 5
    assert main(["eval", "--checkpoint", str(run_dir), "env.no_such_key=1"]) == 2
    assert "no_such_key" in capsys.readouterr().err


@pytest.mark.slow
def test_halfcheetah_resumed_after_update_2_equals_uninterrupted(ray_cluster, tmp_path):
    pytest.importorskip("mujoco")
    full = tmp_path / "full"
    args = ["train", "--config", "halfcheetah", "--run-dir", str(full), *HALFCHEETAH]
    assert main(args) == 0
    rows = read_metrics(full / "metrics.jsonl")
    assert sum(r.get("env/episodes", 0) for r in rows[2:]) > 0
    _assert_same_updates_3_4(full, _resume_after_update_2(full, tmp_path))


# Ray-heavy: the workspace suite runs it; the isolated-install checks (quick tests) skip it.
@pytest.mark.slow
def test_checkpoint_without_env_state_resumes_on_fresh_seeds(ray_cluster, tmp_path, capsys):
    # A checkpoint written before exact resume existed: the run goes on, on fresh seeds,
    # says so, and its update 3 is not the uninterrupted one (what the exact tests above
    # would catch if the env state were not restored).
    full = tmp_path / "full"
    assert main(["train", "--config", "cartpole", "--run-dir", str(full), *CARTPOLE]) == 0
    # Env state saved for 2 envs cannot continue 4: fresh seeds, said so.
    capsys.readouterr()
    more = ("env.num_envs=4", "runner.total_env_steps=512")
    _resume_after_update_2(full, tmp_path, more, name="wider")
    err = capsys.readouterr().err
    assert "restart on fresh seeds: the saved env state does not fit this config" in err
    assert "'num_envs': 2" in err
    ckpt = full / "checkpoints/update_000002/state.pt"
    state = torch.load(ckpt, weights_only=False)
    del state["flow"]
    torch.save(state, ckpt)
    capsys.readouterr()
    resumed = _resume_after_update_2(full, tmp_path)
    assert "restart on fresh seeds: the checkpoint holds no env state" in capsys.readouterr().err
    want, got = read_metrics(full / "metrics.jsonl"), read_metrics(resumed / "metrics.jsonl")
    assert [int(r["step"]) for r in got] == [64, 128, 192, 256]
    assert got[2]["train/vf_loss"] != pytest.approx(want[2]["train/vf_loss"], rel=1e-6)
