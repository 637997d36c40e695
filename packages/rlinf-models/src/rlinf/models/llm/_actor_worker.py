"""LLMActorWorker: the trained causal LM, its updater, reference and critic."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rlinf.channel import Channel
from rlinf.core import Worker

from .._weight_sync import WeightStager
from .._weights import WeightSnapshot
from ._batch import RolloutBatch
from ._load import load_causal_lm
from ._updater import LLMUpdater
from ._updater_config import LLMUpdaterConfig
from ._value import ValueModel
from ._worker_utils import _dtype, _load_worker_model

__all__ = ["LLMActorWorker"]


class LLMActorWorker(WeightStager, Worker):
    """Holds the trained causal LM, its :class:`LLMUpdater`, and (when configured) the
    frozen reference model and the PPO critic.

    Args:
        model_path: HF directory of the policy to train (a checkpoint's, when resuming).
        updater_config: :class:`LLMUpdaterConfig`.
        total_updates: updates of the whole run (learning-rate schedule).
        ref_path: HF directory of the reference policy (default: ``model_path``); loaded
            only when ``kl_coef > 0``.
        critic_path: directory of a saved :class:`~rlinf.models.llm.ValueModel`; default:
            ``<model_path>/critic`` when it exists (a checkpoint), else a new value head on
            ``model_path``'s backbone (PPO only).
        seed: torch seed (mini-batch shuffling, new value head).
        torch_threads: intra-op threads.
        dtype: torch dtype name of the weights.
    """

    def __init__(
        self,
        model_path: str,
        updater_config: LLMUpdaterConfig,
        *,
        total_updates: int,
        ref_path: str | None = None,
        critic_path: str | None = None,
        seed: int = 0,
        torch_threads: int = 1,
        dtype: str = "float32",
    ) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.model, self.tokenizer = _load_worker_model(
            model_path, dtype=dtype, device=self.device, torch_threads=torch_threads
        )
        ref = critic = None
        if updater_config.uses_reference:
            ref, _ = load_causal_lm(ref_path or model_path, dtype=_dtype(dtype), device=self.device)
            ref.requires_grad_(False)
        if updater_config.uses_critic:
            # A checkpoint's model directory carries its critic under critic/.
            saved = Path(model_path) / "critic"
            path = critic_path or (saved if saved.is_dir() else model_path)
            critic = ValueModel.from_pretrained(path, dtype=_dtype(dtype), device=self.device)
        self.updater = LLMUpdater(
            self.model,
            updater_config,
            ref_model=ref,
            critic=critic,
            total_updates=total_updates,
        )
        self.version = 0

    def get_version(self) -> int:
        """Version of the current weights (number of updates made)."""
        return self.version

    def update(self, batch: Any, rewards: torch.Tensor) -> dict[str, float]:
        """One update from a RolloutBatch and its ``[B]`` rewards; bumps the version."""
        with self.device_turn():
            metrics = self.updater.update(batch, rewards)
        self.version += 1
        metrics["train/weight_version"] = float(self.version)
        return metrics

    def update_from_channels(
        self,
        batch_channel: Channel,
        scored_channel: Channel,
        num_shards: int,
        *,
        batch_key: Any = "batch",
        scored_key: Any = "scored",
        channel_timeout: float = 300.0,
    ) -> dict[str, float]:
        """Take ``num_shards`` batches (from the rollout ranks) and as many score shards
        (from the reward ranks), join them by shard id, concatenate them in prompt order and
        make one update. Returns the ``train/*`` metrics plus ``time/actor_wait`` (waiting
        for data) and ``time/update``.

        Raises:
            RuntimeError: the shards of the two channels do not match one to one, or a
                shard's scores do not have one reward per response row.
        """
        start = time.perf_counter()
        batches = [
            batch_channel.get(key=batch_key, timeout=channel_timeout) for _ in range(num_shards)
        ]
        scores = [
            scored_channel.get(key=scored_key, timeout=channel_timeout) for _ in range(num_shards)
        ]
        waited = time.perf_counter() - start
        by_shard = {int(s["shard"]): s["rewards"] for s in scores}
        # Items arrive in completion order; sorting by shard (the first prompt index) makes
        # the batch, and so the update, independent of which rank finished first.
        batches.sort(key=lambda it: int(it["shard"]))
        shards = [int(it["shard"]) for it in batches]
        if len(by_shard) != num_shards or sorted(by_shard) != shards:
            raise RuntimeError(
                f"{self.address}: batch shards {shards} but score shards {sorted(by_shard)}"
            )
        for it in batches:
            rows, rewards = it["batch"].batch_size, len(by_shard[int(it["shard"])])
            if rows != rewards:
                raise RuntimeError(
                    f"{self.address}: shard {it['shard']} has {rows} rows but {rewards} rewards"
                )
        batch = RolloutBatch.concat([it["batch"] for it in batches])
        rewards = torch.cat([by_shard[s] for s in shards])
        metrics = self.update(batch, rewards)
        metrics["time/actor_wait"] = waited
        metrics["time/update"] = time.perf_counter() - start - waited
        metrics["train/trained_tokens"] = float(batch.attention_mask.sum())
        return metrics

    def export_weights(self) -> WeightSnapshot:
        """The current weights tagged with :attr:`version`."""
        return WeightSnapshot.of(self.model, self.version)

    def save_pretrained(self, directory: str) -> str:
        """Save the policy (and tokenizer) as a plain HF directory, the critic (PPO) under
        ``<directory>/critic``; returns ``directory``."""
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        if self.updater.critic is not None:
            self.updater.critic.save_pretrained(f"{directory}/critic")
        return directory

    def checkpoint_state(self) -> dict[str, Any]:
        """Optimizer(s), update counter, weight version and torch RNG (the weights are
        saved by :meth:`save_pretrained`)."""
        return {
            "updater": self.updater.state_dict(),
            "version": self.version,
            "torch_rng": torch.get_rng_state(),
        }

    def load_checkpoint_state(self, state: Mapping[str, Any]) -> int:
        """Restore :meth:`checkpoint_state` (weights come from ``model_path``); returns the
        restored version."""
        self.updater.load_state_dict(state["updater"])
        self.version = int(state["version"])
        torch.set_rng_state(state["torch_rng"])
        return self.version
