"""Small helpers shared by the LLM workers."""

from __future__ import annotations

from typing import Any

import ray
import torch

__all__: list[str] = []


def _resolve(obj: Any) -> Any:
    # Ray does not resolve references nested in arguments; the driver puts large objects
    # (weights) once and hands every rank the reference.
    return ray.get(obj) if isinstance(obj, ray.ObjectRef) else obj


def _dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown torch dtype {name!r}")
    return dtype
