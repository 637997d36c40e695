"""scheduler.dynamic in the math app: config errors (quick), and the same samples and
metrics with and without lending the rollout / reward slot to the actor's update."""

from __future__ import annotations

import pytest

from rlinf.apps.math import load_math_config
from rlinf.apps.math.cli import main
from rlinf.core import ConfigError, read_metrics

# Rollout and reward on slot 0, the actor alone on slot 1.
LENDING = [
    "scheduler.dynamic=true",
    "cluster.devices=2",
    "placement.actor=1",
    "placement.rollout=0",
    "placement.reward=0",
]


def test_dynamic_loads_on_a_disaggregated_placement():
    cfg = load_math_config("grpo", LENDING)
    assert cfg.scheduler.dynamic
    assert load_math_config("grpo").scheduler.dynamic is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["placement.actor=0"], r"placement\.actor shares slots \[0\] with rollout / reward"),
        (
            ["placement.actor=0-1", "placement.rollout=0-1", "placement.reward=0-1"],
            "lends threads to a one-rank actor; placement.actor has 2",
        ),
        (["generation.backend=vllm"], r"generation\.backend='vllm' keeps its engine"),
        (
            ["algo.name=dapo", "algo.dynamic_sampling=true", "algo.max_refill_rounds=1"],
            r"algo\.max_refill_rounds=1 generates refills",
        ),
        (["scheduler.dynamic=maybe"], r"scheduler\.dynamic"),
        (["scheduler.dynmic=true"], r"scheduler\.dynmic"),
    ],
)
def test_dynamic_config_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_math_config("grpo", [*LENDING, *overrides])


def test_dynamic_refuses_auto_placement():
    with pytest.raises(ConfigError, match=r"scheduler\.dynamic: plan the placement first"):
        load_math_config("grpo", ["scheduler.dynamic=true", "placement=auto"])


# test_math_cli.py's tiny setting (one-digit sums the tiny model partly learns in a short
# SFT warm-up, so groups have reward spread and the updates have signal).
SMALL = [
    "data.arithmetic.max_digits=1",
    "data.arithmetic.operators=[+,-]",
    "data.train_rows=60",
    "data.test_rows=8",
    "model.tiny.hidden_size=32",
    "model.tiny.intermediate_size=64",
    "generation.max_new_tokens=12",
    "generation.n=4",
    "runner.prompts_per_step=4",
    "runner.eval_every=0",
    "runner.checkpoint_every=0",
    "runner.progress=false",
    "runner.steps=3",
    "runner.torch_threads=1",
    "algo.lr=0.002",
    "checker.num_workers=1",
    "cluster.devices=2",
    "placement.actor=1",
    "placement.rollout=0",
    "placement.reward=0",
]


@pytest.fixture(scope="module")
def ray_init_kwargs():
    return {"num_cpus": 3}


def _compared(row: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in row.items() if not k.startswith(("time/", "throughput/", "sched/"))}


# Two tiny runs of 3 steps and one SFT warm-up: ~3 min on two shared cores.
@pytest.mark.slow
def test_dynamic_trains_on_the_same_samples(ray_cluster, tmp_path):
    args = ["train", "--config", "grpo", "--run-dir"]
    static_dir, dynamic_dir = tmp_path / "static", tmp_path / "dynamic"
    warm = ["sft.steps=60", "sft.lr=0.005", "sft.batch_size=32"]
    assert main([*args, str(static_dir), *SMALL, *warm]) == 0
    # The same starting model without a second warm-up.
    start = ["sft.steps=0", f"model.path={static_dir / 'sft_model'}"]
    assert main([*args, str(dynamic_dir), *SMALL, *start, "scheduler.dynamic=true"]) == 0
    static = [r for r in read_metrics(static_dir / "metrics.jsonl") if r["step"] > 0]
    dynamic = [r for r in read_metrics(dynamic_dir / "metrics.jsonl") if r["step"] > 0]
    assert len(static) == len(dynamic) == 3
    for s, d in zip(static, dynamic, strict=True):
        assert not any(k.startswith("sched/") for k in s)  # static: no lending at all
        s_cmp, d_cmp = _compared(s), _compared(d)
        assert set(s_cmp) == set(d_cmp)
        # The samples: the same rewards, lengths and trained tokens, exactly.
        for key in ("rollout/reward_mean", "rollout/response_length", "train/trained_tokens"):
            assert d_cmp[key] == s_cmp[key], key
        # More threads only reorder float sums in the update.
        for key in s_cmp:
            assert d_cmp[key] == pytest.approx(s_cmp[key], rel=1e-4, abs=1e-6), key
        # k=0: the rollout / reward slot is idle once the step's data is in, so it is lent
        # to every update (one slot: rollout and reward share it) and recalled at its end.
        assert d["sched/lent_slots"] == 1.0
        assert d["sched/decisions"] == 2.0
        assert d["sched/lend_s"] > 0
    assert any(d["sched/lent_update_s"] > 0 for d in dynamic)
