"""Target-network updates."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["hard_update", "polyak_update"]


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """In place: ``target_param <- (1 - tau) * target_param + tau * source_param``.

    Floating buffers (e.g. normalization statistics) are averaged the same way; integer
    buffers (step counters) are copied. ``tau=1`` is a hard copy. Both modules must have the
    same parameter and buffer names and shapes.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1], got {tau}")
    src_params = dict(source.named_parameters())
    tgt_params = dict(target.named_parameters())
    if src_params.keys() != tgt_params.keys():
        raise ValueError(
            "target and source have different parameters: "
            f"{sorted(set(src_params) ^ set(tgt_params))}"
        )
    pairs = [(tgt_params[k], src_params[k], k) for k in src_params]
    src_bufs = dict(source.named_buffers())
    pairs += [(b, src_bufs[k], k) for k, b in target.named_buffers() if k in src_bufs]
    for tgt, src, name in pairs:
        if tgt.shape != src.shape:
            raise ValueError(
                f"{name}: target shape {tuple(tgt.shape)} != source {tuple(src.shape)}"
            )
        if tgt.is_floating_point():
            tgt.lerp_(src, tau)
        else:
            tgt.copy_(src)


def hard_update(target: nn.Module, source: nn.Module) -> None:
    """Copy ``source``'s parameters and buffers into ``target`` (``polyak_update`` with tau=1)."""
    polyak_update(target, source, 1.0)
