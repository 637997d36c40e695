"""Configuration of a training backend (how a model is placed, sharded and stepped)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ._offload import OFFLOAD_MODES

__all__ = ["MIXED_PRECISION", "TrainingConfig"]

MIXED_PRECISION = ("none", "bf16")
"""Valid :attr:`TrainingConfig.mixed_precision` values."""


@dataclass(frozen=True)
class TrainingConfig:
    """Which :class:`~rlinf.models.train.TrainingBackend` trains a model, and its options.

    The loss side (micro-batch size, gradient-norm limit) stays in the updater configs
    (``LLMUpdaterConfig.micro_batch_size`` / ``max_grad_norm``, ``UpdaterConfig``): the
    updater weights each micro-batch's loss by its share of the global mini-batch, and the
    backend only accumulates, clips and steps.

    Attributes:
        backend: a name in :data:`~rlinf.models.train.TRAINING_BACKENDS`: ``"torch"`` (one
            process, the model as is) or ``"fsdp2"`` (``fully_shard`` over the ranks of the
            default ``torch.distributed`` process group: gloo on CPU, NCCL on GPU), or
            ``"megatron"`` (Megatron-core ``GPTModel``, tensor parallel; GPU; needs the
            ``rlinf-models[megatron]`` extra).
        mixed_precision: ``"none"`` (parameters, compute and gradient reduction in the
            model's dtype) or ``"bf16"`` (fsdp2 only: bf16 parameters for compute, fp32
            gradient reduction and fp32 sharded master weights).
        cpu_offload: fsdp2 only: keep the sharded parameters, gradients and optimizer state
            in CPU memory (the optimizer steps on the CPU); the device holds only the
            gathered layer being computed.
        offload: ``"none"`` (default: everything stays where it is) or ``"phase"``: between
            its phases the model's parameters, gradients and optimizer state go to host
            memory (pinned when CUDA is present) and come back before its next forward
            (:meth:`~rlinf.models.train.TrainingBackend.offload` / ``onload``), so that
            collocated components taking turns on one device have its memory in their
            turn. Excludes ``cpu_offload`` (which keeps them on the host throughout).
        activation_checkpointing: recompute each transformer layer's (or ``nn.ModuleList``
            item's) activations in backward instead of keeping them (memory for compute).
        reshard_after_forward: fsdp2 only: free each layer's gathered parameters after its
            forward (gathered again in backward). ``False`` trades memory for one
            all-gather per layer less.
        tensor_parallel_size: megatron only: ranks sharing each layer (Megatron column /
            row parallel linears); the world size must be a multiple of it, the remaining
            factor is data parallel. 1 for the other backends.
        pipeline_parallel_size: megatron only: pipeline stages; only 1 is supported so far
            (the updaters do not drive Megatron's pipeline schedule).
    """

    backend: str = "torch"
    mixed_precision: Literal["none", "bf16"] = "none"
    cpu_offload: bool = False
    offload: Literal["none", "phase"] = "none"
    activation_checkpointing: bool = False
    reshard_after_forward: bool = True
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.backend, str) or not self.backend:
            raise ValueError(f"backend must be a non-empty name, got {self.backend!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(
                f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}"
            )
        if self.offload not in OFFLOAD_MODES:
            raise ValueError(f"offload must be one of {OFFLOAD_MODES}, got {self.offload!r}")
        if self.offload != "none" and self.cpu_offload:
            raise ValueError(
                "offload 'phase' and cpu_offload exclude each other: cpu_offload already "
                "keeps the parameters, gradients and optimizer state in CPU memory"
            )
        for name in ("tensor_parallel_size", "pipeline_parallel_size"):
            size = getattr(self, name)
            if not isinstance(size, int) or size < 1:
                raise ValueError(f"{name} must be an int >= 1, got {size!r}")
            if size > 1 and self.backend != "megatron":
                raise ValueError(f"{name} > 1 needs backend 'megatron', got {self.backend!r}")
