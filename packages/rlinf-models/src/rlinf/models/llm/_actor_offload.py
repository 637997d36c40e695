"""Which of the actor's models is on the device in which phase of an update
(``training.offload="phase"``), and the ``memory/*`` peak of each phase."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import ExitStack, contextmanager

import torch
from torch import nn

from .._memory import phase_peak_memory
from ..train import ModelOffloader, TrainingBackend

__all__ = ["ACTOR_PHASES", "MODELS", "ActorOffload"]

MODELS = ("policy", "critic", "reference")
"""The names of the actor's models in :class:`ActorOffload`'s calls."""

ACTOR_PHASES = {
    # phase: (models resident during it, models offloaded right after it)
    "reference": (("reference",), ("reference",)),
    "actor_logprob": (("policy",), ()),
    "critic": (("critic",), ()),
    "actor_update": (("policy", "critic"), ()),
}
"""The phases of one :meth:`~rlinf.models.llm.LLMUpdater.update`, in order: the old
log-probs (policy forward), the reference log-probs (the reference is offloaded again as
soon as they are computed), the critic's values, and the optimizer steps (the policy and
the critic train in the same micro-batch loop, so both are resident). Each phase's peak
device memory is ``memory/<phase>_peak_gib`` (CUDA only)."""


class ActorOffload:
    """Onloads each model of the actor for its own phases and offloads it after.

    With ``mode="none"`` nothing moves (today's behaviour) and only the ``memory/*``
    peaks are recorded.

    Args:
        mode: ``"none"`` or ``"phase"`` (:attr:`~rlinf.models.train.TrainingConfig.offload`).
        policy: the policy's training backend.
        critic: the critic's training backend (PPO), or ``None``.
        reference: the frozen reference model, or ``None``.
        device: where the models live when resident (the memory peaks' device).
    """

    def __init__(
        self,
        mode: str,
        policy: TrainingBackend,
        critic: TrainingBackend | None = None,
        reference: nn.Module | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.mode = mode
        self.device = device
        self._parts: dict[str, TrainingBackend | ModelOffloader] = {"policy": policy}
        if critic is not None:
            self._parts["critic"] = critic
        if reference is not None:
            self._parts["reference"] = ModelOffloader(reference)

    @property
    def enabled(self) -> bool:
        """True when models move between phases."""
        return self.mode == "phase"

    def onload(self, *names: str) -> None:
        """Bring the named models (default: the policy) back to the device; a name in
        :data:`MODELS` that this actor does not have (no critic, no reference) is skipped."""
        for name in _checked(names or ("policy",)):
            if self.enabled and name in self._parts:
                self._parts[name].onload()

    def offload(self, *names: str) -> None:
        """Move the named models (default: all) to host memory."""
        for name in _checked(names or tuple(self._parts)):
            if self.enabled and name in self._parts:
                self._parts[name].offload()

    def offloaded(self, name: str) -> bool:
        """True while model ``name`` is in host memory."""
        part = self._parts.get(next(iter(_checked((name,)))))
        return part is not None and part.offloaded

    @contextmanager
    def phase(self, name: str, metrics: MutableMapping[str, float]) -> Iterator[None]:
        """Run one phase of :data:`ACTOR_PHASES`: its models onloaded, its peak device
        memory in ``metrics``, the models it is done with offloaded at its end."""
        if name not in ACTOR_PHASES:
            raise ValueError(f"unknown actor phase {name!r}: one of {sorted(ACTOR_PHASES)}")
        resident, after = ACTOR_PHASES[name]
        self.onload(*resident)
        with phase_peak_memory(name, metrics, self.device):
            yield
        if after:  # offload() with no names would offload everything
            self.offload(*after)

    @contextmanager
    def resident(self, *names: str) -> Iterator[None]:
        """The named models on the device for the body (checkpoints, weight gathers and
        broadcasts outside an update), then back to where they were."""
        with ExitStack() as stack:
            for name in _checked(names):
                if self.offloaded(name):
                    self._parts[name].onload()
                    stack.callback(self._parts[name].offload)
            yield


def _checked(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names``, after checking that each is one of :data:`MODELS` (a typo must not
    leave a model silently resident)."""
    for name in names:
        if name not in MODELS:
            raise ValueError(f"unknown actor model {name!r}: one of {MODELS}")
    return names
