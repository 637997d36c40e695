"""Peak device memory of a phase (``memory/*`` metrics)."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

import torch

__all__ = ["phase_peak_memory"]

_GIB = float(1 << 30)


@contextmanager
def phase_peak_memory(
    phase: str, metrics: MutableMapping[str, float], device: torch.device | str | None = None
) -> Iterator[None]:
    """Record ``metrics["memory/<phase>_peak_gib"]``: the most device memory torch held
    during the body (``torch.cuda.max_memory_allocated``, its peak counter reset at entry).
    Without CUDA (or for a non-CUDA ``device``) nothing is recorded: CPU memory is not
    what collocated phases compete for."""
    if not phase or "/" in phase:
        raise ValueError(f"phase must be a non-empty name without '/', got {phase!r}")
    dev = torch.device(device) if device is not None else None
    on = torch.cuda.is_available() and (dev is None or dev.type == "cuda")
    if on:
        torch.cuda.reset_peak_memory_stats(dev)
    yield
    if on:
        metrics[f"memory/{phase}_peak_gib"] = torch.cuda.max_memory_allocated(dev) / _GIB
