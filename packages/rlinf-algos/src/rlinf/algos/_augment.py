"""DrQ-style image augmentation: random shifts of up to ``pad`` pixels with edge replication.

DrQ (Kostrikov et al., 2020) regularizes a pixel-based critic by training on randomly
shifted copies of each observation: pad the image by ``pad`` pixels replicating its edges,
then crop a random ``H x W`` window. Cropping at offset ``(pad + dy, pad + dx)`` of the
padded image is the same as reading pixel ``(clamp(i + dy), clamp(j + dx))`` of the
original, which is how :func:`shift_images` computes it (one gather, any dtype, no padded
copy). Channels-last ``[B, H, W, C]``, the layout rlinf's envs return images in.
"""

from __future__ import annotations

import torch

__all__ = ["random_shift", "shift_images"]


def shift_images(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Shift each image by whole pixels, replicating the edge pixels into the vacated border.

    ``out[b, i, j] = images[b, clamp(i + dy_b, 0, H - 1), clamp(j + dx_b, 0, W - 1)]``.

    Args:
        images: ``[B, H, W, C]``, any dtype (uint8 frames stay uint8).
        shifts: ``[B, 2]`` integer ``(dy, dx)`` per image; ``dy > 0`` shows content from
            further down (the picture moves up), ``dx > 0`` from further right.

    Returns:
        ``[B, H, W, C]``, same dtype and device as ``images``.

    Raises:
        ValueError: ``images`` is not 4-D, or ``shifts`` is not an integer ``[B, 2]``.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be [B, H, W, C], got shape {tuple(images.shape)}")
    b, h, w, _ = images.shape
    if shifts.shape != (b, 2) or shifts.dtype.is_floating_point or shifts.dtype == torch.bool:
        raise ValueError(
            f"shifts must be an integer [B, 2] = [{b}, 2] tensor, got "
            f"{tuple(shifts.shape)} {shifts.dtype}"
        )
    shifts = shifts.to(images.device, torch.long)
    rows = (torch.arange(h, device=images.device) + shifts[:, :1]).clamp(0, h - 1)  # [B, H]
    cols = (torch.arange(w, device=images.device) + shifts[:, 1:]).clamp(0, w - 1)  # [B, W]
    batch = torch.arange(b, device=images.device)[:, None, None]
    return images[batch, rows[:, :, None], cols[:, None, :]]


def random_shift(
    images: torch.Tensor, pad: int = 4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """DrQ's augmentation: each image shifted by ``(dy, dx)`` drawn uniformly from
    ``{-pad, ..., pad}``, independently per image (see :func:`shift_images`).

    Args:
        images: ``[B, H, W, C]``.
        pad: largest shift in pixels (DrQ uses 4 for 84 x 84 images); 0 returns a copy.
        generator: the random source (on the CPU); None uses torch's global one.

    Returns:
        ``[B, H, W, C]``, same dtype and device as ``images``.
    """
    if isinstance(pad, bool) or not isinstance(pad, int) or pad < 0:
        raise ValueError(f"pad must be an int >= 0, got {pad!r}")
    if images.dim() != 4:
        raise ValueError(f"images must be [B, H, W, C], got shape {tuple(images.shape)}")
    shifts = torch.randint(-pad, pad + 1, (images.shape[0], 2), generator=generator)
    return shift_images(images, shifts)
