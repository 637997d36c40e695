"""Shape and dtype descriptions of observations and actions, independent of any simulator."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["ActionSpec", "ArraySpec", "Obs"]

Obs = dict[str, np.ndarray]
"""A batch of observations: key -> ``[N, ...]`` array (e.g. ``"state"`` ``[N, D]`` float32,
``"rgb"`` ``[N, H, W, C]`` uint8)."""


@dataclass(frozen=True)
class ArraySpec:
    """One observation entry of a single env (without the leading ``N`` dim).

    Attributes:
        shape: per-env shape, e.g. ``(D,)`` for a state vector or ``(H, W, C)`` for an image.
        dtype: numpy dtype of the array (``uint8`` for images, usually ``float32`` else).
        low: elementwise lower bound broadcastable to ``shape`` (``-inf`` when unbounded).
        high: elementwise upper bound broadcastable to ``shape`` (``inf`` when unbounded).
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    low: np.ndarray
    high: np.ndarray

    @property
    def is_image(self) -> bool:
        """True for ``[H, W, C]`` uint8 arrays, the layout CNN policies expect."""
        return len(self.shape) == 3 and self.dtype == np.uint8


@dataclass(frozen=True)
class ActionSpec:
    """The action of a single env for one primitive step.

    Attributes:
        kind: ``"discrete"`` (an integer in ``[0, n)``) or ``"continuous"`` (a float array).
        shape: per-env shape of one action: ``()`` for discrete, ``(A,)`` (or any shape) for
            continuous.
        n: number of discrete actions; ``None`` for continuous.
        low: ``shape``-shaped lower bound (continuous only, else ``None``).
        high: ``shape``-shaped upper bound (continuous only, else ``None``).
    """

    kind: Literal["discrete", "continuous"]
    shape: tuple[int, ...]
    n: int | None = None
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @property
    def discrete(self) -> bool:
        """True for discrete actions."""
        return self.kind == "discrete"


def obs_spec_str(spec: Mapping[str, ArraySpec]) -> str:
    """Short human-readable form, e.g. ``state:(4,)float32``, used in error messages."""
    return ", ".join(f"{k}:{v.shape}{v.dtype}" for k, v in spec.items())
