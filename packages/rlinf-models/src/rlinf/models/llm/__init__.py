"""rlinf.models.llm: Hugging Face causal LMs for RL post-training (no Ray at import).

* :func:`load_causal_lm`: ``(model, tokenizer)`` from a local directory (left padding).
* :class:`TinyLMConfig`, :func:`build_tiny_causal_lm`, :func:`build_char_tokenizer`: a tiny
  seeded Qwen2 model with a character tokenizer, written offline for tests and examples.
* :class:`RolloutBatch`: left-padded prompts + right-padded responses with masks, rollout
  log-probabilities, prompt indices (groups of ``n`` samples), truncation flags, version.
* :func:`response_logprobs`: per-token log-probabilities (and entropy) of the responses,
  computed over response positions only, in chunks, with autograd.
* :class:`GenerationConfig`, :class:`GenerationBackend` (protocol) and
  :class:`HFGenerationBackend`: batched KV-cache sampling with versioned weight loading.
* :class:`ValueModel`: backbone + linear value head, the PPO critic.
* :func:`run_sft` (:class:`SFTConfig`, :class:`SFTExample`, :func:`sft_batch`): supervised
  fine-tuning (full or LoRA) with the loss only on trained segments.
* :func:`multi_turn_generate` (:class:`MultiTurnConfig`, :class:`MultiTurnResult`,
  :class:`AgentEnv` / :class:`ToolSession` protocols): agent rollouts alternating model turns
  and tool observations; :class:`AgentRolloutWorker` runs them in a rollout worker.
* :class:`LLMRLFlow` (:class:`LLMFlowConfig`): the RL flow rollout -> reward -> actor ->
  weight sync that the LLM apps share (:class:`RolloutRoute`: where a rollout rank sends
  texts and token batches; :class:`AsyncStepPipeline`, :class:`PendingStep`: steps whose
  rollouts run up to ``runner.max_staleness`` versions ahead of the actor;
  :class:`PartialRolloutConfig`, :class:`InFlightUpdates`: partial rollouts, new weights
  between decoding steps, per-token versions); :func:`run_rl_loop` (:class:`LLMRunnerSection`,
  :class:`LLMModelSection`, :func:`prepare_initial_model`, :func:`check_llm_rl_config`,
  :class:`LLMTrainingSection`, :func:`check_llm_data_parallel`): their training loop and
  config sections (``training``: one process or data-parallel FSDP2 actor); :class:`LLMApp` (:class:`LLMTrainResult`,
  :class:`TaskSplits`): their train / resume / eval / sft / plan commands, built from an
  app's own pieces; :func:`reference_llm_config`, :func:`is_auto_placement`: the planner's
  reference point and ``placement: auto`` (``plan`` ranks placements with
  :mod:`rlinf.models.planning`); :class:`StepLending`, :func:`check_llm_dynamic`:
  ``scheduler.dynamic``, the rollout / reward slots lent to the actor's update.
"""

import importlib

__all__ = [
    "ALGORITHMS",
    "AgentEnv",
    "AgentRolloutWorker",
    "AsyncStepPipeline",
    "GenerationBackend",
    "GenerationConfig",
    "HFGenerationBackend",
    "InFlightUpdates",
    "LLMActorWorker",
    "LLMApp",
    "LLMFlowConfig",
    "LLMModelSection",
    "LLMRLFlow",
    "LLMRolloutWorker",
    "LLMRunnerSection",
    "LLMTrainResult",
    "LLMTrainingSection",
    "LLMUpdater",
    "LLMUpdaterConfig",
    "LoopResult",
    "MultiTurnConfig",
    "MultiTurnResult",
    "PartialRolloutConfig",
    "PendingStep",
    "PromptSource",
    "RewardWorker",
    "RolloutBatch",
    "RolloutRoute",
    "SFTConfig",
    "SFTExample",
    "StepLending",
    "TaskSplits",
    "TinyLMConfig",
    "ToolSession",
    "ValueModel",
    "build_char_tokenizer",
    "build_tiny_causal_lm",
    "check_llm_data_parallel",
    "check_llm_dynamic",
    "check_llm_rl_config",
    "check_model_dir",
    "check_prompts",
    "group_size_of",
    "is_auto_placement",
    "load_causal_lm",
    "load_tokenizer",
    "multi_turn_generate",
    "outcome_token_rewards",
    "plot_run_panels",
    "position_ids_from_mask",
    "prepare_initial_model",
    "reference_llm_config",
    "response_logprobs",
    "run_rl_loop",
    "run_sft",
    "sample_next_token",
    "sft_batch",
    "token_advantages",
]


# Every name is imported from its home module when first asked for (PEP 562): the workers,
# the flow and the loop import Ray (through rlinf.core), the model code transformers; an
# app's config (its sections live here) loads without either.
_LAZY = {
    "group_size_of": "._advantages",
    "outcome_token_rewards": "._advantages",
    "token_advantages": "._advantages",
    "AgentEnv": "._agent_types",
    "MultiTurnConfig": "._agent_types",
    "MultiTurnResult": "._agent_types",
    "ToolSession": "._agent_types",
    "RolloutBatch": "._batch",
    "GenerationBackend": "._generation",
    "GenerationConfig": "._generation",
    "check_prompts": "._generation",
    "HFGenerationBackend": "._hf_backend",
    "sample_next_token": "._hf_backend",
    "check_model_dir": "._load",
    "load_causal_lm": "._load",
    "load_tokenizer": "._load",
    "position_ids_from_mask": "._logprobs",
    "response_logprobs": "._logprobs",
    "multi_turn_generate": "._multiturn",
    "SFTConfig": "._sft",
    "SFTExample": "._sft",
    "run_sft": "._sft",
    "sft_batch": "._sft",
    "TinyLMConfig": "._tiny",
    "build_char_tokenizer": "._tiny",
    "build_tiny_causal_lm": "._tiny",
    "LLMUpdater": "._updater",
    "ALGORITHMS": "._updater_config",
    "LLMUpdaterConfig": "._updater_config",
    "ValueModel": "._value",
    "LLMActorWorker": "._workers",
    "LLMRolloutWorker": "._workers",
    "RewardWorker": "._workers",
    "AgentRolloutWorker": "._agent_rollout_worker",
    "LLMFlowConfig": "._flow",
    "AsyncStepPipeline": "._pipeline",
    "InFlightUpdates": "._partial",
    "PartialRolloutConfig": "._partial",
    "PendingStep": "._flow_step",
    "RolloutRoute": "._route",
    "StepLending": "._step_lending",
    "LLMRLFlow": "._flow",
    "LLMModelSection": "._rl_loop",
    "LLMRunnerSection": "._rl_loop",
    "LoopResult": "._rl_loop",
    "PromptSource": "._rl_loop",
    "check_llm_dynamic": "._step_lending",
    "check_llm_rl_config": "._rl_loop",
    "LLMTrainingSection": "._training_section",
    "check_llm_data_parallel": "._training_section",
    "prepare_initial_model": "._rl_loop",
    "run_rl_loop": "._rl_loop",
    "plot_run_panels": "._rl_plot",
    "LLMApp": "._app",
    "is_auto_placement": "._plan_profile",
    "reference_llm_config": "._plan",
    "LLMTrainResult": "._app",
    "TaskSplits": "._app",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
