"""Which generation engine a rollout worker builds (``generation.backend``), loaded only
when chosen, and the off-policy correction an engine implies."""

from __future__ import annotations

import dataclasses
from typing import Any

from rlinf.core import Registry

__all__ = [
    "DEFAULT_ENGINE_TIS_CAP",
    "ENGINE_BACKENDS",
    "build_engine_backend",
    "engine_tis_cap",
    "with_engine_tis",
]

ENGINE_BACKENDS: Registry[Any] = Registry("generation backend")
"""``generation.backend`` name -> engine adapter class (``"hf"`` is built by the rollout
worker from its own model and is not listed)."""

ENGINE_BACKENDS.register(
    "vllm",
    "rlinf.models.llm.engines._vllm:VLLMGenerationBackend",
    install_hint="install the extra: pip install 'rlinf-models[vllm]'",
)
ENGINE_BACKENDS.register(
    "sglang",
    "rlinf.models.llm.engines._sglang:SGLangGenerationBackend",
    install_hint="install the extra: pip install 'rlinf-models[sglang]'",
)

DEFAULT_ENGINE_TIS_CAP = 2.0
"""Truncated importance-sampling cap used when an engine other than the trainer's own
forward generates (its kernels and precision differ: pi_rollout != pi_old)."""


def build_engine_backend(name: str, model_path: str, **kwargs: Any) -> Any:
    """The ``name`` engine adapter over the HF directory ``model_path``; a missing extra
    raises :class:`~rlinf.core.RegistryError` naming it."""
    return ENGINE_BACKENDS.get(name)(model_path, **kwargs)


def engine_tis_cap(backend: str, tis_cap: float | None) -> float | None:
    """The TIS cap to train with: the configured one, or :data:`DEFAULT_ENGINE_TIS_CAP`
    when none is set and ``backend`` is not ``"hf"`` (HF generation runs the trainer's
    own forward, so its log-probs already match)."""
    if tis_cap is not None or backend == "hf":
        return tis_cap
    return DEFAULT_ENGINE_TIS_CAP


def with_engine_tis(algo: Any, generation: Any) -> Any:
    """``algo`` (an ``LLMUpdaterConfig``) with :func:`engine_tis_cap` applied for
    ``generation.backend``: the apps hand this to the flow, so that truncated importance
    sampling is on by default whenever an engine generates."""
    cap = engine_tis_cap(generation.backend, algo.tis_cap)
    return algo if cap == algo.tis_cap else dataclasses.replace(algo, tis_cap=cap)
