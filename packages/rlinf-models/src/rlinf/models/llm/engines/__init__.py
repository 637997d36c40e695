"""Production generation engines behind extras: vLLM (``rlinf-models[vllm]``) and SGLang
(``rlinf-models[sglang]``) as :class:`~rlinf.models.llm.GenerationBackend` adapters.

Importing this package imports neither engine: :func:`build_engine_backend` loads the
chosen one (a missing extra raises an error naming it). The request / response conversion
(:mod:`._convert`) and the shared versioned, bucketed update / sleep logic
(:class:`EngineBackend`) are engine-free.
"""

from ._base import DEFAULT_ENGINE_BUCKET_BYTES, EngineBackend
from ._convert import (
    EngineSample,
    pack_rollout,
    sglang_sampling_params,
    tensor_buckets,
    vllm_sampling_kwargs,
)
from ._registry import (
    DEFAULT_ENGINE_TIS_CAP,
    ENGINE_BACKENDS,
    build_engine_backend,
    engine_tis_cap,
    with_engine_tis,
)

__all__ = [
    "DEFAULT_ENGINE_BUCKET_BYTES",
    "DEFAULT_ENGINE_TIS_CAP",
    "ENGINE_BACKENDS",
    "EngineBackend",
    "EngineSample",
    "build_engine_backend",
    "engine_tis_cap",
    "pack_rollout",
    "sglang_sampling_params",
    "tensor_buckets",
    "vllm_sampling_kwargs",
    "with_engine_tis",
]
