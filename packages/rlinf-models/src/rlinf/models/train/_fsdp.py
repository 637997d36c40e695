"""The ``fsdp2`` training backend: ``torch.distributed.fsdp.fully_shard`` over the ranks of
the default process group (gloo on CPU, NCCL on GPU)."""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import (
    CPUOffloadPolicy,
    MixedPrecisionPolicy,
    OffloadPolicy,
    fully_shard,
    register_fsdp_forward_method,
)

from ._backend import TrainingBackend
from ._layers import layer_modules

__all__ = ["FSDP2Backend"]


class FSDP2Backend(TrainingBackend):
    """Each parameter sharded over the ranks (dim 0), gathered layer by layer for compute.

    The blocks of :func:`~rlinf.models.train.layer_modules` are sharded one by one, the
    rest (embeddings, heads, norms) with the root. Gradients are reduce-scattered; FSDP
    averages them over ranks, so :meth:`backward` scales the loss by the world size to
    make the sum that :class:`TrainingBackend` promises (gloo has no pre-multiplied sum).
    """

    name = "fsdp2"

    def _prepare(self, model: nn.Module, forward_methods: tuple[str, ...]) -> nn.Module:
        if not dist.is_initialized():
            raise RuntimeError(
                "training backend 'fsdp2' needs torch.distributed initialized "
                "(init_process_group: gloo on CPU, nccl on GPU) before the model is built"
            )
        device = next(model.parameters()).device
        if device.type == "cpu" and self.config.mixed_precision != "none":
            raise ValueError("mixed_precision 'bf16' needs the model on a GPU")
        mesh = init_device_mesh(device.type, (self.world_size,))
        mp = MixedPrecisionPolicy()
        if self.config.mixed_precision == "bf16":
            mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        offload = CPUOffloadPolicy() if self.config.cpu_offload else OffloadPolicy()
        kwargs = {
            "mesh": mesh,
            "mp_policy": mp,
            "offload_policy": offload,
            "reshard_after_forward": self.config.reshard_after_forward,
        }
        # FSDP2 warns once per process when a forward returns a view (e.g. the actor-critic's
        # squeezed values): an in-place op on it would skip the all-gather hook. No loss in
        # rlinf modifies model outputs in place, and the equality tests against one rank
        # check the gradients, so the warning only adds noise to every worker's log.
        warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view")
        for block in layer_modules(model):
            fully_shard(block, **kwargs)
        fully_shard(model, **kwargs)
        for method in forward_methods:
            register_fsdp_forward_method(model, method)
        return model

    def backward(self, loss: torch.Tensor) -> None:
        (loss * self.world_size).backward()
