"""The math app's own pieces, handed to the LLM apps' shared commands
(:class:`rlinf.models.llm.LLMApp`: train, resume, eval, sft): math rows, SFT targets, the
prompt order, :class:`MathFlow`, greedy accuracy and the learning-curve panels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlinf.models.llm import LLMApp, LLMTrainResult, TaskSplits

from ._config import MathConfig, load_math_config, validate
from ._data import load_splits, prompt_iterator
from ._eval import greedy_accuracy
from ._sft import sft_examples

if TYPE_CHECKING:
    from rlinf.models.llm import LLMRLFlow

__all__ = ["APP", "TrainResult", "command", "evaluate", "resume", "train"]

PANELS = (
    ("reward", (("rollout/reward_mean", "rollout reward"),)),
    ("accuracy", (("rollout/accuracy", "rollout accuracy"), ("eval/accuracy", "held-out (greedy)"))),
)  # fmt: skip


def _make_flow(cfg: MathConfig, data: TaskSplits, model_path: str, ref_path: str) -> LLMRLFlow:
    from ._flow import MathFlow  # imports Ray: only once every input is checked

    return MathFlow(cfg, model_path, ref_path, total_updates=cfg.runner.steps)


APP: LLMApp[MathConfig, TaskSplits] = LLMApp(
    name="math",
    load_config=load_math_config,
    load_data=lambda cfg, resumed: TaskSplits(*load_splits(cfg.data)),
    sft_examples=lambda cfg, data: sft_examples(data.train, cfg.sft),
    prompts=lambda cfg, data: prompt_iterator(cfg.data, list(data.train), cfg.runner.seed),
    make_flow=_make_flow,
    greedy_eval=greedy_accuracy,
    panels=PANELS,
    plot_title=lambda cfg: f"math ({cfg.algo.name}, {cfg.runner.name})",
    sft_dir="model",
    check_config=validate,
)
"""The math app for the shared LLM commands; ``rlinf-math`` runs ``APP.command``."""

TrainResult = LLMTrainResult
train = APP.train
resume = APP.resume
evaluate = APP.evaluate
command = APP.command
