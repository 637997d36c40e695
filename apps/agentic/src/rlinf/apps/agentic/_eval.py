"""Greedy held-out evaluation of a model directory, in-process (no Ray):
accuracy, tool calls and turns per trajectory."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence

import torch

from rlinf.envs.agentic import ToolAgentEnv
from rlinf.models.llm import HFGenerationBackend, load_causal_lm, multi_turn_generate

from ._config import AgenticConfig
from ._task import TaskData, TaskRow

__all__ = ["greedy_eval"]

_BATCH = 256  # prompts generated together


def greedy_eval(
    cfg: AgenticConfig, task: TaskData, model_path: str | pathlib.Path, rows: Sequence[TaskRow]
) -> dict[str, float]:
    """Greedy multi-turn trajectories of ``model_path`` on ``rows`` (``cfg.generation`` and
    ``cfg.multi_turn`` limits, ``cfg.model.dtype``; 256 prompts at a time), tools run in a
    local thread pool, scored by the task's scorer.

    Returns ``{"eval/accuracy", "eval/no_answer_rate", "eval/tool_calls", "eval/turns",
    "eval/response_length", "eval/prompts"}``.
    """
    if not rows:
        raise ValueError("no rows to evaluate")
    model, tokenizer = load_causal_lm(model_path, dtype=getattr(torch, cfg.model.dtype))
    backend = HFGenerationBackend(model, tokenizer)
    env = ToolAgentEnv(task.call_format, tools_factory=task.tools_factory)
    config = dataclasses.replace(cfg.generation, n=1, do_sample=False)
    responses: list[str] = []
    calls = turns = length = 0.0
    try:
        for start in range(0, len(rows), _BATCH):
            chunk = rows[start : start + _BATCH]
            ids = [tokenizer(r.prompt, add_special_tokens=False)["input_ids"] for r in chunk]
            out = multi_turn_generate(
                backend, tokenizer, ids, [None] * len(chunk), env, config, cfg.multi_turn
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
