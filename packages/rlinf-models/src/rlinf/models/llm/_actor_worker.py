"""LLMActorWorker: the trained causal LM, its updater, reference and critic, on one rank
or data-parallel over several (fsdp2)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rlinf.channel import Channel
from rlinf.core import ThreadBorrower, ThreadLoans, Worker

from .._weight_sync import WeightBroadcaster, WeightStager
from .._weights import WeightSnapshot
from ..train import TrainingConfig, save_hf_pretrained
from ._load import load_causal_lm
from ._partial import check_sample_staleness
from ._refill import selection_of
from ._step_shards import join_step_shards
from ._updater import LLMUpdater
from ._updater_config import LLMUpdaterConfig
from ._value import ValueModel
from ._worker_utils import _distinct_state, _dtype, _load_worker_model

__all__ = ["TRAIN_STATE_DIR", "LLMActorWorker", "join_step_shards"]

TRAIN_STATE_DIR = "train_state"
"""Sub-directory of a checkpoint's model directory holding a data-parallel actor's sharded
``torch.distributed.checkpoint`` state (policy, critic, optimizers, update counter)."""


class LLMActorWorker(ThreadBorrower, WeightStager, WeightBroadcaster, Worker):
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
        training: :class:`~rlinf.models.train.TrainingConfig` of the policy and the critic;
            default: ``torch`` for one rank, ``fsdp2`` when the group has several
            (``placement.actor="0-1"``).
        gather_full_state: several ranks: gather the full weights on every rank after each
            update, for ``export_weights`` / ``stage_weights`` (the object-store path). The
            collective path sends the shards as they are (``broadcast_weights``), so the
            flow turns this off; ``save_pretrained`` and checkpoints gather for themselves.

    Data parallel (several ranks, as the embodied actor): the group becomes the default
    process group (:meth:`~rlinf.core.Worker.init_torch_distributed`); the policy and the
    critic are sharded with ``fully_shard``, the reference model is replicated (forward
    only, no gradient). Every rank is called for every method; each update gets the whole
    step's batch on every rank (:class:`LLMUpdater` splits each mini-batch by tokens) and
    ends with every rank gathering the full weights, which rank 0 alone then exports
    (``stage_weights`` calls rank 0 only), unless ``gather_full_state`` is off.

    Weight sync: ``stage_weights`` (:class:`~rlinf.models.WeightStager`) puts rank 0's
    snapshot into the object store; ``broadcast_weights``
    (:class:`~rlinf.models.WeightBroadcaster`, every rank calls it) sends
    :meth:`weight_state`, the live (sharded) policy tensors, to the rollout ranks in buckets.
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
        training: TrainingConfig | None = None,
        gather_full_state: bool = True,
    ) -> None:
        super().__init__()
        torch.manual_seed(seed)
        if training is None:
            training = TrainingConfig(backend="fsdp2" if self.world_size > 1 else "torch")
        if training.backend != "torch":
            self.init_torch_distributed()
        self.model_path = model_path
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
            training=training,
        )
        self.version = 0
        # Slots lent by the dynamic scheduler (scheduler.dynamic) raise the update's
        # threads by this process's own count per slot (every LLM worker runs the same).
        self.loans = ThreadLoans(torch_threads, torch_threads)
        self._gather_full = gather_full_state
        self._full_state: dict[str, torch.Tensor] | None = None
        self._gather_weights()
        # offload="phase": start in host memory, so that the first rollout has the device.
        self.updater.phases.offload()

    @property
    def sharded(self) -> bool:
        """True when the policy is trained data-parallel over several ranks."""
        return self.updater.backend.world_size > 1

    def _gather_weights(self) -> None:
        """Sharded policy: every rank gathers the full weights now (a collective), so that
        rank 0 alone can export them later (only when ``gather_full_state``)."""
        if self.sharded and self._gather_full:
            self._full_state = self.updater.backend.full_state_dict()

    def offload(self) -> None:
        """End of the actor's device turn: with ``training.offload="phase"`` the policy,
        critic and reference go to host memory (their gradients and optimizer states
        too). There is no matching ``onload``: each model comes back at the start of its
        own phase of the next update (:data:`~rlinf.models.llm._actor_offload.ACTOR_PHASES`)."""
        self.updater.phases.offload()

    def broadcast_weights(
        self, dst_group: str, dst_world_size: int, bucket_bytes: int, comm_timeout: float
    ) -> int:
        """:meth:`~rlinf.models.WeightBroadcaster.broadcast_weights` from the device: an
        offloaded policy comes back for the sync and leaves again after it."""
        with self.updater.phases.resident("policy"):
            return super().broadcast_weights(dst_group, dst_world_size, bucket_bytes, comm_timeout)

    def get_version(self) -> int:
        """Version of the current weights (number of updates made)."""
        return self.version

    def update(
        self,
        batch: Any,
        rewards: torch.Tensor,
        select: torch.Tensor | None = None,
        phase: int | None = None,
    ) -> dict[str, float]:
        """One update from a RolloutBatch and its ``[B]`` rewards (every rank the same
        whole batch; ``select``: ``[B]`` bool rows to train on, default all); bumps the
        version. Returns the ``train/*`` metrics, already summed over the ranks where they
        are per-rank parts (the same on every rank). ``phase``: the update accepts lent
        slots (``lend_slots`` with this phase) and reports ``sched/actor_lent_s``."""
        with self.device_turn():
            if phase is None:
                metrics = self.updater.update(batch, rewards, select=select)
            else:
                self.loans.begin(phase)
                try:
                    metrics = self.updater.update(
                        batch, rewards, select=select, on_step=self.loans.apply
                    )
                finally:
                    lent_s = self.loans.end()
                metrics["sched/actor_lent_s"] = lent_s
            # Inside the turn: the gather is a collective over the (still resident) shards.
            self._gather_weights()
        # A collocated actor's offload hook has run at the end of its turn; one with the
        # device to itself offloads here (a no-op unless training.offload="phase").
        self.updater.phases.offload()
        if self.device.type == "cuda":
            # What this process keeps on the device while the other phases run.
            metrics["memory/actor_resident_gib"] = torch.cuda.memory_allocated(self.device) / (
                1 << 30
            )
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
        max_staleness: int | None = None,
        channel_timeout: float = 300.0,
        phase: int | None = None,
    ) -> dict[str, float]:
        """Rank 0 takes ``num_shards`` batches (from the rollout ranks) and as many score
        shards (from the reward ranks) and joins them (:func:`join_step_shards`); then one
        update. Returns the ``train/*`` metrics plus ``time/actor_wait`` (waiting for
        data) and ``time/update``; ``train/sample_version`` (the weight version that
        generated the batch, its oldest token's) and ``train/staleness_mean`` / ``_max``
        (this actor's version minus the oldest version among each sample's tokens, before
        the update); with per-token versions (partial rollouts) also
        ``train/mixed_version_frac``, the share of samples whose tokens span versions.

        Score items with a ``"keep"`` mask (dynamic sampling with refill,
        :mod:`~rlinf.models.llm._flow_refill`): only those rows are trained on.
        ``max_staleness``: the most versions a trained sample may lag (``None``: no bound);
        a staler batch raises before any update, so it is never trained on. ``phase``:
        lent slots (``scheduler.dynamic``) may speed up the update, see :meth:`update`.

        Several ranks: call every rank. Only rank 0 reads the channels (each shard is put
        once, by one rollout and one reward rank, whatever the actor's size); it sends the
        joined batch and rewards to the other actor ranks with
        :meth:`~rlinf.core.Worker.broadcast` (rlinf-core's collectives, worker to worker),
        so the step's payload never passes through the driver and the rollout side does
        not depend on the actor's rank count.

        Raises:
            RuntimeError: the shards of the two channels do not match one to one, a
                shard's scores do not have one reward per response row, or the batch is
                staler than ``max_staleness`` (ranks other than
                0: rank 0 failed to read or join the step; its error is in the message).
        """
        start = time.perf_counter()
        joined: Any = None
        failure: BaseException | None = None
        if self.rank == 0:
            try:
                batches = [
                    batch_channel.get(key=batch_key, timeout=channel_timeout)
                    for _ in range(num_shards)
                ]
                scores = [
                    scored_channel.get(key=scored_key, timeout=channel_timeout)
                    for _ in range(num_shards)
                ]
                joined = join_step_shards(batches, scores, str(self.address))
                # Dynamic sampling with refill: each score shard says which rows to train.
                joined += (selection_of(sorted(scores, key=lambda s: int(s["shard"]))),)
            except Exception as e:
                if self.world_size == 1:
                    raise
                # The other ranks wait in the broadcast: tell them, do not leave them hanging.
                failure, joined = e, f"{type(e).__name__}: {e}"
        if self.world_size > 1:
            group = self.group_name
            joined = self.broadcast(
                joined,
                (group, 0),
                [(group, r) for r in range(1, self.world_size)],
                # Rank 0 may wait up to channel_timeout on each of its 2 x num_shards gets.
                timeout=channel_timeout * (2 * num_shards + 1),
            )
        if failure is not None:
            raise failure
        if isinstance(joined, str):
            raise RuntimeError(f"{self.address}: actor rank 0 could not read the step: {joined}")
        batch, rewards, select = joined
        # A sample is as stale as its oldest token (partial rollouts switch versions
        # mid-sequence; otherwise every token has the batch's version).
        staleness = check_sample_staleness(batch, self.version, max_staleness, str(self.address))
        waited = time.perf_counter() - start
        metrics = self.update(batch, rewards, select, phase)
        metrics["train/sample_version"] = float(batch.oldest_versions().min())
        metrics["train/staleness_mean"] = float(staleness.float().mean())
        metrics["train/staleness_max"] = float(staleness.max())
        if batch.versions is not None:  # partial rollouts only: other runs keep their keys
            metrics["train/mixed_version_frac"] = float(batch.mixed_versions().float().mean())
        metrics["time/actor_wait"] = waited
        metrics["time/update"] = time.perf_counter() - start - waited
        mask = batch.attention_mask if select is None else batch.attention_mask[select]
        metrics["train/trained_tokens"] = float(mask.sum())
        return metrics

    def weight_state(self) -> tuple[int, dict[str, torch.Tensor]]:
        """:attr:`version` and the policy's live tensors by HF state-dict name (FSDP2
        shards as DTensors, not copied; tied embeddings once), for ``broadcast_weights``."""
        return self.version, _distinct_state(self.model)

    def export_weights(self) -> WeightSnapshot:
        """The current (full) weights tagged with :attr:`version`; several ranks: rank 0's
        copy gathered at the last update (call rank 0 only).

        Raises:
            RuntimeError: a sharded actor started with ``gather_full_state=False``.
        """
        if self.sharded and self._full_state is None:
            raise RuntimeError(
                f"{self.address}: export_weights needs the full weights, but this sharded "
                "actor was started with gather_full_state=False (collective weight sync); "
                "use broadcast_weights, or save_pretrained for a full copy"
            )
        if self._full_state is not None:
            return WeightSnapshot(self.version, {k: v.clone() for k, v in self._full_state.items()})
        return WeightSnapshot.of(self.model, self.version)

    def save_pretrained(self, directory: str) -> str | None:
        """Save the policy (and tokenizer) as a plain HF directory, the critic (PPO) under
        ``<directory>/critic``; returns ``directory``.

        Several ranks (call every rank: gathering the shards is a collective): rank 0
        writes the full weights; the other ranks return ``None``.
        """
        with self.updater.phases.resident("policy", "critic"):
            return self._save_pretrained(directory)

    def _save_pretrained(self, directory: str) -> str | None:
        if not self.sharded:
            self.model.save_pretrained(directory)
            self.tokenizer.save_pretrained(directory)
            if self.updater.critic is not None:
                self.updater.critic.save_pretrained(f"{directory}/critic")
            return directory
        written = save_hf_pretrained(self.updater.backend, directory)
        critic_state = None
        if self.updater.critic_backend is not None:
            critic_state = self.updater.critic_backend.full_state_dict()
        if written is None:
            return None
        self.tokenizer.save_pretrained(directory)
        if critic_state is not None:
            self.updater.critic.save_pretrained(f"{directory}/critic", state_dict=critic_state)
        return directory

    def save_checkpoint_files(self, directory: str) -> str | None:
        """What a checkpoint keeps in its model ``directory``: :meth:`save_pretrained`,
        and for several ranks the sharded train state under
        ``<directory>/train_state`` (``torch.distributed.checkpoint``: each rank writes its
        own shards, nothing passes through the driver; needs a file system every actor
        rank sees). Call every rank; returns ``directory`` on rank 0."""
        with self.updater.phases.resident("policy", "critic"):
            out = self.save_pretrained(directory)
            if self.sharded:
                self.updater.save_checkpoint(Path(directory) / TRAIN_STATE_DIR)
        return out

    def checkpoint_state(self) -> dict[str, Any]:
        """The small, picklable part of a checkpoint: update counter, weight version and
        torch RNG; for one rank also the optimizer state(s) (the weights are saved by
        :meth:`save_checkpoint_files`). Several ranks: call every rank; the optimizer
        state is in the sharded train state instead (``"train_state"`` names its
        directory under the checkpoint's model directory)."""
        state: dict[str, Any] = {"version": self.version, "torch_rng": torch.get_rng_state()}
        if self.sharded:
            state["train_state"] = TRAIN_STATE_DIR
        else:
            state["updater"] = self.updater.state_dict()
        return state

    def load_checkpoint_state(self, state: Mapping[str, Any]) -> int:
        """Restore :meth:`checkpoint_state` (weights come from ``model_path``, the
        checkpoint's model directory); returns the restored version. A checkpoint of
        several ranks resumes on any number of ranks (the sharded state is resharded); a
        one-rank checkpoint resumes on one rank.

        Raises:
            ValueError: a one-rank checkpoint (rank-local optimizer state) on several ranks.
            FileNotFoundError: the sharded train state is missing from the model directory.
        """
        if "train_state" not in state and self.sharded:
            raise ValueError(
                "this checkpoint was written by a one-rank actor (rank-local optimizer "
                "state): resume it with placement.actor on one rank"
            )
        # Loaded optimizer state lands on its parameters' device: load while resident, so
        # that the next offload moves it with the rest.
        with self.updater.phases.resident("policy", "critic"):
            if "train_state" in state:
                self.updater.load_checkpoint(Path(self.model_path) / str(state["train_state"]))
                self._gather_weights()
            else:
                self.updater.load_state_dict(state["updater"])
        self.version = int(state["version"])
        torch.set_rng_state(state["torch_rng"])
        return self.version
