"""The math app with a data-parallel actor (``placement.actor=0-1``: two FSDP2 ranks over
gloo): a step equals the one-rank step, its checkpoint resumes on one rank and continues
as the one-rank run does.

That the default job learns is proven once, on one rank (test_math_learning.py): a
two-rank step equals the one-rank step (here), and two actor plus two rollout ranks run
whole steps in test_math_dynamic.py, so a second 150-step learning run on two ranks
(~3 min) would prove nothing more."""

from __future__ import annotations

import pytest
import torch

from rlinf.apps.math.cli import main
from rlinf.core import read_metrics

# One-digit sums after a short SFT warm-up: GRPO groups have reward spread, so the updates
# really move the weights (as in test_math_cli).
SMALL = [
    "data.arithmetic.max_digits=1",
    "data.arithmetic.operators=[+,-]",
    "data.train_rows=60",
    "data.test_rows=8",
    "model.tiny.hidden_size=32",
    "model.tiny.intermediate_size=64",
    "sft.steps=150",
    "sft.lr=0.005",
    "sft.batch_size=32",
    "generation.max_new_tokens=12",
    "generation.n=4",
    "runner.prompts_per_step=4",
    "runner.eval_every=1",
    "runner.checkpoint_every=1",
    "runner.progress=false",
    "algo.lr=0.002",
    "checker.num_workers=1",
]
COMPARED = ("train/loss", "train/pg_loss", "train/grad_norm", "train/kl", "eval/accuracy")


def _train(run_dir, *overrides: str) -> list[dict]:
    args = ["train", "--config", "grpo", "--run-dir", str(run_dir), *SMALL, *overrides]
    assert main(args) == 0
    return read_metrics(run_dir / "metrics.jsonl")


# Three app runs (~3 min here): slow. The quick suite keeps the same equality and the
# 2 -> 1 rank resume at the worker level (rlinf-models' test_models_llm_dp_actor.py).
@pytest.mark.slow(seconds=125)
def test_two_actor_ranks_step_like_one_and_resume_on_one(ray_cluster, tmp_path, capsys):
    one = _train(tmp_path / "one", "runner.steps=2")
    two_dir = tmp_path / "two"
    # The same start without a second SFT warm-up: the one-rank run's SFT output.
    sft = f"model.path={tmp_path / 'one' / 'sft_model'}"
    two = _train(two_dir, "runner.steps=1", "placement.actor=0-1", sft, "sft.steps=0")
    assert "(hybrid)" in capsys.readouterr().out  # actor on 0-1, rollout and reward on 0
    ckpt = two_dir / "checkpoints/step_000001"
    state = torch.load(ckpt / "state.pt", weights_only=False)
    assert state["actor"]["version"] == 1 and state["actor"]["train_state"] == "train_state"
    assert (ckpt / "model/config.json").is_file()
    assert (ckpt / "model/train_state/policy/.metadata").is_file()
    # The sharded checkpoint (2 ranks) resumes on ONE rank (resharded) for the next step.
    assert main(["train", "--resume", str(two_dir), "runner.steps=2", "placement.actor=0"]) == 0
    two = read_metrics(two_dir / "metrics.jsonl")
    assert [r["step"] for r in two] == [r["step"] for r in one] == [0, 1, 2]
    assert two[1]["train/weight_version"] == 1.0 and two[2]["train/weight_version"] == 2.0
    for a, b in zip(one, two, strict=True):
        # The same rollouts: the weights synced to the rollout rank after the 2-rank update
        # (and after the resume) are the one-rank ones up to float summation order.
        assert a["rollout/reward_mean" if a["step"] else "eval/accuracy"] == pytest.approx(
            b["rollout/reward_mean" if b["step"] else "eval/accuracy"]
        )
        for key in COMPARED:
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), (key, a, b)
    assert one[1]["train/grad_norm"] > 0


def test_more_actor_ranks_than_responses_fails_before_ray(tmp_path, capsys):
    args = ["train", "--config", "grpo", "--run-dir", str(tmp_path / "bad"), *SMALL]
    bad = [
        "cluster.devices=4",
        "placement.actor=0-3",
        "runner.prompts_per_step=1",
        "generation.n=2",
    ]
    assert main([*args, *bad]) == 2
    assert "placement.actor: 4 actor ranks but a step has only 2 responses" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "bad").exists()
