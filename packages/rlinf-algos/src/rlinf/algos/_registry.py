"""A small name -> object registry, and the registries this package fills at import time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "KL_ESTIMATORS",
    "LOSS_AGGREGATIONS",
    "POLICY_LOSSES",
    "Registry",
]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (usually functions).

    Registering a name twice raises ``ValueError`` (a silent overwrite would make the
    behaviour depend on import order); looking up an unknown name raises ``KeyError`` that
    lists every valid name, so a typo in a config is fixed at a glance.

    Args:
        kind: what the registry holds, used in error messages (e.g. ``"KL estimator"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str, obj: Any = None) -> Any:
        """Register ``obj`` under ``name``; without ``obj`` returns a decorator."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")

        def _add(item: T) -> T:
            if name in self._entries:
                raise ValueError(
                    f"{self.kind} {name!r} is already registered "
                    f"(to {self._entries[name]!r}); choose another name"
                )
            self._entries[name] = item
            return item

        if obj is None:
            return _add
        return _add(obj)

    def get(self, name: str) -> T:
        """Return the object registered as ``name``; ``KeyError`` naming valid names otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(sorted(self._entries)) or "<none>"
            raise KeyError(f"unknown {self.kind} {name!r}; valid names: {valid}") from None

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        """Sorted list of registered names."""
        return sorted(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, names={self.names()})"


ADVANTAGE_ESTIMATORS: Registry[Callable[..., Any]] = Registry("advantage estimator")
"""Advantage estimators (``gae``, ``grpo``, ``drgrpo``, ``rloo``, ``reinforce_pp``, ...)."""

POLICY_LOSSES: Registry[Callable[..., Any]] = Registry("policy loss")
"""Policy losses returning ``(loss, metrics)`` (``ppo``, ``decoupled_ppo``)."""

LOSS_AGGREGATIONS: Registry[Callable[..., Any]] = Registry("loss aggregation mode")
"""Token/sequence loss aggregation modes (``token-mean``, ``seq-mean-token-sum``, ...)."""

KL_ESTIMATORS: Registry[Callable[..., Any]] = Registry("KL estimator")
"""Per-token KL estimators (``k1``, ``k2``, ``k3``)."""
