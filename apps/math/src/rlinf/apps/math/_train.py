"""Training driver: the shared LLM RL loop (:func:`rlinf.models.llm.run_rl_loop`: base
model, SFT warm-up, RL steps, evaluation, checkpoints, resume) on math rows, then the plot."""

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

from ._config import MathConfig, load_math_config
from ._data import load_splits, prompt_iterator
from ._flow import MathFlow
from ._plot import plot_learning_curve
from ._sft import sft_examples

__all__ = ["TrainResult", "resume", "train"]


@dataclass(frozen=True)
class TrainResult:
    """What a finished (or resumed and finished) run reports.

    Attributes:
        run_dir: the run directory.
        steps: RL updates done in total (including those before a resume).
        initial_accuracy: held-out greedy accuracy before the first RL update (after the
            SFT warm-up); NaN for a resumed run.
        final_accuracy: held-out greedy accuracy after the last update.
        wall_s: seconds of this invocation (SFT included).
        placement_mode: ``collocated``, ``disaggregated`` or ``hybrid``.
    """

    run_dir: pathlib.Path
    steps: int
    initial_accuracy: float
    final_accuracy: float
    wall_s: float
    placement_mode: str


def train(
    config: str | pathlib.Path, overrides: Sequence[str] = (), run_dir: str | None = None
) -> TrainResult:
    """Train from a preset name or YAML path with ``key=value`` overrides.

    The config is fully validated before the run directory or any worker is created.
    """
    cfg, path = start_run(load_math_config, config, overrides, run_dir)
    return _run(cfg, path, state=None)


def resume(run_dir: str | pathlib.Path, overrides: Sequence[str] = ()) -> TrainResult:
    """Continue a run from its latest checkpoint (overrides may e.g. raise
    ``runner.steps``); metrics append to the same files, prompts continue in order."""
    cfg, path, state = resume_run(run_dir, load_math_config, overrides)
    return _run(cfg, path, state=state)


def _run(cfg: MathConfig, run_dir: pathlib.Path, state: dict[str, Any] | None) -> TrainResult:
    r = cfg.runner
    start = time.perf_counter()
    torch.set_num_threads(r.torch_threads)
    torch.manual_seed(r.seed)
    train_rows, test_rows = load_splits(cfg.data)
    result = run_rl_loop(
        r,
        run_dir,
        state,
        initial_model=lambda: prepare_initial_model(
            cfg.model, cfg.sft, run_dir, lambda: sft_examples(train_rows, cfg.sft)
        ),
        make_flow=lambda model, ref: MathFlow(cfg, model, ref, total_updates=r.steps),
        prompts=prompt_iterator(cfg.data, train_rows, r.seed),
        eval_rows=test_rows,
    )
    plot_learning_curve(run_dir, title=f"math ({cfg.algo.name}, {r.name})")
    return TrainResult(
        run_dir,
        result.steps,
        result.first_eval.get("eval/accuracy", math.nan),
        result.last_eval.get("eval/accuracy", math.nan),
        time.perf_counter() - start,
        result.placement_mode,
    )
