"""scheduler.dynamic: lending the env / rollout slot to the actor's update trains on the
same samples as the static placement, and the lends are recorded as metrics.

On CPU slots a loan raises the update's intra-op threads. Torch's CPU kernels may split a
reduction differently with more threads; for the tiny MLP here every op runs below torch's
parallel grain size, so the results are bit-identical and every metric but timings and the
``sched/*`` records must match (a large model would be compared on samples, counts and
versions only: see the benchmark)."""

from __future__ import annotations

import pathlib

import pytest

from rlinf.apps.embodied import load_embodied_config
from rlinf.apps.embodied.cli import main
from rlinf.core import ConfigError, read_metrics

RUN = [
    "env.num_envs=2",
    "runner.horizon=32",
    "runner.pipeline_stages=1",
    "runner.checkpoint_every=0",
    "runner.progress=false",
    "runner.total_env_steps=192",  # 3 updates of 2 x 32 steps
    "runner.policy_in_env=true",
    "placement.actor=1",  # env + rollout on slot 0, actor on slot 1
    "algo.epochs=2",
    "algo.minibatches=2",
]


def _train(tmp_path: pathlib.Path, name: str, *extra: str) -> list[dict[str, float]]:
    run_dir = tmp_path / name
    args = ["train", "--config", "cartpole", "--run-dir", str(run_dir), *RUN, *extra]
    assert main(args) == 0
    return read_metrics(run_dir / "metrics.jsonl")


def _compared(row: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in row.items() if not k.startswith(("time/", "throughput/", "sched/"))}


# The overlapped case lends only when the rollout happens to end first (timing): its
# equality runs in the slow phase; the sequential case lends on every update.
@pytest.mark.parametrize(
    "overlap",
    [False, pytest.param(True, marks=pytest.mark.slow)],
    ids=["sequential", "overlapped"],
)
def test_dynamic_trains_on_the_same_samples(ray_cluster, tmp_path, overlap):
    flags = [f"runner.overlap_update={str(overlap).lower()}"]
    static = _train(tmp_path, "static", *flags)
    dynamic = _train(tmp_path, "dynamic", *flags, "scheduler.dynamic=true")
    assert len(static) == len(dynamic) == 3
    for s, d in zip(static, dynamic, strict=True):
        assert not any(k.startswith("sched/") for k in s)  # static: no lending at all
        s, d_cmp = _compared(s), _compared(d)
        assert set(s) == set(d_cmp)
        assert "train/pg_loss" in s and "train/weight_version" in s
        for key in s:
            assert d_cmp[key] == pytest.approx(s[key], rel=1e-6, abs=1e-9), key
        # Every update reports its lending; a lend is one slot and is always recalled.
        assert d["sched/decisions"] == 2 * d["sched/lent_slots"]
        assert d["sched/lent_slots"] in (0.0, 1.0)
        assert (d["sched/lend_s"] > 0) == (d["sched/lent_slots"] == 1.0)
    if not overlap:
        # The rollout is over before the update starts: its slot is lent every time.
        assert [d["sched/lent_slots"] for d in dynamic] == [1.0, 1.0, 1.0]
        assert any(d["sched/lent_update_s"] > 0 for d in dynamic)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["placement.actor=0"], r"placement\.actor shares slots \[0\] with env / rollout"),
        (["placement.actor=0-1"], "lends threads to a one-rank actor; placement.actor has 2"),
        (["scheduler.dynamic=maybe"], r"scheduler\.dynamic"),
    ],
)
def test_dynamic_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_embodied_config("cartpole", ["scheduler.dynamic=true", *overrides])
