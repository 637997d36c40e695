"""The issue's bar through the full CLI: the default job (SFT warm-up, then GRPO on the
synthetic arithmetic task, seed 0) raises held-out greedy accuracy by a clear margin over
the post-SFT accuracy."""

from __future__ import annotations

import time

import pytest

from rlinf.apps.math.cli import main
from rlinf.core import read_metrics


@pytest.mark.slow(seconds=140)
# The full default job takes 4-8 minutes on two cores; the suite's 600 s guard against
# hangs would cut it short on a slower or busier machine.
@pytest.mark.timeout(1800)
def test_grpo_preset_raises_heldout_accuracy(tmp_path):
    run_dir = tmp_path / "grpo"
    start = time.perf_counter()
    assert (
        main(["train", "--config", "grpo", "--run-dir", str(run_dir), "runner.progress=false"]) == 0
    )
    wall = time.perf_counter() - start
    evals = [r for r in read_metrics(run_dir / "metrics.jsonl") if "eval/accuracy" in r]
    assert evals[0]["step"] == 0  # after SFT, before any RL update
    before = evals[0]["eval/accuracy"]
    # The mean of the last three evaluations (steps 130-150), not a single lucky one: 200
    # held-out prompts give a standard error of ~0.03 per evaluation.
    after = sum(r["eval/accuracy"] for r in evals[-3:]) / 3
    curve = ", ".join(f"{int(r['step'])}: {r['eval/accuracy']:.3f}" for r in evals)
    print(f"\nheld-out accuracy (grpo preset, seed 0): {curve}; {wall:.0f}s")
    # Measured on the development machine, 0.615 after SFT, mean of the last three evals:
    # seed 0 0.705 (+0.09), seed 1 0.670 (+0.055). Another CPU's float rounding changes the
    # sampled trajectory as a seed does, so the bar sits below the weakest seed measured.
    assert after >= before + 0.03, curve
