"""The issue's bar through the full CLI: the default search job (SFT warm-up on 200 gold
tool-use traces, then GRPO on multi-turn rollouts with the search tool, seed 0) raises the
held-out greedy accuracy over the post-SFT accuracy by a clear margin."""

from __future__ import annotations

import time

import pytest

from rlinf.apps.agentic.cli import main
from rlinf.core import read_metrics


# The longest file of the slow phase (the last CI: 765 s beside the quick phase): it
# starts first (root conftest.py).
@pytest.mark.slow(seconds=700)
# The full default job takes 4-8 minutes on two cores; the suite's 600 s guard against
# hangs would cut it short on a slower or busier machine.
@pytest.mark.timeout(1800)
def test_search_preset_raises_heldout_accuracy(tmp_path):
    run_dir = tmp_path / "search"
    start = time.perf_counter()
    # The preset as shipped, evaluated at steps 0, 40 and 80 instead of every 20 (two
    # greedy evaluations of 400 held-out questions fewer, ~20 s each). Its 80 GRPO steps
    # stay: shorter runs did not rise reliably (apps/agentic/README.md, "Shorter runs").
    args = [
        "train",
        "--config",
        "search",
        "--run-dir",
        str(run_dir),
        "runner.progress=false",
        "runner.eval_every=40",
    ]
    assert main(args) == 0
    wall = time.perf_counter() - start
    evals = [r for r in read_metrics(run_dir) if "eval/accuracy" in r]
    assert evals[0]["step"] == 0  # after SFT, before any RL update
    before, after = evals[0]["eval/accuracy"], evals[-1]["eval/accuracy"]
    curve = ", ".join(
        f"{int(r['step'])}: {r['eval/accuracy']:.3f} ({r['eval/tool_calls']:.2f} calls)"
        for r in evals
    )
    print(f"\nheld-out accuracy (search preset, seed 0, 400 questions): {curve}; {wall:.0f}s")
    assert evals[-1]["eval/prompts"] == 400
    # Measured on the development machine (two shared CPU cores), 0.520 after SFT, final
    # evaluation after 80 steps: runner.seed 0 0.627 (+0.107), seed 1 0.623 (+0.103),
    # seed 2 0.673 (+0.153); this test (evaluating every 40 steps) seed 0 0.667 (+0.147).
    # 400 questions give a standard error of ~0.025 per evaluation, and another CPU's float
    # rounding changes the sampled trajectories as a seed does, so the bar sits below the
    # weakest seed measured.
    assert after >= before + 0.05, curve
    # The agent still searches (twice per question when it follows the gold procedure).
    assert evals[-1]["eval/tool_calls"] >= 1.5, curve
