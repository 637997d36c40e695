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
  texts and token batches); :func:`run_rl_loop` (:class:`LLMRunnerSection`,
  :class:`LLMModelSection`, :func:`prepare_initial_model`, :func:`check_llm_rl_config`):
  their training loop and config sections; :class:`LLMApp` (:class:`LLMTrainResult`,
  :class:`TaskSplits`): their train / resume / eval / sft commands, built from an app's
  own pieces.
"""

import importlib

from ._advantages import group_size_of, outcome_token_rewards, token_advantages
from ._agent_types import AgentEnv, MultiTurnConfig, MultiTurnResult, ToolSession
from ._batch import RolloutBatch
from ._generation import GenerationBackend, GenerationConfig, check_prompts
from ._hf_backend import HFGenerationBackend, sample_next_token
from ._load import check_model_dir, load_causal_lm, load_tokenizer
from ._logprobs import position_ids_from_mask, response_logprobs
from ._multiturn import multi_turn_generate
from ._sft import SFTConfig, SFTExample, run_sft, sft_batch
from ._tiny import TinyLMConfig, build_char_tokenizer, build_tiny_causal_lm
from ._updater import LLMUpdater
from ._updater_config import ALGORITHMS, LLMUpdaterConfig
from ._value import ValueModel

__all__ = [
    "ALGORITHMS",
    "AgentEnv",
    "AgentRolloutWorker",
    "GenerationBackend",
    "GenerationConfig",
    "HFGenerationBackend",
    "LLMActorWorker",
    "LLMApp",
    "LLMFlowConfig",
    "LLMModelSection",
    "LLMRLFlow",
    "LLMRolloutWorker",
    "LLMRunnerSection",
    "LLMTrainResult",
    "LLMUpdater",
    "LLMUpdaterConfig",
    "LoopResult",
    "MultiTurnConfig",
    "MultiTurnResult",
    "PromptSource",
    "RewardWorker",
    "RolloutBatch",
    "RolloutRoute",
    "SFTConfig",
    "SFTExample",
    "TaskSplits",
    "TinyLMConfig",
    "ToolSession",
    "ValueModel",
    "build_char_tokenizer",
    "build_tiny_causal_lm",
    "check_llm_rl_config",
    "check_model_dir",
    "check_prompts",
    "group_size_of",
    "load_causal_lm",
    "load_tokenizer",
    "multi_turn_generate",
    "outcome_token_rewards",
    "plot_run_panels",
    "position_ids_from_mask",
    "prepare_initial_model",
    "response_logprobs",
    "run_rl_loop",
    "run_sft",
    "sample_next_token",
    "sft_batch",
    "token_advantages",
]


# The workers, the flow and the loop import Ray (through rlinf.core); load them only when
# asked for (PEP 562), so `import rlinf.models.llm` stays Ray-free.
_LAZY = {
    "LLMActorWorker": "._workers",
    "LLMRolloutWorker": "._workers",
    "RewardWorker": "._workers",
    "AgentRolloutWorker": "._agent_rollout_worker",
    "LLMFlowConfig": "._flow",
    "RolloutRoute": "._route",
    "LLMRLFlow": "._flow",
    "LLMModelSection": "._rl_loop",
    "LLMRunnerSection": "._rl_loop",
    "LoopResult": "._rl_loop",
    "PromptSource": "._rl_loop",
    "check_llm_rl_config": "._rl_loop",
    "prepare_initial_model": "._rl_loop",
    "run_rl_loop": "._rl_loop",
    "plot_run_panels": "._rl_plot",
    "LLMApp": "._app",
    "LLMTrainResult": "._app",
    "TaskSplits": "._app",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
