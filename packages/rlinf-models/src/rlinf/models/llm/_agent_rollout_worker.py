"""AgentRolloutWorker: version-checked multi-turn (tool-using) rollouts."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._agent_types import AgentEnv, MultiTurnConfig
from ._generation import GenerationConfig
from ._multiturn import multi_turn_generate
from ._rollout_worker import LLMRolloutWorker

__all__ = ["AgentRolloutWorker"]


class AgentRolloutWorker(LLMRolloutWorker):
    """An :class:`~rlinf.models.llm.LLMRolloutWorker` whose responses are multi-turn agent
    trajectories (:func:`~rlinf.models.llm.multi_turn_generate`): model turns interleaved
    with tool observations, the observations masked out of training.

    Args:
        model_path: HF model directory (its weights are replaced by the first sync).
        generation: per-turn :class:`~rlinf.models.llm.GenerationConfig` of training
            rollouts (``n`` = trajectories per prompt).
        multi_turn: :class:`~rlinf.models.llm.MultiTurnConfig` (turn and token limits).
        env_factory: picklable callable building the :class:`~rlinf.models.llm.AgentEnv`;
            called once, in the worker process (tool pools and handles live there).
        seed: base sampling seed (rank and weight version are mixed in).
        torch_threads: intra-op threads.
        dtype: torch dtype name of the weights.
        offload_model: as for :class:`LLMRolloutWorker`.
    """

    # New weights reach a trajectory before each turn and every update_interval_tokens
    # inside one (multi_turn_generate's ``updates``); per-token versions span its turns.
    supports_partial = True

    def __init__(
        self,
        model_path: str,
        generation: GenerationConfig,
        multi_turn: MultiTurnConfig,
        env_factory: Callable[[], AgentEnv],
        *,
        seed: int = 0,
        torch_threads: int = 1,
        dtype: str = "float32",
        offload_model: bool = False,
    ) -> None:
        super().__init__(
            model_path,
            generation,
            seed=seed,
            torch_threads=torch_threads,
            dtype=dtype,
            offload_model=offload_model,
        )
        if not isinstance(multi_turn, MultiTurnConfig):
            raise TypeError(f"multi_turn must be a MultiTurnConfig, got {type(multi_turn)}")
        self.multi_turn = multi_turn
        self.env = env_factory()

    def generate(  # type: ignore[override]  # tasks: one per prompt, for the tool sessions
        self,
        prompts: Sequence[str],
        tasks: Sequence[Any],
        *,
        version: int,
        prompt_offset: int = 0,
        greedy: bool = False,
        n: int | None = None,
        stream: int = 0,
    ) -> dict[str, Any]:
        """Multi-turn trajectories for ``prompts`` with weights ``version``.

        Args:
            prompts: prompt texts.
            tasks: one task per prompt, handed to ``env.session``.
            version: the weight version the caller expects; any other raises
                ``StaleWeightsError`` before generating.
            prompt_offset: added to the batch's ``prompt_index`` (unique groups across ranks).
            greedy: one greedy trajectory per prompt (evaluation) instead of ``n`` samples.
            n: trajectories per prompt (default: the generation config's).
            stream: the call's index among those with this ``version`` (its own seeds).

        Returns:
            ``{"batch": RolloutBatch, "responses": transcripts, "time/generate": s,
            "time/tool_wait": s, "tokens": model tokens, "turns": [B] int64,
            "tool_calls": [B] int64}``, with partial rollouts (sampling calls) also
            the ``[B]`` floats ``requeued`` and ``mixed_versions``.
        """
        if len(tasks) != len(prompts):
            raise ValueError(f"got {len(tasks)} tasks for {len(prompts)} prompts")
        updates = self._in_flight_updates(greedy)
        cfg = self._sampling_config(version, greedy=greedy, n=n, stream=stream)
        ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        start = time.perf_counter()
        with self.generation_turn():
            result = multi_turn_generate(
                self.backend,
                self.tokenizer,
                ids,
                tasks,
                self.env,
                cfg,
                self.multi_turn,
                updates=updates,
            )
        elapsed = time.perf_counter() - start
        batch = result.batch
        if prompt_offset:
            batch = dataclasses.replace(batch, prompt_index=batch.prompt_index + prompt_offset)
        out = {
            "batch": batch,
            "responses": result.transcripts,
            "time/generate": elapsed,
            "time/tool_wait": result.tool_wait_s,
            "tokens": int(batch.response_mask.sum()),
            "turns": result.turns,
            "tool_calls": result.tool_calls,
        }
        if updates is not None and result.requeued is not None:
            # Per-row [B] tensors: _publish reports their means as rollout/<key>.
            out["requeued"] = result.requeued.float()
            out["mixed_versions"] = batch.mixed_versions().float()
        return out
