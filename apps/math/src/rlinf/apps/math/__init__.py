"""rlinf.apps.math: an LLM answers math problems, a checker scores the answers, and GRPO /
DAPO / PPO / REINFORCE++ update it (after an optional SFT warm-up).

* ``rlinf-math`` CLI (:mod:`rlinf.apps.math.cli`): ``train`` / ``eval`` / ``sft``.
* :func:`train`, :func:`resume`, :func:`evaluate`, :class:`MathConfig`,
  :func:`load_math_config`, :class:`MathFlow`: the same, from Python.

Lazy (PEP 562): a name's module loads on first use, so ``rlinf-math`` can set Ray's
environment first.
"""

from __future__ import annotations

from rlinf.core import lazy_exports

_HOMES = {
    **dict.fromkeys(("MathConfig", "RunnerConfig", "load_math_config"), "._config"),
    "MathFlow": "._flow",
    **dict.fromkeys(("SFTConfig", "run_sft"), "._sft"),
    **dict.fromkeys(("TrainResult", "train", "resume", "evaluate"), "._app"),
    "greedy_accuracy": "._eval",
}
__all__ = sorted(_HOMES)  # every public name, spelled out in _HOMES

__getattr__ = lazy_exports(__name__, _HOMES)
