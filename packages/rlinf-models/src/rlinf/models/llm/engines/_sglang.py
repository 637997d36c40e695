"""Generation with SGLang's offline ``Engine`` in the rollout worker's process (targets
SGLang 0.5.23: ``update_weights_from_tensor``, memory saver release / resume)."""

from __future__ import annotations

from typing import Any

import sglang
import torch

from .._generation import GenerationConfig
from ._base import DEFAULT_ENGINE_BUCKET_BYTES, EngineBackend, eos_ids
from ._convert import EngineSample, sglang_sampling_params

__all__ = ["SGLangGenerationBackend"]


class SGLangGenerationBackend(EngineBackend):
    """:class:`~rlinf.models.llm.GenerationBackend` over ``sglang.Engine``.

    Token ids in, token ids out (``skip_tokenizer_init``); ``return_logprob`` gives each
    sampled token's log-probability. Weights go through ``update_weights_from_tensor``
    (HF names; the last bucket flushes the radix cache); ``offload`` releases the memory
    saver's tagged regions (``kv_cache``, plus ``weights`` when discarding them).

    Args:
        model_path: HF model directory.
        seed: engine seed.
        dtype: weights dtype name.
        mem_fraction_static: fraction of the GPU for weights + KV cache.
        bucket_bytes: most bytes per weight-update call.
        engine_kwargs: further ``sglang.Engine`` arguments.
    """

    def __init__(
        self,
        model_path: str,
        *,
        seed: int = 0,
        dtype: str = "bfloat16",
        mem_fraction_static: float = 0.4,
        bucket_bytes: int = DEFAULT_ENGINE_BUCKET_BYTES,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        from transformers import AutoConfig, AutoTokenizer

        self.engine = sglang.Engine(
            model_path=model_path,
            dtype=dtype,
            random_seed=seed,
            mem_fraction_static=mem_fraction_static,
            enable_memory_saver=True,
            skip_tokenizer_init=True,
            **(engine_kwargs or {}),
        )
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        config = AutoConfig.from_pretrained(model_path)
        pad = tokenizer.pad_token_id
        super().__init__(
            vocab_size=config.vocab_size,
            pad_token_id=int(pad if pad is not None else tokenizer.eos_token_id),
            eos_token_ids=eos_ids(config, tokenizer),
            bucket_bytes=bucket_bytes,
        )
        self._released: list[str] = []

    def _run(self, prompts: list[list[int]], config: GenerationConfig) -> list[EngineSample]:
        rows = [p for p in prompts for _ in range(config.n)]
        params = [
            sglang_sampling_params(config, None if config.seed is None else config.seed + i)
            for i in range(len(rows))
        ]
        outputs = self.engine.generate(input_ids=rows, sampling_params=params, return_logprob=True)
        samples = []
        for out in outputs:
            meta = out["meta_info"]
            ids = tuple(int(t) for t in out["output_ids"])
            logps = tuple(float(lp) for lp, _tok, _txt in meta["output_token_logprobs"])
            samples.append(EngineSample(ids, logps, meta["finish_reason"]["type"] == "stop"))
        return samples

    def _push(self, bucket: list[tuple[str, torch.Tensor]]) -> None:
        self.engine.update_weights_from_tensor(named_tensors=bucket, flush_cache=False)

    def _after_update(self) -> None:
        self.engine.flush_cache()

    def _sleep(self, discard_weights: bool) -> None:
        # The memory saver keeps weights' contents when releasing "weights" only with
        # CPU backup; discarding them means a load must follow (the base class tracks it).
        self._released = ["kv_cache", "weights"] if discard_weights else ["kv_cache"]
        self.engine.release_memory_occupation(tags=self._released)

    def _wake(self, weights_only: bool) -> None:
        if "weights" in self._released:
            self.engine.resume_memory_occupation(tags=["weights"])
            self._released.remove("weights")
        if not weights_only and self._released:
            self.engine.resume_memory_occupation(tags=self._released)
            self._released = []
        if not self._released:
            self._sleeping = False
