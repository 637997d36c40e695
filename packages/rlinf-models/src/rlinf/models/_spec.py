"""What a policy needs to know about an env, as structural types.

rlinf-models must not import rlinf.envs (same layer); any objects with these attributes
work, e.g. ``rlinf.envs.ArraySpec`` / ``rlinf.envs.ActionSpec``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["ActionSpecLike", "ArraySpecLike", "ObsSpecLike", "is_image"]


class ArraySpecLike(Protocol):
    """One observation entry of one env: ``shape`` without the batch dim, and ``dtype``."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> Any: ...


ObsSpecLike = Mapping[str, ArraySpecLike]
"""Observation key -> :class:`ArraySpecLike`."""


class ActionSpecLike(Protocol):
    """One primitive action of one env.

    ``kind`` is ``"discrete"`` (``n`` choices, ``shape == ()``) or ``"continuous"``
    (``shape``-shaped floats with bounds ``low`` / ``high``, which may be infinite).
    """

    @property
    def kind(self) -> str: ...

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def n(self) -> int | None: ...

    @property
    def low(self) -> Any: ...

    @property
    def high(self) -> Any: ...


def is_image(spec: ArraySpecLike) -> bool:
    """``[H, W, C]`` uint8 entries are images (fed to a CNN, scaled to [0, 1])."""
    return len(spec.shape) == 3 and str(spec.dtype) == "uint8"
