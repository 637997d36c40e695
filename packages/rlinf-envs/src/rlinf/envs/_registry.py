"""Env adapters by name, resolved lazily so optional simulators are imported only when used.

rlinf-core will provide the shared ``Registry`` helper; until it does, this small one lives
here (it only needs name -> factory with lazy ``"module:attr"`` targets and extra hints).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ._base import VectorEnv
from ._config import EnvConfig

__all__ = ["ENVS", "Registry", "make_env"]


@dataclass(frozen=True)
class _Entry:
    target: Any
    extra: str | None


class Registry:
    """Name -> factory, where a factory may be a ``"package.module:attr"`` string.

    A string target is imported on first :meth:`get`; if that import fails and the entry
    names an ``extra``, the error says which ``pip install`` fixes it. Registering a name
    twice raises (a silent overwrite would depend on import order); an unknown name raises
    ``KeyError`` listing the valid ones.

    Args:
        kind: what the registry holds, for error messages (``"env"``).
        distribution: the distribution whose extras the hints name (``"rlinf-envs"``).
    """

    def __init__(self, kind: str, distribution: str) -> None:
        self.kind = kind
        self.distribution = distribution
        self._entries: dict[str, _Entry] = {}

    def register(self, name: str, target: Any, *, extra: str | None = None) -> None:
        """Register ``target`` (a callable or a ``"module:attr"`` string) as ``name``."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        if isinstance(target, str) and target.count(":") != 1:
            raise ValueError(f"lazy target must look like 'package.module:attr', got {target!r}")
        self._entries[name] = _Entry(target, extra)

    def get(self, name: str) -> Callable[..., Any]:
        """The factory registered as ``name``, importing it if it is a string."""
        if name not in self._entries:
            valid = ", ".join(sorted(self._entries)) or "(none)"
            raise KeyError(f"unknown {self.kind} {name!r}; valid: {valid}")
        entry = self._entries[name]
        if not isinstance(entry.target, str):
            return entry.target
        module_name, attr = entry.target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            if entry.extra is None:
                raise
            raise ImportError(
                f"{self.kind} {name!r} needs the {entry.extra!r} extra: "
                f"pip install '{self.distribution}[{entry.extra}]' ({err})"
            ) from err
        return getattr(module, attr)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)


ENVS = Registry("env", "rlinf-envs")
"""Env adapters: ``"gym"`` (any gymnasium id), ``"mujoco"`` (gymnasium MuJoCo tasks) and
``"maniskill"`` (ManiSkill3 tasks)."""
ENVS.register("gym", "rlinf.envs._gym:GymVectorEnv")
ENVS.register("mujoco", "rlinf.envs._mujoco:make_mujoco_env", extra="mujoco")
ENVS.register("maniskill", "rlinf.envs._maniskill:make_maniskill_env", extra="maniskill")


def make_env(config: EnvConfig) -> VectorEnv:
    """Build the vector env that ``config.kind`` names in :data:`ENVS`."""
    return ENVS.get(config.kind)(config)
