"""Small helpers shared by the LLM workers."""

from __future__ import annotations

from typing import Any

import torch

from ._load import load_causal_lm

__all__: list[str] = []


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown torch dtype {name!r}")
    return dtype


def _load_worker_model(
    model_path: str, *, dtype: str, device: torch.device, torch_threads: int
) -> tuple[Any, Any]:
    """The preamble of every LLM worker: set this process's intra-op threads, then load
    ``(model, tokenizer)`` from ``model_path`` onto the worker's device."""
    torch.set_num_threads(torch_threads)
    return load_causal_lm(model_path, dtype=_dtype(dtype), device=device)
