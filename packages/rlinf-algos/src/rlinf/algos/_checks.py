"""Input validation shared by every function: clear ``ValueError`` instead of silent NaN."""

from __future__ import annotations

import math

import torch

__all__ = [
    "as_mask",
    "check_finite",
    "check_same_shape",
    "compute_dtype",
    "masked_count",
    "masked_sum",
    "optional_mask",
    "zero_outside",
]


def check_finite(name: str, tensor: torch.Tensor, mask: torch.Tensor | None = None) -> None:
    """Raise ``ValueError`` if ``tensor`` holds NaN or inf (only where ``mask`` is true)."""
    if not isinstance(tensor, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        return
    t = tensor.detach()
    # Fast path: one reduction and one scalar read. NaN or inf in any counted entry makes the
    # sum non-finite; a sum that overflowed from finite entries falls through to the exact
    # check below, which then finds nothing to report.
    total = t.sum() if mask is None else torch.where(mask, t, 0.0).sum()
    if math.isfinite(total.item()):
        return
    bad = ~torch.isfinite(t)
    if mask is not None:
        bad = bad & mask
    if bool(bad.any()):
        raise ValueError(f"{name} contains NaN or inf values ({int(bad.sum())} entries)")


def check_same_shape(**tensors: torch.Tensor) -> None:
    """Raise ``ValueError`` naming every argument if the given tensors differ in shape."""
    items = [(k, v) for k, v in tensors.items() if v is not None]
    if not items:
        return
    first_name, first = items[0]
    for name, t in items[1:]:
        if t.shape != first.shape:
            shapes = ", ".join(f"{k}={tuple(v.shape)}" for k, v in items)
            raise ValueError(
                f"{name} has shape {tuple(t.shape)} but {first_name} has shape "
                f"{tuple(first.shape)}; expected equal shapes ({shapes})"
            )


def as_mask(
    mask: torch.Tensor | None,
    shape: torch.Size,
    device: torch.device,
    name: str = "mask",
    allow_empty: bool = False,
) -> torch.Tensor:
    """Return ``mask`` as a bool tensor of ``shape`` (all true when ``None``).

    Raises ``ValueError`` on a shape mismatch, or when no entry is true (a loss averaged over
    nothing would be NaN) unless ``allow_empty``.
    """
    if mask is None:
        return torch.ones(shape, dtype=torch.bool, device=device)
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.shape != shape:
        raise ValueError(f"{name} has shape {tuple(mask.shape)}, expected {tuple(shape)}")
    out = mask if mask.dtype == torch.bool else mask != 0
    if not allow_empty and not bool(out.any()):
        raise ValueError(f"{name} is empty: no valid (true) entries to compute over")
    return out


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """Promoted floating dtype of ``tensors``, at least float32 (bf16 sums drift)."""
    dtype = torch.float32
    for t in tensors:
        if t is not None and t.is_floating_point():
            dtype = torch.promote_types(dtype, t.dtype)
    return dtype


# Mask-optional helpers. ``None`` means "every entry is valid"; the functions that take a
# mask keep it ``None`` in that case instead of materializing an all-true tensor, which on
# small batches (an embodied PPO minibatch) made the masking ops most of a loss's cost.


def optional_mask(
    mask: torch.Tensor | None, shape: torch.Size, device: torch.device, name: str = "mask"
) -> torch.Tensor | None:
    """``None`` stays ``None``; a tensor is checked and converted by :func:`as_mask`."""
    return None if mask is None else as_mask(mask, shape, device, name)


def zero_outside(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``x`` with entries outside ``mask`` set to 0 (``x`` itself when ``mask`` is None)."""
    return x if mask is None else torch.where(mask, x, 0.0)


def masked_sum(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Sum of ``x`` over the valid entries (all when ``mask`` is None); 0-dim."""
    return zero_outside(x, mask).sum()


def masked_count(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | int:
    """Number of valid entries of ``x``'s shape (``x.numel()`` when ``mask`` is None)."""
    return x.numel() if mask is None else mask.sum()
