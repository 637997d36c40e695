"""The math flow: :class:`rlinf.models.llm.LLMRLFlow` with single-turn rollouts and the
answer checker as the scorer.

One training step::

    driver --prompts--> rollout ranks --{batch, responses}--> [rollout channel]
    [rollout channel] --> reward worker (checker) --{+ rewards}--> [scored channel]
    [scored channel] --> actor (log-probs, ref KL, advantages, update) --> weights v+1
    actor --WeightSnapshot (object store)--> every rollout rank (checks v+1)

The same code runs collocated (rollout and actor take turns on shared devices) or
disaggregated (the reward worker scores one rank's responses while another generates);
only the placement in the config differs.
"""

from __future__ import annotations

import functools

from rlinf.envs.math import MathChecker
from rlinf.models.llm import LLMFlowConfig, LLMRLFlow
from rlinf.models.llm.engines import with_engine_tis

from ._config import COMPONENTS, MathConfig

__all__ = ["MathFlow"]


class MathFlow(LLMRLFlow):
    """Starts the cluster and the actor / rollout / reward groups of a math run.

    ``step(rows, version)`` and ``evaluate(rows, version)`` take
    ``rlinf.envs.math.MathRow``\\ s; see :class:`~rlinf.models.llm.LLMRLFlow`.

    Args:
        cfg: a validated :class:`MathConfig`.
        model_path: HF directory the policy starts from (the SFT output, or a checkpoint's
            model when resuming).
        ref_path: HF directory of the KL reference (the policy before RL).
        total_updates: updates of the whole run (learning-rate schedule).
    """

    def __init__(self, cfg: MathConfig, model_path: str, ref_path: str, total_updates: int) -> None:
        config = LLMFlowConfig(
            "math",
            cfg.runner,
            cfg.cluster,
            cfg.placement,
            COMPONENTS,
            cfg.model.dtype,
            partial=cfg.runner.partial,
            scheduler=cfg.scheduler,
        )
        super().__init__(
            config,
            model_path=model_path,
            ref_path=ref_path,
            # Truncated IS on by default when vLLM / SGLang generate.
            algo=with_engine_tis(cfg.algo, cfg.generation),
            total_updates=total_updates,
            training=cfg.training,
            scorer_factory=functools.partial(MathChecker, cfg.checker),
            rollout_args=(cfg.generation,),
        )
