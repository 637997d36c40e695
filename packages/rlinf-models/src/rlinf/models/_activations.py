"""Hidden-layer activations of the MLP / CNN policies."""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd.function import once_differentiable

__all__ = ["SigmoidTanh", "sigmoid_tanh"]


class _SigmoidTanhFn(torch.autograd.Function):
    """``tanh(x) = 2 sigmoid(2x) - 1`` forward, torch's own ``tanh_backward`` backward."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor) -> torch.Tensor:
        y = torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @once_differentiable  # the saved output has no graph to x: a second derivative would be wrong
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return torch.ops.aten.tanh_backward(grad, y)


def sigmoid_tanh(x: torch.Tensor) -> torch.Tensor:
    """``tanh(x)`` (any shape), through the sigmoid kernel on the CPU.

    torch's CPU ``tanh`` kernel (2.14, AVX2 and AVX512 dispatch alike) is about 3x slower
    than its ``sigmoid`` on large tensors (167 vs 54 us for the three ops below on a
    ``[256, 256]`` float32 tensor, one AMD EPYC thread), which made the tanh layers a fifth
    of a small-MLP PPO update. The identity ``2 sigmoid(2x) - 1`` is within 2e-7 of
    ``tanh`` in float32 (its rounding near 0, where tanh itself is ~x, is absolute, not
    relative). On other devices, and for small tensors where per-op overhead dominates,
    ``torch.tanh`` is used as is.
    """
    if x.device.type != "cpu" or x.numel() < 16384:
        return torch.tanh(x)
    if torch.is_grad_enabled() and x.requires_grad:
        return _SigmoidTanhFn.apply(x)
    return torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)


class SigmoidTanh(nn.Module):
    """``nn.Tanh`` computed by :func:`sigmoid_tanh` (same values, faster on the CPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sigmoid_tanh(x)
