"""Greedy held-out evaluation of a model directory or checkpoint, in-process (no Ray):
accuracy, tool calls and turns per trajectory."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence

import torch

from rlinf.core import run_model_dir
from rlinf.envs.agentic import ToolAgentEnv
from rlinf.models.llm import (
    GenerationConfig,
    HFGenerationBackend,
    MultiTurnConfig,
    load_causal_lm,
    multi_turn_generate,
)

from ._config import load_agentic_config
from ._task import TaskData, TaskRow, load_task

__all__ = ["evaluate", "greedy_eval"]


def greedy_eval(
    model_path: str | pathlib.Path,
    rows: Sequence[TaskRow],
    task: TaskData,
    generation: GenerationConfig,
    multi_turn: MultiTurnConfig,
    *,
    batch_size: int = 256,
    dtype: torch.dtype = torch.float32,
) -> dict[str, float]:
    """Greedy multi-turn trajectories of ``model_path`` on ``rows``, tools run in a local
    thread pool, scored by the task's scorer.

    Returns ``{"eval/accuracy", "eval/no_answer_rate", "eval/tool_calls", "eval/turns",
    "eval/response_length", "eval/prompts"}``.
    """
    if not rows:
        raise ValueError("no rows to evaluate")
    model, tokenizer = load_causal_lm(model_path, dtype=dtype)
    backend = HFGenerationBackend(model, tokenizer)
    env = ToolAgentEnv(task.call_format, tools_factory=task.tools_factory)
    config = dataclasses.replace(generation, n=1, do_sample=False)
    responses: list[str] = []
    calls = turns = length = 0.0
    try:
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            ids = [tokenizer(r.prompt, add_special_tokens=False)["input_ids"] for r in chunk]
            out = multi_turn_generate(
                backend, tokenizer, ids, [None] * len(chunk), env, config, multi_turn
            )
            responses += out.transcripts
            calls += float(out.tool_calls.sum())
            turns += float(out.turns.sum())
            length += float(out.batch.response_lengths.sum())
    finally:
        env.close()
    scorer = task.scorer_factory()
    try:
        results = scorer.score(responses, [r.answer for r in rows])
    finally:
        close = getattr(scorer, "close", None)
        if callable(close):
            close()
    n = len(rows)
    return {
        "eval/accuracy": sum(r.score for r in results) / n,
        "eval/no_answer_rate": sum(r.status in ("no_answer", "no_code") for r in results) / n,
        "eval/tool_calls": calls / n,
        "eval/turns": turns / n,
        "eval/response_length": length / n,
        "eval/prompts": float(n),
    }


def evaluate(checkpoint: str | pathlib.Path, num_prompts: int = 0) -> dict[str, float]:
    """Greedy evaluation on the run's held-out split of ``checkpoint``: a run directory (its
    latest checkpoint), a checkpoint directory, or an HF model directory inside a run (e.g.
    ``<run>/sft_model``). ``num_prompts`` > 0 evaluates only the first that many."""
    cfg, model_dir = run_model_dir(checkpoint, load_agentic_config)
    torch.set_num_threads(cfg.runner.torch_threads)
    task = load_task(cfg.task, trace_rows=0)
    rows = task.test[:num_prompts] if num_prompts else task.test
    dtype = getattr(torch, cfg.model.dtype)
    return greedy_eval(model_dir, rows, task, cfg.generation, cfg.multi_turn, dtype=dtype)
