"""The rlinf-agentic CLI end to end on tiny settings: train (tool workers, collocated),
resume, eval, the disaggregated placement, the coder preset, and sft."""

from __future__ import annotations

import contextlib
import io
import json
import pathlib

import pytest
import torch

from rlinf.apps.agentic.cli import main
from rlinf.core import read_metrics

# A small corpus and a short warm-up: the model learns the call format from 60 traces, so
# trajectories have several turns and tool calls.
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
    "runner.eval_every=1",
    "runner.checkpoint_every=1",
    "runner.progress=false",
]


@pytest.fixture(scope="module")
def ray_init_kwargs():
    # Four logical CPU slots: the disaggregated run puts each component on its own.
    return {"num_cpus": 4}


def _check_run_dir(run_dir: pathlib.Path, steps: list[int]) -> list[dict[str, float]]:
    rows = read_metrics(run_dir)
    assert [int(r["step"]) for r in rows] == steps
    for key in (
        "rollout/reward_mean",
        "rollout/accuracy",
        "rollout/turns",
        "rollout/tool_calls",
        "rollout/truncation_rate",
        "train/loss",
        "train/grad_norm",
        "time/generate",
        "time/tool_wait",
        "time/step",
        "throughput/tokens_per_s",
        "eval/accuracy",
        "eval/tool_calls",
    ):
        assert key in rows[-1], key
    assert (run_dir / "config.yaml").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (run_dir / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return rows


@pytest.fixture(scope="module")
def search_run(ray_cluster, tmp_path_factory):
    """A 1-step search run (SFT warm-up, tool workers, collocated) and its CLI output.

    One step is enough: the step-1 rollout already shows the warm-up's tool use, and the
    resume test below trains the second step from the step-1 checkpoint."""
    run = tmp_path_factory.mktemp("search") / "run"
    args = ["train", "--config", "search", "--run-dir", str(run), *SMALL, "runner.steps=1"]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(args) == 0
    return run, out.getvalue()


def test_train_writes_run_dir_metrics_and_checkpoint(search_run):
    run, out = search_run
    assert "1 steps" in out and "(collocated)" in out
    rows = _check_run_dir(run, [0, 1])
    # The warm-up taught the format: the agent searches (the tool workers answered).
    assert rows[0]["eval/tool_calls"] > 0 and rows[1]["rollout/tool_calls"] > 0
    assert rows[1]["rollout/turns"] > 1
    assert (run / "sft_model" / "config.json").is_file()
    assert read_metrics(run / "sft")[-1]["step"] == 100
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_000001"
    state = torch.load(run / "checkpoints/step_000001/state.pt", weights_only=False)
    assert state["prompts"]["position"] == 4 and state["actor"]["version"] == 1
    assert (run / "checkpoints/step_000001/model/config.json").is_file()


def test_resume_continues_and_eval_agrees(search_run, capsys):
    run, _ = search_run
    # Resumed with the tools in a thread pool of the rollout worker instead of tool workers
    # (a placement change only: the same computation).
    with (run / "metrics.jsonl").open("a") as f:  # a step 2 logged before a crash
        f.write(json.dumps({"step": 2, "stale": 1.0}) + "\n")
    assert main(["train", "--resume", str(run), "runner.steps=2", "tools.local=true"]) == 0
    rows = _check_run_dir(run, [0, 1, 2])
    assert not any("stale" in r for r in rows)  # the re-run step replaced it
    state = torch.load(run / "checkpoints/step_000002/state.pt", weights_only=False)
    assert state["prompts"]["position"] == 8 and state["actor"]["version"] == 2
    assert state["actor"]["updater"]["num_updates"] == 2

    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["eval/prompts"] == 16.0
    # The in-process evaluation (local tool threads) agrees with the flow's (tool workers).
    assert metrics["eval/accuracy"] == pytest.approx(rows[-1]["eval/accuracy"])
    assert metrics["eval/tool_calls"] == pytest.approx(rows[-1]["eval/tool_calls"])


# A minute or more of Ray workers: a slow test (CI runs it; the quick suite keeps one
# end-to-end run per app).
@pytest.mark.slow
def test_disaggregated_placement(ray_cluster, tmp_path, capsys):
    run = tmp_path / "disagg"
    args = ["train", "--config", "search_disaggregated", "--run-dir", str(run), *SMALL]
    assert main([*args, "runner.steps=1", "sft.steps=20"]) == 0
    assert "(disaggregated)" in capsys.readouterr().out
    _check_run_dir(run, [0, 1])


# A minute or more of Ray workers: a slow test (CI runs it; the quick suite keeps one
# end-to-end run per app).
@pytest.mark.slow
def test_coder_preset_one_step(ray_cluster, tmp_path, capsys):
    run = tmp_path / "coder"
    args = ["train", "--config", "coder", "--run-dir", str(run)]
    small = [
        "task.coding.num_train=8",
        "task.coding.num_test=4",
        "task.sft_traces=4",
        "sft.steps=5",
        "model.tiny.hidden_size=32",
        "model.tiny.intermediate_size=64",
        "generation.max_new_tokens=48",
        "generation.n=2",
        "multi_turn.max_response_tokens=96",
        "runner.steps=1",
        "runner.prompts_per_step=2",
        "runner.progress=false",
    ]
    assert main([*args, *small]) == 0
    rows = read_metrics(run)
    assert [int(r["step"]) for r in rows] == [0, 1]
    # An untrained model rarely writes working code: the reward is measured, not faked.
    assert 0.0 <= rows[1]["rollout/reward_mean"] <= 1.0
    assert rows[1]["eval/prompts"] == 4.0
    assert (run / "checkpoints" / "step_000001" / "model" / "config.json").is_file()


def test_sft_command_writes_a_model_and_evaluates(tmp_path, capsys):
    out = tmp_path / "sft"
    args = ["sft", "--config", "search", "--out", str(out), *SMALL, "sft.steps=10"]
    assert main(args) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert (pathlib.Path(metrics["model_dir"]) / "config.json").is_file()
    assert metrics["eval/prompts"] == 16.0 and 0.0 <= metrics["eval/accuracy"] <= 1.0
