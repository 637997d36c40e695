"""What the vLLM and SGLang adapters share: version-checked, bucketed weight updates,
sleep / wake around them, and the RolloutBatch assembly."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch

from ..._weights import StaleWeightsError, WeightSnapshot
from .._batch import RolloutBatch
from .._generation import GenerationConfig, check_prompts
from ._convert import EngineSample, pack_rollout, tensor_buckets

__all__ = ["DEFAULT_ENGINE_BUCKET_BYTES", "EngineBackend", "eos_ids"]

DEFAULT_ENGINE_BUCKET_BYTES = 512 * 2**20
"""Bytes of weights handed to an engine per update call."""


def eos_ids(config: Any, tokenizer: Any) -> list[int]:
    """The EOS ids of an HF model config (an int or a list) and its tokenizer."""
    value = getattr(config, "eos_token_id", None)
    ids = [value] if isinstance(value, int) else list(value or [])
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    if not ids:
        raise ValueError("neither the tokenizer nor the model config defines an EOS token")
    return sorted(set(ids))


class EngineBackend(ABC):
    """A :class:`~rlinf.models.llm.GenerationBackend` over an in-process engine.

    Versions follow :class:`~rlinf.models.VersionedWeights`: the first load takes any
    version, later ones only the next. While a load is in flight (or after a failed one)
    the backend holds no version, so :meth:`generate` refuses half-written weights. After
    :meth:`offload` with ``discard_weights`` the engine's weights are gone and a load must
    come before the next generation (the stale-weights-after-sleep failure of TRL #5312).

    Args:
        vocab_size: the model's vocabulary (prompt ids are checked against it).
        pad_token_id: padding id of the returned batches.
        eos_token_ids: the ids that end a response (the multi-turn loop reads them).
        bucket_bytes: most bytes of weights per engine update call.
    """

    def __init__(
        self, vocab_size: int, pad_token_id: int, eos_token_ids: Sequence[int], bucket_bytes: int
    ) -> None:
        if bucket_bytes < 1:
            raise ValueError(f"bucket_bytes must be >= 1, got {bucket_bytes}")
        self.vocab_size = vocab_size
        self.pad_token_id = pad_token_id
        self.eos_token_ids = sorted({int(t) for t in eos_token_ids})
        self.bucket_bytes = bucket_bytes
        self._version = -1
        self._sleeping = False
        self._weights_valid = True

    @property
    def version(self) -> int:
        """The weights version held (-1: none loaded, or a load in flight / failed)."""
        return self._version

    def load_weights(self, snapshot: WeightSnapshot) -> None:
        """Push ``snapshot`` into the engine bucket by bucket after checking its version."""
        if not isinstance(snapshot, WeightSnapshot):
            raise TypeError(f"expected a WeightSnapshot, got {type(snapshot).__name__}")
        if self._version >= 0 and snapshot.version != self._version + 1:
            kind = "stale" if snapshot.version <= self._version else "skipped"
            raise StaleWeightsError(
                f"{kind} weights: holding version {self._version}, got {snapshot.version} "
                f"(expected {self._version + 1})"
            )
        if self._sleeping:
            self._wake(weights_only=True)
        # Until the last bucket is in, the engine holds no version: a failure half-way
        # leaves weights that generate() refuses.
        self._version = -1
        self._weights_valid = False
        for bucket in tensor_buckets(snapshot.state, self.bucket_bytes):
            self._push(bucket)
        self._after_update()
        self._weights_valid = True
        self._version = snapshot.version

    def generate(self, prompts: Sequence[Sequence[int]], config: GenerationConfig) -> RolloutBatch:
        """Sample ``config.n`` responses per prompt; see
        :class:`~rlinf.models.llm.GenerationBackend`."""
        if not isinstance(config, GenerationConfig):
            raise TypeError(f"config must be a GenerationConfig, got {type(config).__name__}")
        if not self._weights_valid:
            raise StaleWeightsError(
                "the engine's weights were discarded or half-written: load weights first"
            )
        rows = check_prompts(prompts, self.vocab_size)
        if self._sleeping:
            self._wake(weights_only=False)
        samples = self._run(rows, config)
        return pack_rollout(
            rows,
            samples,
            config.n,
            pad_token_id=self.pad_token_id,
            version=self._version,
            max_new_tokens=config.max_new_tokens,
        )

    def offload(self, discard_weights: bool = False) -> None:
        """Free the engine's device memory between rollouts (KV cache always; weights
        moved to CPU, or dropped when ``discard_weights``: then a load must follow)."""
        if self._sleeping:
            return
        self._sleep(discard_weights)
        self._sleeping = True
        if discard_weights:
            self._weights_valid = False

    def onload(self) -> None:
        """Take the device memory back (weights and KV cache)."""
        if self._sleeping:
            self._wake(weights_only=False)

    @abstractmethod
    def _run(self, prompts: list[list[int]], config: GenerationConfig) -> list[EngineSample]:
        """The engine's samples, ``n`` consecutive per prompt."""

    @abstractmethod
    def _push(self, bucket: list[tuple[str, torch.Tensor]]) -> None:
        """Hand one bucket of HF-named tensors to the engine's update API."""

    def _after_update(self) -> None:  # noqa: B027 - optional hook
        """Called once all buckets are in (e.g. to flush a prefix cache)."""

    @abstractmethod
    def _sleep(self, discard_weights: bool) -> None:
        """Release device memory."""

    @abstractmethod
    def _wake(self, weights_only: bool) -> None:
        """Re-acquire device memory (only the weights' when ``weights_only``); must set
        ``self._sleeping`` False once everything is back."""
