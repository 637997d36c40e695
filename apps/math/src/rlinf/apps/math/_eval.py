"""Greedy held-out accuracy of a model directory or checkpoint, in-process (no Ray)."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence

import torch

from rlinf.core import run_model_dir
from rlinf.envs.math import MathChecker, MathCheckerConfig, MathRow
from rlinf.models.llm import GenerationConfig, HFGenerationBackend, load_causal_lm

from ._config import load_math_config
from ._data import load_splits

__all__ = ["evaluate", "greedy_accuracy"]


def greedy_accuracy(
    model_path: str | pathlib.Path,
    rows: Sequence[MathRow],
    generation: GenerationConfig,
    checker: MathCheckerConfig,
    *,
    batch_size: int = 256,
    dtype: torch.dtype = torch.float32,
) -> dict[str, float]:
    """Greedy (one sample, argmax) accuracy of ``model_path`` on ``rows``.

    Returns ``{"eval/accuracy", "eval/no_answer_rate", "eval/response_length",
    "eval/prompts"}``.
    """
    if not rows:
        raise ValueError("no rows to evaluate")
    model, tokenizer = load_causal_lm(model_path, dtype=dtype)
    backend = HFGenerationBackend(model, tokenizer)
    config = dataclasses.replace(generation, n=1, do_sample=False)
    responses: list[str] = []
    length = 0.0
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        ids = [tokenizer(r.prompt, add_special_tokens=False)["input_ids"] for r in chunk]
        batch = backend.generate(ids, config)
        responses += batch.decode_responses(tokenizer)
        length += float(batch.response_lengths.sum())
    with MathChecker(checker) as check:
        results = check.score(responses, [r.answer for r in rows])
    return {
        "eval/accuracy": sum(r.score for r in results) / len(results),
        "eval/no_answer_rate": sum(r.status == "no_answer" for r in results) / len(results),
        "eval/response_length": length / len(rows),
        "eval/prompts": float(len(rows)),
    }


def evaluate(checkpoint: str | pathlib.Path, num_prompts: int = 0) -> dict[str, float]:
    """Greedy accuracy on the run's held-out split of ``checkpoint``: a run directory (its
    latest checkpoint), a checkpoint directory, or an HF model directory inside a run (e.g.
    ``<run>/sft_model``). ``num_prompts`` > 0 evaluates only the first that many."""
    cfg, model_dir = run_model_dir(checkpoint, load_math_config)
    _, test = load_splits(cfg.data)
    rows = test[:num_prompts] if num_prompts else test
    dtype = getattr(torch, cfg.model.dtype)
    return greedy_accuracy(model_dir, rows, cfg.generation, cfg.checker, dtype=dtype)
