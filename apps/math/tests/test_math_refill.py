"""DAPO refill through the rlinf-math CLI: a run interrupted after 1 step and resumed to 2
sees the same prompts and samples as 2 steps without interruption, and the checkpointed
prompt position counts every prompt generated (the step's own and its refills)."""

from __future__ import annotations

import pytest
import torch

from rlinf.apps.math.cli import main
from rlinf.core import read_metrics

# test_math_cli.py's tiny setting: one-digit sums a tiny model partly learns in its SFT
# warm-up, so some groups have reward spread and others are flat.
SMALL = [
    "data.arithmetic.max_digits=1",
    "data.arithmetic.operators=[+,-]",
    "data.train_rows=60",
    "data.test_rows=8",
    "model.tiny.hidden_size=32",
    "model.tiny.intermediate_size=64",
    "sft.steps=200",
    "sft.lr=0.005",
    "sft.batch_size=32",
    "generation.max_new_tokens=12",
    "generation.n=4",
    "runner.prompts_per_step=4",
    "runner.checkpoint_every=1",
    "runner.progress=false",
    "algo.lr=0.002",
    "checker.num_workers=1",
]
REFILL = [
    "algo.name=dapo",
    "algo.dynamic_sampling=true",
    "algo.max_refill_rounds=2",
    "runner.eval_every=0",
]
P = "train/dynamic_sampling_"


@pytest.fixture(scope="module")
def ray_init_kwargs():
    return {"num_cpus": 3}


def _position(run_dir, step: int) -> int:
    state = torch.load(run_dir / f"checkpoints/step_{step:06d}/state.pt", weights_only=False)
    return int(state["prompts"]["position"])


# Three flows (1 + 1 + 2 steps) and one SFT warm-up.
@pytest.mark.slow(seconds=110)
def test_refill_resume_is_exact(ray_cluster, tmp_path):
    part = tmp_path / "part"
    args = ["train", "--config", "grpo", "--run-dir"]
    assert main([*args, str(part), *SMALL, *REFILL, "runner.steps=1"]) == 0
    assert main(["train", "--resume", str(part), "runner.steps=2"]) == 0
    full = tmp_path / "full"
    # The same starting model without a second warm-up.
    start = ["sft.steps=0", f"model.path={part / 'sft_model'}"]
    assert main([*args, str(full), *SMALL, *REFILL, *start, "runner.steps=2"]) == 0
    rows = [r for r in read_metrics(part / "metrics.jsonl") if r["step"] > 0]
    ref = [r for r in read_metrics(full / "metrics.jsonl") if r["step"] > 0]
    assert [int(r["step"]) for r in rows] == [1, 2] == [int(r["step"]) for r in ref]
    for a, b in zip(rows, ref, strict=True):
        for key in ("kept", "dropped", "refill_prompts", "short", "refill_rounds"):
            assert a[P + key] == b[P + key], (a["step"], key)
        assert a["rollout/reward_mean"] == b["rollout/reward_mean"]
        if P + "kept" in b and b[P + "kept"] == 0:  # nothing informative: no update
            assert "train/loss" not in a and "train/loss" not in b
        else:
            assert a["train/loss"] == pytest.approx(b["train/loss"], abs=1e-5)
        # Every prompt generated was kept or counted as dropped.
        assert a[P + "kept"] + a[P + "dropped"] == 4 + a[P + "refill_prompts"]
    # The prompt order advanced by every prompt generated, refills included.
    drawn = [4 + r[P + "refill_prompts"] for r in ref]
    assert _position(part, 1) == _position(full, 1) == drawn[0]
    assert _position(part, 2) == _position(full, 2) == sum(drawn)
    assert sum(r[P + "refill_prompts"] for r in ref) > 0, "no group was ever refilled"
