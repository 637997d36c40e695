"""rlinf.apps.agentic: an LLM agent works over several turns, calling tools (search over a
local corpus, sandboxed code execution) between generations; it is rewarded at the end and
trained with GRPO (after an SFT warm-up on gold tool-use traces).

* ``rlinf-agentic`` CLI (:mod:`rlinf.apps.agentic.cli`): ``train`` / ``eval`` / ``sft``.
* :func:`train`, :func:`resume`, :func:`evaluate`, :class:`AgenticConfig`,
  :func:`load_agentic_config`, :class:`AgenticFlow`: the same, from Python.

Nothing is imported until used (PEP 562), so that the CLI can set Ray's environment
variables before Ray is imported (see :mod:`rlinf.apps.agentic.cli`).
"""

from __future__ import annotations

from rlinf.core import lazy_exports

__all__ = [
    "AgenticConfig",
    "AgenticFlow",
    "TrainResult",
    "evaluate",
    "greedy_eval",
    "load_agentic_config",
    "load_task",
    "resume",
    "train",
]

_HOMES = {
    "AgenticConfig": "._config",
    "load_agentic_config": "._config",
    "AgenticFlow": "._flow",
    "load_task": "._task",
    "TrainResult": "._app",
    "train": "._app",
    "resume": "._app",
    "evaluate": "._app",
    "greedy_eval": "._eval",
}


__getattr__ = lazy_exports(__name__, _HOMES)
