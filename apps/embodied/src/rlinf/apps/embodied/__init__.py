"""rlinf.apps.embodied: a policy acts in a simulator and PPO / GRPO update it.

* ``rlinf-embodied`` CLI (:mod:`rlinf.apps.embodied.cli`): ``train`` / ``eval``.
* :func:`train`, :func:`resume`, :func:`evaluate`, :class:`EmbodiedConfig`,
  :func:`load_embodied_config`, :func:`build_flow` (the app's
  :class:`rlinf.models.embodied.EmbodiedFlow`): the same, from Python.

Nothing is imported until used (PEP 562), so that the CLI can set Ray's environment
variables before Ray is imported (see :mod:`rlinf.apps.embodied.cli`).
"""

from __future__ import annotations

from rlinf.core import lazy_exports

__all__ = [
    "EmbodiedConfig",
    "TrainResult",
    "build_flow",
    "evaluate",
    "load_embodied_config",
    "resume",
    "train",
]

_HOMES = {
    "EmbodiedConfig": "._config",
    "load_embodied_config": "._config",
    "build_flow": "._flow",
    "TrainResult": "._train",
    "train": "._train",
    "resume": "._train",
    "evaluate": "._eval",
}


__getattr__ = lazy_exports(__name__, _HOMES)
