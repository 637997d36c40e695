"""Training backends: one interface to shard, step, clip and checkpoint a model, whichever
engine does it (``torch``: one process; ``fsdp2``: ``fully_shard`` over the ranks), plus
the data-parallel split of a global batch and the cross-rank metric reduction."""

from ._backend import (
    TRAINING_BACKENDS,
    OptimizerFactory,
    TorchBackend,
    TrainingBackend,
    build_backend,
)
from ._config import MIXED_PRECISION, TrainingConfig
from ._dist import (
    from_rank0,
    reduce_metrics,
    sample_split,
    sum_metrics,
    token_balanced_split,
    world_rank_size,
)
from ._export import save_hf_pretrained
from ._layers import apply_activation_checkpointing, layer_modules
from ._offload import OFFLOAD_MODES, ModelOffloader, tensor_bytes

__all__ = [
    "MIXED_PRECISION",
    "OFFLOAD_MODES",
    "TRAINING_BACKENDS",
    "ModelOffloader",
    "OptimizerFactory",
    "TorchBackend",
    "TrainingBackend",
    "TrainingConfig",
    "apply_activation_checkpointing",
    "build_backend",
    "from_rank0",
    "layer_modules",
    "reduce_metrics",
    "sample_split",
    "save_hf_pretrained",
    "sum_metrics",
    "tensor_bytes",
    "token_balanced_split",
    "world_rank_size",
]
