"""Moving a model's training state between the device and host memory between phases.

A collocated run has the actor, the reference model, the critic and the rollout copy take
turns on one device; what is idle is offloaded so that the running phase has the device's
memory. :class:`ModelOffloader` moves a module's parameters, gradients and buffers
(``nn.Module._apply``: the ``Parameter`` objects stay the same, so the optimizer's
references stay valid; FSDP2 modules override ``_apply`` to move the local shards of their
``DTensor`` parameters and re-point their sharded storage) and its optimizer's state
tensors, and moves each back to where it was.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["OFFLOAD_MODES", "ModelOffloader", "tensor_bytes"]

OFFLOAD_MODES = ("none", "phase")
"""Valid :attr:`~rlinf.models.train.TrainingConfig.offload` values."""


def _local(t: torch.Tensor) -> torch.Tensor:
    """A DTensor's local shard, else ``t``."""
    return getattr(t, "_local_tensor", t)


def _copy_to(
    t: torch.Tensor, device: torch.device, made: set[tuple[torch.device, int]]
) -> torch.Tensor:
    """A copy of ``t`` (a plain tensor or a DTensor, whose local shard moves) on
    ``device``; host copies of device tensors are pinned when CUDA is present (fast,
    asynchronous-capable transfers back). ``aten._to_copy`` always copies, so a CPU-only
    run exercises the same round trip with fresh storage. ``made`` holds the storage
    addresses of the copies made so far in this pass: a tied weight is reached once per
    module using it, and copying it again would move it twice (on a CPU-only host the
    second copy may even land back at the original's freed address)."""
    local = _local(t)
    if (local.device, local.data_ptr()) in made:
        return t
    pin = device.type == "cpu" and local.device.type == "cuda"
    out = torch.ops.aten._to_copy.default(t, device=device, pin_memory=pin)
    if out.numel():  # empty tensors may all share address 0
        moved = _local(out)
        made.add((moved.device, moved.data_ptr()))
    return out


def tensor_bytes(module: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> int:
    """Bytes of ``module``'s parameters, gradients and buffers and ``optimizer``'s state
    tensors that live on an accelerator (not on the CPU); local shards for DTensors."""
    seen: set[int] = set()
    total = 0

    def add(t: torch.Tensor | None) -> None:
        nonlocal total
        if t is None:
            return
        local = _local(t)
        if local.device.type == "cpu" or id(local) in seen:
            return
        seen.add(id(local))
        total += local.numel() * local.element_size()

    for p in module.parameters():
        add(p)
        add(p.grad)
    for b in module.buffers():
        add(b)
    if optimizer is not None:
        for state in optimizer.state.values():
            for v in state.values():
                if isinstance(v, torch.Tensor):
                    add(v)
    return total


class ModelOffloader:
    """Moves ``module`` (parameters, gradients, buffers) and ``optimizer``'s state to host
    memory and back. Both calls are idempotent; between them the module must not run.

    Args:
        module: the model (plain, or sharded with ``fully_shard``).
        optimizer: its optimizer (``None`` for a frozen model such as the reference).
    """

    def __init__(self, module: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
        self.module = module
        self.optimizer = optimizer
        self._device: torch.device | None = None
        # (state dict, key, device) of each optimizer tensor moved by offload: AdamW keeps
        # its ``step`` counters on the CPU even for CUDA parameters, so each tensor goes
        # back to its own device rather than to the parameters'.
        self._moved: list[tuple[dict[str, Any], str, torch.device]] = []

    @property
    def offloaded(self) -> bool:
        """True between :meth:`offload` and :meth:`onload`."""
        return self._device is not None

    @torch.no_grad()
    def offload(self) -> None:
        """Copy everything to host memory and drop the device copies."""
        if self.offloaded:
            return
        first = next(self.module.parameters(), None)
        if first is None:
            raise ValueError(f"{type(self.module).__name__} has no parameters to offload")
        device = _local(first).device
        host = torch.device("cpu")
        made: set[tuple[torch.device, int]] = set()
        self.module._apply(lambda t: _copy_to(t, host, made))
        if self.optimizer is not None:
            for state in self.optimizer.state.values():
                for key, value in state.items():
                    if isinstance(value, torch.Tensor) and _local(value).device == device:
                        state[key] = _copy_to(value, host, made)
                        self._moved.append((state, key, device))
        self._device = device
        if device.type == "cuda":
            # Hand the freed blocks back so that another process's phase can use them.
            torch.cuda.empty_cache()

    @torch.no_grad()
    def onload(self) -> None:
        """Copy everything back to the device it was offloaded from."""
        if self._device is None:
            return
        device = self._device
        made: set[tuple[torch.device, int]] = set()
        self.module._apply(lambda t: _copy_to(t, device, made))
        for state, key, where in self._moved:
            state[key] = _copy_to(state[key], where, made)
        self._moved.clear()
        self._device = None
