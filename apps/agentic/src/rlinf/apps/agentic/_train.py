"""Training driver: base model, SFT warm-up on gold tool-use traces, RL steps, evaluation,
checkpoints, resume, plot."""

from __future__ import annotations

import math
import pathlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rlinf.core import (
    MetricLogger,
    new_run_dir,
    restore_driver_rng,
    resume_run,
    save_checkpoint,
    write_config,
)
from rlinf.models.llm import build_tiny_causal_lm, run_sft

from ._config import AgenticConfig, load_agentic_config
from ._flow import AgenticFlow
from ._plot import plot_learning_curve
from ._task import TaskData, load_task, prompt_iterator

__all__ = ["TrainResult", "initial_model", "resume", "train"]


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or resumed and finished) run reports.

    Attributes:
        run_dir: the run directory.
        steps: RL updates done in total (including those before a resume).
        initial_accuracy: held-out greedy accuracy before the first RL update (after the
            SFT warm-up); NaN for a resumed run.
        final_accuracy: held-out greedy accuracy after the last update.
        initial_tool_calls: tool calls per held-out trajectory before RL (NaN if resumed).
        final_tool_calls: tool calls per held-out trajectory after the last update.
        wall_s: seconds of this invocation (SFT included).
        placement_mode: ``collocated``, ``disaggregated`` or ``hybrid``.
    """

    run_dir: pathlib.Path
    steps: int
    initial_accuracy: float
    final_accuracy: float
    initial_tool_calls: float
    final_tool_calls: float
    wall_s: float
    placement_mode: str


def train(
    config: str | pathlib.Path, overrides: Sequence[str] = (), run_dir: str | None = None
) -> TrainResult:
    """Train from a preset name or YAML path with ``key=value`` overrides.

    The config is fully validated before the run directory or any worker is created.
    """
    cfg = load_agentic_config(config, overrides)
    path = new_run_dir(cfg.runner.runs_root, cfg.runner.name, run_dir)
    write_config(cfg, path)
    return _run(cfg, path, state=None)


def resume(run_dir: str | pathlib.Path, overrides: Sequence[str] = ()) -> TrainResult:
    """Continue a run from its latest checkpoint (overrides may e.g. raise
    ``runner.steps``); metrics append to the same files, prompts continue in order."""
    cfg, path, state = resume_run(run_dir, load_agentic_config, overrides)
    return _run(cfg, path, state=state)


def initial_model(cfg: AgenticConfig, out_dir: pathlib.Path, task: TaskData) -> str:
    """The model RL starts from: the configured or tiny base, after the SFT warm-up on the
    gold traces of the first ``task.sft_traces`` train rows (observations not trained)."""
    base = cfg.model.path or str(build_tiny_causal_lm(out_dir / "base_model", cfg.model.tiny))
    if not cfg.sft.steps:
        return str(base)
    examples = task.sft_examples(cfg.task.sft_traces)
    with MetricLogger(out_dir / "sft", backends=("jsonl",)) as log:
        out = run_sft(
            examples,
            base,
            out_dir / "sft_model",
            cfg.sft,
            dtype=getattr(torch, cfg.model.dtype),
            log=log.log,
        )
    return str(out)


def _run(cfg: AgenticConfig, run_dir: pathlib.Path, state: dict[str, Any] | None) -> TrainResult:
    from tqdm import tqdm

    r = cfg.runner
    start = time.perf_counter()
    torch.set_num_threads(r.torch_threads)
    torch.manual_seed(r.seed)
    task = load_task(cfg.task, trace_rows=cfg.task.sft_traces if state is None else 0)
    eval_rows = task.test[: r.eval_prompts] if r.eval_prompts else task.test
    prompts = prompt_iterator(cfg.task, task.train, r.seed)
    if state is None:
        init = initial_model(cfg, run_dir, task)
        model_path, step = init, 0
    else:
        init, model_path, step = state["init_model"], str(state["model_dir"]), int(state["step"])
        prompts.load_state_dict(state["prompts"])
        restore_driver_rng(state)
    initial = final = calls0 = calls = math.nan
    flow = AgenticFlow(cfg, task, model_path, init, total_updates=r.steps)
    logger = MetricLogger(run_dir, backends=r.metric_backends, run_name=r.name)
    try:
        if state is not None:
            flow.call_actor("load_checkpoint_state", state["actor"])
        version = flow.sync_weights()
        if state is None:
            metrics = flow.evaluate(eval_rows, version)
            initial = final = metrics["eval/accuracy"]
            calls0 = calls = metrics["eval/tool_calls"]
            logger.log(metrics, 0)
        bar = tqdm(
            total=r.steps, initial=step, unit="step", disable=not r.progress, dynamic_ncols=True
        )
        while step < r.steps:
            metrics = flow.step(prompts.next_batch(r.prompts_per_step), version)
            version += 1
            step += 1
            if (r.eval_every and step % r.eval_every == 0) or step == r.steps:
                metrics.update(flow.evaluate(eval_rows, version))
                final, calls = metrics["eval/accuracy"], metrics["eval/tool_calls"]
            logger.log(metrics, step)
            bar.update(1)
            bar.set_postfix(
                reward=f"{metrics.get('rollout/reward_mean', math.nan):.2f}",
                calls=f"{metrics['rollout/tool_calls']:.2f}",
                acc=f"{final:.2f}",
                tok_s=f"{metrics['throughput/tokens_per_s']:.0f}",
            )
            if (r.checkpoint_every and step % r.checkpoint_every == 0) or step == r.steps:
                save_checkpoint(
                    run_dir,
                    f"step_{step:06d}",
                    {
                        "step": step,
                        "actor": flow.call_actor("checkpoint_state"),
                        "prompts": prompts.state_dict(),
                        "init_model": init,
                    },
                    save_model=lambda d: flow.call_actor("save_pretrained", d),
                )
        bar.close()
        mode = str(flow.mode)
    finally:
        logger.close()
        flow.shutdown()
    plot_learning_curve(run_dir, title=f"agentic ({cfg.task.kind}, {cfg.algo.algorithm}, {r.name})")
    wall = time.perf_counter() - start
    return TrainResult(run_dir, step, initial, final, calls0, calls, wall, mode)
