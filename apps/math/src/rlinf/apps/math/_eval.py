"""Greedy held-out accuracy of a model directory, in-process (no Ray)."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Sequence

import torch

from rlinf.envs.math import MathChecker, MathRow
from rlinf.models.llm import HFGenerationBackend, load_causal_lm

from ._config import MathConfig

__all__ = ["greedy_accuracy"]

_BATCH = 256  # prompts generated together


def greedy_accuracy(
    cfg: MathConfig, data: object, model_path: str | pathlib.Path, rows: Sequence[MathRow]
) -> dict[str, float]:
    """Greedy (one sample, argmax) accuracy of ``model_path`` on ``rows``: generation as
    ``cfg.generation`` (256 prompts at a time), weights in ``cfg.model.dtype``, answers
    checked by ``cfg.checker``. ``data`` (the run's splits) is not needed here.

    Returns ``{"eval/accuracy", "eval/no_answer_rate", "eval/response_length",
    "eval/prompts"}``.
    """
    if not rows:
        raise ValueError("no rows to evaluate")
    model, tokenizer = load_causal_lm(model_path, dtype=getattr(torch, cfg.model.dtype))
    backend = HFGenerationBackend(model, tokenizer)
    config = dataclasses.replace(cfg.generation, n=1, do_sample=False)
    responses: list[str] = []
    length = 0.0
    for start in range(0, len(rows), _BATCH):
        chunk = rows[start : start + _BATCH]
        ids = [tokenizer(r.prompt, add_special_tokens=False)["input_ids"] for r in chunk]
        batch = backend.generate(ids, config)
        responses += batch.decode_responses(tokenizer)
        length += float(batch.response_lengths.sum())
    with MathChecker(cfg.checker) as check:
        results = check.score(responses, [r.answer for r in rows])
    return {
        "eval/accuracy": sum(r.score for r in results) / len(results),
        "eval/no_answer_rate": sum(r.status == "no_answer" for r in results) / len(results),
        "eval/response_length": length / len(rows),
        "eval/prompts": float(len(rows)),
    }
