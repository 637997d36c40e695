"""Small helpers shared by the LLM workers."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

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


def _distinct_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state dict with each tensor once, detached (sharing the module's memory;
    FSDP2 shards stay DTensors). A name whose tensor *is* an earlier name's (tied weights,
    e.g. ``lm_head.weight`` and ``model.embed_tokens.weight``) is left out: sending it
    would move the same bytes twice, and writing the first name fills both.

    The choice depends only on the module's structure, so every trainer rank of a sharded
    model and every generator rank of a model with the same config leave out the same names.
    """
    seen: set[int] = set()
    out: dict[str, torch.Tensor] = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        if id(tensor) not in seen:
            seen.add(id(tensor))
            out[name] = tensor.detach()
    return out
