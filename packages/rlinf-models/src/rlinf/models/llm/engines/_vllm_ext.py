"""The vLLM worker extension through which weights reach the engine's model (loaded by
vLLM by its dotted name inside each worker; imports nothing from vLLM)."""

from __future__ import annotations

import torch

__all__ = ["WeightLoaderExtension"]


class WeightLoaderExtension:
    """Mixed into vLLM's GPU worker (``worker_extension_cls``, vLLM 0.32):
    ``self.model_runner`` is the worker's ``GPUModelRunner``."""

    def rlinf_load_weights(self, bucket: list[tuple[str, torch.Tensor]]) -> int:
        """Load HF-named tensors with the model's own ``load_weights`` (it fuses Q/K/V and
        gate/up and shards for tensor parallelism); returns how many were given."""
        # get_model() unwraps the CUDA-graph wrapper around the model.
        model = self.model_runner.get_model()  # type: ignore[attr-defined]
        device = next(model.parameters()).device
        model.load_weights(weights=[(name, t.to(device, non_blocking=True)) for name, t in bucket])
        torch.cuda.synchronize(device)
        return len(bucket)
