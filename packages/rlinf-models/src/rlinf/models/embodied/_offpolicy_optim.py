"""The off-policy learner's per-update optimizer work, made cheap for small networks:
fused Adam and a foreach Polyak step over parameter lists gathered once."""

from __future__ import annotations

import torch

from rlinf.algos import polyak_update

__all__ = ["Pairs", "adam", "polyak_pairs", "polyak_step"]


def adam(params: list[torch.Tensor], lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam with the fused kernel (one op for all parameters, CPU and CUDA alike; the
    per-tensor loop is a large share of a small network's update on a CPU)."""
    return torch.optim.Adam(params, lr, betas=betas, fused=True)


Pairs = tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]
"""``(target floats, source floats, integer (target, source) buffers)``."""


def polyak_pairs(target: torch.nn.Module, source: torch.nn.Module) -> Pairs:
    """``(target floats, source floats, integer (target, source) buffers)`` of two
    modules of one structure (checked once by ``rlinf.algos.polyak_update`` with tau 0)."""
    polyak_update(target, source, 0.0)  # validates names and shapes; tau 0 changes nothing
    src = dict(source.named_parameters()) | dict(source.named_buffers())
    tgt = dict(target.named_parameters()) | dict(target.named_buffers())
    floats = [k for k in src if src[k].is_floating_point()]
    ints = [(tgt[k], src[k]) for k in src if not src[k].is_floating_point()]
    return [tgt[k] for k in floats], [src[k] for k in floats], ints


@torch.no_grad()
def polyak_step(pairs: Pairs, tau: float) -> None:
    """``target <- target + tau (source - target)`` in one foreach op; integer buffers
    copied (as ``rlinf.algos.polyak_update`` does)."""
    targets, sources, ints = pairs
    torch._foreach_lerp_(targets, sources, tau)
    for t, s in ints:
        t.copy_(s)
