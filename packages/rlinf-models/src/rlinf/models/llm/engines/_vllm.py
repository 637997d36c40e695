"""Generation with vLLM's offline ``LLM`` in the rollout worker's process (targets vLLM
0.32: V1 engine, ``logprobs_mode``, sleep mode, ``collective_rpc`` worker extensions)."""

from __future__ import annotations

import os
from typing import Any

import torch
from vllm import LLM, SamplingParams
from vllm.inputs import TokensPrompt

from .._generation import GenerationConfig
from ._base import DEFAULT_ENGINE_BUCKET_BYTES, EngineBackend, eos_ids
from ._convert import EngineSample, vllm_sampling_kwargs

__all__ = ["VLLMGenerationBackend"]


class VLLMGenerationBackend(EngineBackend):
    """:class:`~rlinf.models.llm.GenerationBackend` over ``vllm.LLM``.

    Log-probabilities are ``processed_logprobs`` (after temperature, before top-k / top-p
    only when those are off: with filtering on they are of the filtered distribution, the
    one the tokens were drawn from). Weights arrive through a worker extension
    (:class:`~rlinf.models.llm.engines._vllm_ext.WeightLoaderExtension`) that calls the
    model's own ``load_weights`` with HF names; the prefix cache is reset after every
    update so that no cached KV of the old weights is reused. ``offload`` is vLLM sleep
    level 1 (weights to CPU, KV cache dropped) or 2 (weights dropped too).

    Args:
        model_path: HF model directory (tokenizer and config; weights replaced by syncs).
        seed: engine seed.
        dtype: weights dtype name.
        gpu_memory_utilization: fraction of the GPU vLLM may take (weights + KV cache).
        bucket_bytes: most bytes per weight-update call.
        engine_kwargs: further ``vllm.LLM`` arguments.
    """

    def __init__(
        self,
        model_path: str,
        *,
        seed: int = 0,
        dtype: str = "bfloat16",
        gpu_memory_utilization: float = 0.4,
        bucket_bytes: int = DEFAULT_ENGINE_BUCKET_BYTES,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        # In-process engine core: update buckets pass as tensors, not pickled copies.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        self.llm = LLM(
            model=model_path,
            dtype=dtype,
            seed=seed,
            gpu_memory_utilization=gpu_memory_utilization,
            enable_sleep_mode=True,
            logprobs_mode="processed_logprobs",
            worker_extension_cls="rlinf.models.llm.engines._vllm_ext.WeightLoaderExtension",
            **(engine_kwargs or {}),
        )
        tokenizer = self.llm.get_tokenizer()
        config = self.llm.llm_engine.model_config.hf_config
        pad = tokenizer.pad_token_id
        super().__init__(
            vocab_size=config.vocab_size,
            pad_token_id=int(pad if pad is not None else tokenizer.eos_token_id),
            eos_token_ids=eos_ids(config, tokenizer),
            bucket_bytes=bucket_bytes,
        )
        self._sleep_level = 0

    def _run(self, prompts: list[list[int]], config: GenerationConfig) -> list[EngineSample]:
        params = SamplingParams(**vllm_sampling_kwargs(config, config.seed))
        requests = [TokensPrompt(prompt_token_ids=p) for p in prompts]
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        samples = []
        for out in outputs:
            for c in out.outputs:
                ids = tuple(c.token_ids)
                logps = tuple(float(lp[t].logprob) for t, lp in zip(ids, c.logprobs, strict=True))
                samples.append(EngineSample(ids, logps, c.finish_reason == "stop"))
        return samples

    def _push(self, bucket: list[tuple[str, torch.Tensor]]) -> None:
        self.llm.collective_rpc("rlinf_load_weights", args=(bucket,))

    def _after_update(self) -> None:
        self.llm.reset_prefix_cache()

    def _sleep(self, discard_weights: bool) -> None:
        self._sleep_level = 2 if discard_weights else 1
        self.llm.sleep(level=self._sleep_level)

    def _wake(self, weights_only: bool) -> None:
        # Weights first: an update writes into them before the KV cache is re-allocated.
        if self._sleep_level:
            self.llm.wake_up(tags=["weights"])
            self._sleep_level = 0
        if not weights_only:
            self.llm.wake_up(tags=["kv_cache"])
            self._sleeping = False
