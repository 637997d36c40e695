"""Training driver: the shared LLM RL loop (:func:`rlinf.models.llm.run_rl_loop`: base
model, SFT warm-up on gold tool-use traces, RL steps, evaluation, checkpoints, resume) on
the task's rows, then the plot."""

from __future__ import annotations

import math
import pathlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rlinf.core import resume_run, start_run
from rlinf.models.llm import prepare_initial_model, run_rl_loop

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
    cfg, path = start_run(load_agentic_config, config, overrides, run_dir)
    return _run(cfg, path, state=None)


def resume(run_dir: str | pathlib.Path, overrides: Sequence[str] = ()) -> TrainResult:
    """Continue a run from its latest checkpoint (overrides may e.g. raise
    ``runner.steps``); metrics append to the same files, prompts continue in order."""
    cfg, path, state = resume_run(run_dir, load_agentic_config, overrides)
    return _run(cfg, path, state=state)


def initial_model(cfg: AgenticConfig, out_dir: pathlib.Path, task: TaskData) -> str:
    """The model RL starts from: the configured or tiny base, after the SFT warm-up on the
    gold traces of the first ``task.sft_traces`` train rows (observations not trained)."""
    return prepare_initial_model(
        cfg.model, cfg.sft, out_dir, lambda: task.sft_examples(cfg.task.sft_traces)
    )


def _run(cfg: AgenticConfig, run_dir: pathlib.Path, state: dict[str, Any] | None) -> TrainResult:
    r = cfg.runner
    start = time.perf_counter()
    torch.set_num_threads(r.torch_threads)
    torch.manual_seed(r.seed)
    # A resumed run needs no gold traces (coding makes them by running the code tool).
    task = load_task(cfg.task, trace_rows=cfg.task.sft_traces if state is None else 0)
    res = run_rl_loop(
        r,
        run_dir,
        state,
        initial_model=lambda: initial_model(cfg, run_dir, task),
        make_flow=lambda model, ref: AgenticFlow(cfg, task, model, ref, total_updates=r.steps),
        prompts=prompt_iterator(cfg.task, task.train, r.seed),
        eval_rows=task.test,
        postfix={"calls": "rollout/tool_calls"},
    )
    plot_learning_curve(run_dir, title=f"agentic ({cfg.task.kind}, {cfg.algo.name}, {r.name})")
    first, last = res.first_eval, res.last_eval
    return TrainResult(
        run_dir,
        res.steps,
        first.get("eval/accuracy", math.nan),
        last.get("eval/accuracy", math.nan),
        first.get("eval/tool_calls", math.nan),
        last.get("eval/tool_calls", math.nan),
        time.perf_counter() - start,
        res.placement_mode,
    )
