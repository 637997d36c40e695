"""Shape and finiteness checks shared by the off-policy losses."""

from __future__ import annotations

import torch

from ._checks import check_finite

__all__ = ["as_float", "check_batch", "check_ensemble"]


def check_ensemble(name: str, q: torch.Tensor) -> int:
    """Check ``q`` is a finite ``[E, B]`` tensor; return ``B``."""
    if q.dim() != 2 or q.shape[0] < 1 or q.shape[1] < 1:
        raise ValueError(f"{name} must be [E, B] with E, B >= 1, got {tuple(q.shape)}")
    check_finite(name, q)
    return q.shape[1]


def check_batch(batch_size: int, **tensors: torch.Tensor) -> None:
    """Check every given tensor is a finite ``[B]`` vector."""
    for name, t in tensors.items():
        if t is None:
            continue
        if t.shape != (batch_size,):
            raise ValueError(f"{name} must have shape ({batch_size},), got {tuple(t.shape)}")
        check_finite(name, t)


def as_float(name: str, x: float | torch.Tensor) -> float | torch.Tensor:
    """A detached 0-dim tensor or float coefficient; ``ValueError`` if not finite."""
    if isinstance(x, torch.Tensor):
        if x.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got shape {tuple(x.shape)}")
        check_finite(name, x)
        return x.detach().reshape(())
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {x}")
    return float(x)
