"""LLMRolloutWorker: version-checked generation copies of the policy."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator, Sequence
from typing import Any

import ray
import torch

from rlinf.core import Worker

from .._memory import phase_peak_memory
from .._weight_sync import WeightReceiver, resolve_snapshot
from .._weights import StaleWeightsError, VersionedWeights, WeightSnapshot
from ..train import ModelOffloader
from ._hf_backend import HFGenerationBackend
from ._load import load_tokenizer
from ._partial import InFlightUpdates, PartialRolloutConfig
from ._route import RolloutRoute
from ._worker_utils import _load_worker_model

__all__ = ["LLMRolloutWorker"]


class LLMRolloutWorker(WeightReceiver, Worker):
    """Generates responses with an :class:`~rlinf.models.llm.HFGenerationBackend` whose
    weights are version-checked: asking for a version it does not hold raises
    :class:`~rlinf.models.StaleWeightsError` instead of serving old weights.

    Weights arrive either as a snapshot (``load_weights``, the object-store path) or by
    bucketed broadcasts from every actor rank straight into the generation model's own
    tensors (``receive_weights`` from :class:`~rlinf.models.WeightReceiver`, the
    collective path; targets: :meth:`weight_targets`).

    Args:
        model_path: HF model directory (its weights are replaced by the first sync).
        generation: :class:`~rlinf.models.llm.GenerationConfig` of training rollouts.
        seed: base sampling seed (rank and weight version are mixed in).
        torch_threads: intra-op threads.
        dtype: torch dtype name of the weights.
        offload_model: HF backend: keep the generation model in host memory outside this
            worker's device turns (collocated placements take turns; the LLM flow sets it
            with ``training.offload="phase"``). An engine sleeps between turns regardless.
    """

    def __init__(
        self,
        model_path: str,
        generation: Any,
        *,
        seed: int = 0,
        torch_threads: int = 1,
        dtype: str = "float32",
        offload_model: bool = False,
    ) -> None:
        super().__init__()
        engine = getattr(generation, "backend", "hf")
        self._offloader: ModelOffloader | None = None
        if engine == "hf":
            model, self.tokenizer = _load_worker_model(
                model_path, dtype=dtype, device=self.device, torch_threads=torch_threads
            )
            self.backend = HFGenerationBackend(model, self.tokenizer, device=self.device)
            if offload_model:
                self._offloader = ModelOffloader(model)
                self._offloader.offload()  # the first device turn brings it back
        else:
            # An in-process vLLM / SGLang engine loads the model itself (engines/).
            from .engines import build_engine_backend

            torch.set_num_threads(torch_threads)
            self.tokenizer = load_tokenizer(model_path)
            self.backend = build_engine_backend(engine, model_path, seed=seed, dtype=dtype)
        self.generation = generation
        self.seed = seed
        self.partial = PartialRolloutConfig()
        self._weights_channel: Any = None

    supports_partial = True
    """Whether :meth:`enable_partial` may be called (a subclass that cannot take weights
    during a call sets False)."""

    def enable_partial(self, channel: Any, config: PartialRolloutConfig) -> None:
        """Take new weights from ``channel`` (key ``("weights", rank)``: the driver's
        :class:`~rlinf.models.StagedWeights` in version order) at the start of every call
        and, during a training rollout, between chunks of ``config.update_interval_tokens``
        new tokens (:mod:`rlinf.models.llm._partial`).

        Raises:
            ValueError: the backend is an engine (vLLM / SGLang), which cannot take weights
                between decoding steps here.
        """
        if not config.enabled:
            raise ValueError("enable_partial needs partial_mode continue or abort")
        if not isinstance(self.backend, HFGenerationBackend):
            raise ValueError(
                f"runner.partial_mode={config.mode}: weights between decoding steps need "
                "generation.backend=hf (the vLLM / SGLang adapters generate a whole call at once)"
            )
        self.partial = config
        self._weights_channel = channel

    def _poll_weights(self) -> bool:
        """Load every version the driver has published for this rank, oldest first;
        returns True when the weights changed."""
        from rlinf.channel import ChannelEmpty

        changed = False
        while True:
            try:
                staged = self._weights_channel.get_nowait(key=("weights", self.rank))
            except ChannelEmpty:
                return changed
            self.backend.load_weights(resolve_snapshot(staged.ref))
            changed = True

    def _in_flight_updates(self, greedy: bool) -> InFlightUpdates | None:
        """With partial rollouts: load what has arrived (every call starts with the newest
        weights) and, for a sampling call, what it needs to take more while it runs."""
        if not self.partial.enabled:
            return None
        self._poll_weights()
        if greedy:
            return None
        p = self.partial
        return InFlightUpdates(p.mode, p.update_interval_tokens, self._poll_weights)

    def get_version(self) -> int:
        """Version of the loaded weights (-1 before the first load)."""
        return self.backend.version

    def load_weights(self, snapshot: WeightSnapshot | ray.ObjectRef) -> int:
        """Load the next weight version (``StaleWeightsError`` when out of order)."""
        self.backend.load_weights(resolve_snapshot(snapshot))
        return self.backend.version

    def weight_targets(self) -> tuple[VersionedWeights, dict[str, torch.Tensor]]:
        """The generation backend's version tracker and its model's tensors by HF
        state-dict name (tied embeddings once), which ``receive_weights`` overwrites."""
        if not isinstance(self.backend, HFGenerationBackend):
            raise ValueError(
                "collective weight sync writes into the HF backend's tensors; an engine "
                "(generation.backend vllm / sglang) takes snapshots: runner.weight_sync=object_store"
            )
        return self.backend.weight_targets()

    def onload(self) -> None:
        """Wake an engine that :meth:`offload` put to sleep; bring an offloaded HF model
        back (``offload_model``; otherwise nothing to do)."""
        if self._offloader is not None:
            self._offloader.onload()
        elif not isinstance(self.backend, HFGenerationBackend):
            self.backend.onload()

    def offload(self) -> None:
        """Between turns on a shared device an engine sleeps (vLLM sleep level 1, SGLang
        KV-cache release); the HF model goes to host memory with ``offload_model``, else
        stays resident."""
        if self._offloader is not None:
            self._offloader.offload()
        elif not isinstance(self.backend, HFGenerationBackend):
            self.backend.offload()

    @contextlib.contextmanager
    def generation_turn(self) -> Iterator[None]:
        """:meth:`~rlinf.core.Worker.device_turn` with the model on the device: a worker
        whose device nobody shares has no turns (no hooks run), so an offloaded model is
        brought back here once and stays."""
        with self.device_turn():
            if self._offloader is not None:
                self._offloader.onload()
            yield

    def receive_weights(self, src_group: str, comm_timeout: float) -> int:
        """:meth:`~rlinf.models.WeightReceiver.receive_weights` into the model on the
        device: an offloaded HF model comes back for the sync and leaves again after it."""
        if self._offloader is None or not self._offloader.offloaded:
            return super().receive_weights(src_group, comm_timeout)
        self._offloader.onload()
        try:
            return super().receive_weights(src_group, comm_timeout)
        finally:
            self._offloader.offload()

    def _sampling_config(
        self, version: int, *, greedy: bool, n: int | None, stream: int = 0
    ) -> Any:
        """The generation config of one call with weights ``version`` (greedy: one sample
        per prompt), after checking that ``version`` is the one held. ``stream`` tells
        apart the seeds of several calls with one version (rollouts started ahead).

        With partial rollouts a sampling call may find newer weights than ``version``
        (published while the call waited behind earlier ones): it then generates with
        them, the batch records which; greedy calls (evaluation) still need ``version``."""
        held = self.backend.version
        newer_ok = self.partial.enabled and not greedy and held > version
        if held != version and not newer_ok:
            raise StaleWeightsError(
                f"{self.address}: asked to generate with weights version {version}, "
                f"but holding {self.backend.version}"
            )
        cfg = self.generation
        # Distinct streams per rank and weight version, reproducible across a resume (a
        # call counter would restart at 0); None keeps torch's global RNG.
        seed = None
        if cfg.seed is not None:
            seed = cfg.seed + self.seed + 1_000_003 * self.rank + 7919 * (version + 1)
            seed += 104_729 * stream
        if greedy:
            return dataclasses.replace(cfg, n=1, do_sample=False, seed=seed)
        return dataclasses.replace(cfg, n=n or cfg.n, seed=seed)

    def _publish(
        self,
        out: dict[str, Any],
        answers: Sequence[Any],
        prompt_offset: int,
        route: RolloutRoute,
        timeout: float,
    ) -> dict[str, float]:
        """Send the shard's texts to ``route.reward`` and its batch to ``route.batch`` (see
        :mod:`rlinf.models.llm._route`), with ``answers`` (one per prompt) repeated for each
        of a prompt's response rows; returns the shard's metrics: every ``time/*`` and ``memory/*`` of
        ``out``, ``rollout/generated_tokens`` and ``rollout/<key>``, the mean of every
        per-row ``[B]`` tensor of ``out`` (e.g. ``turns``, ``tool_calls``)."""
        batch = out["batch"]
        per_row = [answers[int(i) - prompt_offset] for i in batch.prompt_index]
        texts = {
            "shard": prompt_offset,
            "responses": out["responses"],
            "answers": per_row,
            "response_lengths": batch.response_lengths.tolist(),
            "truncated": batch.truncated.tolist(),
        }
        route.reward.put(texts, key=route.reward_key, timeout=timeout)
        if route.batch is not None:
            route.batch.put(
                {"shard": prompt_offset, "batch": batch}, key=route.batch_key, timeout=timeout
            )
        metrics = {k: float(v) for k, v in out.items() if k.startswith(("time/", "memory/"))}
        metrics["rollout/generated_tokens"] = float(out["tokens"])
        for key, value in out.items():
            if isinstance(value, torch.Tensor) and value.dim() == 1:
                metrics[f"rollout/{key}"] = float(value.float().mean())
        return metrics

    def generate(
        self,
        prompts: Sequence[str],
        *,
        version: int,
        prompt_offset: int = 0,
        greedy: bool = False,
        n: int | None = None,
        stream: int = 0,
    ) -> dict[str, Any]:
        """Generate for ``prompts`` with weights ``version``.

        Args:
            prompts: prompt texts.
            version: the weight version the caller expects; any other raises
                ``StaleWeightsError`` before generating.
            prompt_offset: added to the batch's ``prompt_index`` so that batches of several
                ranks concatenate into unique, contiguous groups.
            greedy: one greedy sample per prompt (evaluation) instead of ``n`` samples.
            n: samples per prompt (default: the generation config's).
            stream: the call's index among those with this ``version`` (its own seeds).

        Returns:
            ``{"batch": RolloutBatch, "responses": [str], "time/generate": s,
            "tokens": generated tokens}``, plus ``memory/rollout_peak_gib`` on CUDA, and
            with partial rollouts (:meth:`enable_partial`, sampling calls) the ``[B]``
            floats ``requeued`` (aborted and run again) and ``mixed_versions`` (tokens of
            several versions).
        """
        updates = self._in_flight_updates(greedy)
        cfg = self._sampling_config(version, greedy=greedy, n=n, stream=stream)
        ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        start = time.perf_counter()
        memory: dict[str, float] = {}
        with self.generation_turn(), phase_peak_memory("rollout", memory, self.device):
            if updates is None:
                batch = self.backend.generate(ids, cfg)
            else:
                batch = self.backend.generate(ids, cfg, updates=updates)
        elapsed = time.perf_counter() - start
        if prompt_offset:
            batch = dataclasses.replace(batch, prompt_index=batch.prompt_index + prompt_offset)
        out = {
            "batch": batch,
            "responses": batch.decode_responses(self.tokenizer),
            "time/generate": elapsed,
            "tokens": int(batch.response_mask.sum()),
            **memory,
        }
        if updates is not None:
            # Per-row [B] tensors: _publish reports their means as rollout/<key>.
            out["requeued"] = self.backend.requeued.float()
            out["mixed_versions"] = batch.mixed_versions().float()
        return out

    def rollout(
        self,
        inputs: Sequence[Sequence[Any]],
        answers: Sequence[Any],
        route: RolloutRoute,
        prompt_offset: int = 0,
        *,
        version: int,
        greedy: bool = False,
        stream: int = 0,
        channel_timeout: float = 300.0,
    ) -> dict[str, float]:
        """Generate for one shard and publish it along ``route``.

        Args:
            inputs: :meth:`generate`'s leading arguments: ``(prompts,)`` here, ``(prompts,
                tasks)`` for the agent worker.
            answers: one reference answer per prompt, for the scorer.
            route: where the texts and the batch go.
            prompt_offset: the shard's first prompt index over all ranks (its id).
            version: the weight version expected (any other raises ``StaleWeightsError``).
            greedy: one greedy response per prompt (evaluation).
            stream: the call's index among the rollouts started with ``version`` (0 for
                the first; a pipeline running ahead starts several), mixed into the seeds.

        Returns:
            the metrics of :meth:`_publish`.
        """
        prompts = inputs[0]
        if len(answers) != len(prompts):
            raise ValueError(f"got {len(answers)} answers for {len(prompts)} prompts")
        out = self.generate(
            *inputs, version=version, prompt_offset=prompt_offset, greedy=greedy, stream=stream
        )
        return self._publish(out, answers, prompt_offset, route, channel_timeout)
