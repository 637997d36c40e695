"""The asynchronous options through the rlinf-agentic CLI: DAPO dynamic sampling with
refill from the stream (the ledger's counts add up: every group generated was kept or
dropped) and partial rollouts with ``max_staleness=1`` (the bookkeeping metrics are
reported and no trained sample is older than the bound)."""

from __future__ import annotations

import pytest

from rlinf.apps.agentic.cli import main
from rlinf.core import read_metrics

# test_agentic_cli.py's small search setting; a format reward spreads the rewards of a
# group (a tagged wrong answer scores 0.1), so that some groups are kept and trained.
SMALL = [
    "task.multihop.num_people=200",
    "task.multihop.num_cities=20",
    "task.multihop.num_countries=4",
    "task.multihop.max_syllables=2",
    "task.multihop.test_people=16",
    "task.sft_traces=60",
    "sft.steps=100",
    "sft.lr=0.005",
    "sft.batch_size=16",
    "generation.n=4",
    "runner.prompts_per_step=4",
    "runner.eval_every=0",
    "runner.checkpoint_every=0",
    "runner.progress=false",
    "tools.local=true",
    "task.format_reward=0.1",
]
P = "train/dynamic_sampling_"


@pytest.fixture(scope="module")
def ray_init_kwargs():
    return {"num_cpus": 3}


# An SFT warm-up and two short flows: minutes.
@pytest.mark.slow(seconds=115)
def test_refill_then_partial_rollouts(ray_cluster, tmp_path):
    refill = tmp_path / "refill"
    args = ["train", "--config", "search", "--run-dir"]
    extra = ["algo.dynamic_sampling=true", "algo.max_refill_rounds=2", "runner.steps=2"]
    assert main([*args, str(refill), *SMALL, *extra]) == 0
    rows = [r for r in read_metrics(refill) if r["step"] > 0]
    assert [int(r["step"]) for r in rows] == [1, 2]
    for r in rows:
        for key in ("kept", "dropped", "refill_rounds", "refill_prompts", "short"):
            assert P + key in r, (r["step"], key)
        # Every group generated (the step's 4 prompts and its refills) was kept or dropped.
        assert r[P + "kept"] + r[P + "dropped"] == 4 + r[P + "refill_prompts"]
        assert r[P + "short"] == 4 - r[P + "kept"]
        assert 0 <= r[P + "refill_rounds"] <= 2
        assert r["rollout/responses"] == 4 * (4 + r[P + "refill_prompts"])
        if r[P + "kept"]:
            assert r["train/kept_responses"] == 4 * r[P + "kept"]
    assert sum(r[P + "kept"] for r in rows) > 0  # the refilled batches were trained on

    partial = tmp_path / "partial"
    start = ["sft.steps=0", f"model.path={refill / 'sft_model'}"]
    extra = [
        "runner.max_staleness=1",
        "runner.partial_mode=continue",
        "runner.update_interval_tokens=4",
        "runner.steps=2",
    ]
    assert main([*args, str(partial), *SMALL, *start, *extra]) == 0
    rows = [r for r in read_metrics(partial) if r["step"] > 0]
    assert [int(r["step"]) for r in rows] == [1, 2]
    for r in rows:
        assert r["train/staleness_max"] <= 1.0
        assert r["rollout/requeued"] == 0.0  # continue never reruns
        assert 0.0 <= r["rollout/mixed_versions"] <= 1.0
        assert r["rollout/turns"] >= 1.0
