"""rlinf.apps.embodied: a policy acts in a simulator and PPO / GRPO (on-policy) or SAC /
CrossQ (off-policy) update it.

* ``rlinf-embodied`` CLI (:mod:`rlinf.apps.embodied.cli`): ``train`` / ``eval`` / ``plan``
  (``placement: auto`` in a config plans, then trains).
* :func:`train`, :func:`resume`, :func:`evaluate`, :class:`EmbodiedConfig`,
  :func:`load_embodied_config`, :func:`build_flow` / :func:`build_offpolicy_flow` (the app's
  :class:`rlinf.models.embodied.EmbodiedFlow`), :func:`plan` / :class:`Plan` (profile and
  rank placements): the same, from Python.

Lazy (PEP 562): a name's module loads on first use, so ``rlinf-embodied`` can set Ray's
environment first.
"""

from __future__ import annotations

from rlinf.core import lazy_exports

_HOMES = {
    **dict.fromkeys(("EmbodiedConfig", "load_embodied_config"), "._config"),
    **dict.fromkeys(("build_flow", "build_offpolicy_flow"), "._flow"),
    **dict.fromkeys(("TrainResult", "train", "resume"), "._train"),
    "evaluate": "._eval",
    **dict.fromkeys(("Plan", "plan"), "._plan"),
}
__all__ = sorted(_HOMES)  # every public name, spelled out in _HOMES

__getattr__ = lazy_exports(__name__, _HOMES)
