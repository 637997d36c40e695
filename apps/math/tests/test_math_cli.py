"""The rlinf-math CLI end to end on a tiny model: train, resume, eval, sft (LoRA), and the
collocated and disaggregated placements computing the same steps."""

from __future__ import annotations

import json
import pathlib

import pytest
import torch
from safetensors.torch import load_file

from rlinf.apps.math.cli import main
from rlinf.core import read_metrics

# One-digit sums: a tiny model learns some of them in a few SFT steps, so GRPO groups have
# reward spread and the RL updates really move the weights.
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
    "runner.eval_every=2",
    "runner.checkpoint_every=2",
    "runner.progress=false",
    "algo.lr=0.002",
    "checker.num_workers=1",
]


@pytest.fixture(scope="module")
def ray_init_kwargs():
    # Three logical CPU slots (the disaggregated preset puts each component on its own).
    # One Ray for the module; each flow launches (and kills) its own worker groups in it.
    return {"num_cpus": 3}


def _weights(model_dir: pathlib.Path) -> dict[str, torch.Tensor]:
    return load_file(str(model_dir / "model.safetensors"))


def _check_run_dir(run_dir: pathlib.Path, steps: list[int]) -> list[dict[str, float]]:
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [int(r["step"]) for r in rows] == steps
    for key in (
        "rollout/reward_mean",
        "rollout/accuracy",
        "rollout/response_length",
        "rollout/truncation_rate",
        "rollout/checker_timeouts",
        "train/loss",
        "train/entropy",
        "train/clip_frac",
        "train/grad_norm",
        "train/logprob_mismatch",
        "time/step",
        "throughput/tokens_per_s",
    ):
        assert key in rows[-1], key
    assert "eval/accuracy" in rows[-1]
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (run_dir / "config.yaml").is_file()
    assert (run_dir / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return rows


# Three flows and two SFT warm-ups: ~4 min on two shared cores.
@pytest.mark.slow(seconds=110)
def test_resume_continues_data_order_and_weights(ray_cluster, tmp_path, capsys):
    # Interrupted run: 2 steps, then resumed to 4.
    part = tmp_path / "part"
    assert (
        main(["train", "--config", "grpo", "--run-dir", str(part), *SMALL, "runner.steps=2"]) == 0
    )
    assert "(collocated)" in capsys.readouterr().out
    rows = _check_run_dir(part, [0, 1, 2])
    assert (part / "sft_model" / "config.json").is_file()
    state = torch.load(part / "checkpoints/step_000002/state.pt", weights_only=False)
    assert state["prompts"]["position"] == 8 and state["actor"]["version"] == 2
    assert main(["train", "--resume", str(part), "runner.steps=4"]) == 0
    rows = _check_run_dir(part, [0, 1, 2, 3, 4])
    state = torch.load(part / "checkpoints/step_000004/state.pt", weights_only=False)
    assert state["prompts"]["position"] == 16 and state["actor"]["version"] == 4
    assert state["actor"]["updater"]["num_updates"] == 4

    # The same 4 steps without interruption, on the disaggregated placement: the resumed
    # run saw the same prompts and samples, so the metrics and weights agree.
    full = tmp_path / "full"
    args = ["train", "--config", "grpo_disaggregated", "--run-dir", str(full)]
    assert main([*args, *SMALL, "runner.steps=4", "runner.name=grpo"]) == 0
    assert "(disaggregated)" in capsys.readouterr().out
    ref = _check_run_dir(full, [0, 1, 2, 3, 4])
    for a, b in zip(rows[1:], ref[1:], strict=True):
        assert a["rollout/reward_mean"] == b["rollout/reward_mean"]
        assert a["train/loss"] == pytest.approx(b["train/loss"], abs=1e-5)
    moved = False
    w_part = _weights(part / "checkpoints/step_000004/model")
    w_full = _weights(full / "checkpoints/step_000004/model")
    w_sft = _weights(part / "sft_model")
    for k, v in w_full.items():
        torch.testing.assert_close(w_part[k], v, atol=1e-5, rtol=1e-4)
        moved = moved or not torch.equal(v, w_sft[k])
    assert moved, "RL never changed the weights: no reward spread in any group"

    # eval of the run directory: the latest checkpoint's greedy accuracy on the same rows.
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(part), "--num-prompts", "8"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["eval/prompts"] == 8.0
    assert metrics["eval/accuracy"] == pytest.approx(rows[-1]["eval/accuracy"])


def test_lora_sft_writes_a_plain_model_dir(tmp_path, capsys):
    out = tmp_path / "sft"
    args = ["sft", "--config", "grpo", "--out", str(out), *SMALL, "sft.lora=true"]
    assert main([*args, "sft.lr=0.01", "runner.eval_prompts=8"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    model_dir = pathlib.Path(metrics["model_dir"])
    assert 0.0 <= metrics["eval/accuracy"] <= 1.0
    # Merged: plain HF weights, no adapter files, and different from the base.
    assert not (model_dir / "adapter_config.json").exists()
    merged, base = _weights(model_dir), _weights(out / "base_model")
    assert set(merged) == set(base)
    assert any(not torch.equal(merged[k], base[k]) for k in base)
