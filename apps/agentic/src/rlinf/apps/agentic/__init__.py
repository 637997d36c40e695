"""rlinf.apps.agentic: an LLM agent works over several turns, calling tools (search over a
local corpus, sandboxed code execution) between generations; it is rewarded at the end and
trained with GRPO (after an SFT warm-up on gold tool-use traces).

* ``rlinf-agentic`` CLI (:mod:`rlinf.apps.agentic.cli`): ``train`` / ``eval`` / ``sft``.
* :func:`train`, :func:`resume`, :func:`evaluate`, :class:`AgenticConfig`,
  :func:`load_agentic_config`, :class:`AgenticFlow`: the same, from Python.

Lazy (PEP 562): a name's module loads on first use, so ``rlinf-agentic`` can set Ray's
environment first.
"""

from __future__ import annotations

from rlinf.core import lazy_exports

_HOMES = {
    **dict.fromkeys(("AgenticConfig", "load_agentic_config"), "._config"),
    "AgenticFlow": "._flow",
    "load_task": "._task",
    **dict.fromkeys(("TrainResult", "train", "resume", "evaluate"), "._app"),
    "greedy_eval": "._eval",
}
__all__ = sorted(_HOMES)  # every public name, spelled out in _HOMES

__getattr__ = lazy_exports(__name__, _HOMES)
