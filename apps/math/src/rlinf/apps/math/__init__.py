"""rlinf.apps.math: an LLM answers math problems, a checker scores the answers, and GRPO /
DAPO / PPO / REINFORCE++ update it (after an optional SFT warm-up).

* ``rlinf-math`` CLI (:mod:`rlinf.apps.math.cli`): ``train`` / ``eval`` / ``sft``.
* :func:`train`, :func:`resume`, :func:`evaluate`, :class:`MathConfig`,
  :func:`load_math_config`, :class:`MathFlow`: the same, from Python.

Nothing is imported until used (PEP 562), so that the CLI can set Ray's environment
variables before Ray is imported (see :mod:`rlinf.apps.math.cli`).
"""

from __future__ import annotations

from rlinf.core import lazy_exports

__all__ = [
    "MathConfig",
    "MathFlow",
    "RunnerConfig",
    "SFTConfig",
    "TrainResult",
    "evaluate",
    "greedy_accuracy",
    "load_math_config",
    "resume",
    "run_sft",
    "train",
]

_HOMES = {
    "MathConfig": "._config",
    "RunnerConfig": "._config",
    "load_math_config": "._config",
    "MathFlow": "._flow",
    "SFTConfig": "._sft",
    "run_sft": "._sft",
    "TrainResult": "._app",
    "train": "._app",
    "resume": "._app",
    "evaluate": "._app",
    "greedy_accuracy": "._eval",
}


__getattr__ = lazy_exports(__name__, _HOMES)
