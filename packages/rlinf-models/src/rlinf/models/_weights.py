"""Versioned weight snapshots: what a trainer exports and a generator checks before acting.

Shared by the embodied workers (:mod:`rlinf.models.embodied`) and the LLM generation
backends (:mod:`rlinf.models.llm`); plain torch, no Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["StaleWeightsError", "VersionedWeights", "WeightSnapshot"]


class StaleWeightsError(RuntimeError):
    """A rollout was given weights out of order, or asked to act with weights it lacks."""


@dataclass(frozen=True)
class WeightSnapshot:
    """A policy's ``state_dict`` (CPU tensors, normalizer statistics included) tagged with
    the number of updates that produced it.

    Attributes:
        version: 0 for the initial weights, ``u`` after the ``u``-th update.
        state: parameter / buffer name -> tensor.
    """

    version: int
    state: dict[str, torch.Tensor]

    @classmethod
    def of(cls, module: nn.Module, version: int) -> WeightSnapshot:
        """Snapshot ``module``'s current ``state_dict`` (detached CPU copies)."""
        state = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
        return cls(int(version), state)


class VersionedWeights:
    """Tracks which weight version ``module`` holds and enforces in-order loading.

    The first load (from no weights, version ``-1``) accepts any version, so a resumed run
    can start its rollouts at the checkpoint's version; every later load must be exactly the
    next version: an older or equal one (stale) or a newer one that skips a version raises
    :class:`StaleWeightsError`, never acting silently on weights other than the expected.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.version = -1

    def load(self, snapshot: WeightSnapshot) -> None:
        """Copy ``snapshot`` into the module after checking its version."""
        if not isinstance(snapshot, WeightSnapshot):
            raise TypeError(f"expected a WeightSnapshot, got {type(snapshot).__name__}")
        self.check_next(snapshot.version)
        self.module.load_state_dict(snapshot.state)
        self.version = snapshot.version

    def check_next(self, version: int) -> None:
        """Raise :class:`StaleWeightsError` (naming both versions) unless ``version`` may
        be loaded next."""
        if self.version >= 0 and version != self.version + 1:
            kind = "stale" if version <= self.version else "skipped"
            raise StaleWeightsError(
                f"{kind} weights: holding version {self.version}, got {version} "
                f"(expected {self.version + 1})"
            )

    def invalidate(self) -> None:
        """The module is being overwritten in place (a collective sync): it holds no
        version until :meth:`mark_loaded`, so a transfer that fails half-way leaves weights
        that :meth:`require` refuses."""
        self.version = -1

    def mark_loaded(self, version: int) -> None:
        """Record that the module now holds ``version`` (written by someone else)."""
        self.version = int(version)

    def require(self, version: int) -> None:
        """Raise unless the module holds exactly ``version``."""
        if self.version != version:
            raise StaleWeightsError(
                f"asked to act with weights version {version}, but holding {self.version}"
            )
