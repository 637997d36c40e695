"""A small name -> object registry, and the registries this package fills at import time.

rlinf-algos is layer 0 and imports no other rlinf package, so it keeps this small registry
instead of ``rlinf.core.Registry`` (which adds lazy ``"module:attr"`` entries). Each registry
has one calling convention, so an updater can call any of its entries:

* ``ADVANTAGE_ESTIMATORS``: :class:`~rlinf.algos.AdvantageEstimator` specs, called as
  ``spec(AdvantageInputs) -> (advantages [N, T], returns [N, T] | None)``.
* ``POLICY_LOSSES``: :class:`~rlinf.algos.PolicyLoss` specs, called as
  ``spec(PolicyLossInputs, PPOLossConfig) -> (loss [], metrics)``.
* ``KL_ESTIMATORS``: functions ``fn(log_probs [...], ref_log_probs [...]) -> kl [...]``.
* ``LOSS_AGGREGATIONS``: functions ``fn(loss [B, T], mask [B, T], norm_length) -> []``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar, overload

from ._specs import AdvantageEstimator, AdvantageFn, PolicyLoss, PolicyLossFn

__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "KL_ESTIMATORS",
    "LOSS_AGGREGATIONS",
    "POLICY_LOSSES",
    "Registry",
    "advantage_estimator",
    "policy_loss",
]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects (usually functions).

    Registering a name twice raises ``ValueError`` (a silent overwrite would make the
    behaviour depend on import order); looking up an unknown name raises ``KeyError`` that
    lists every valid name, so a typo in a config is fixed at a glance.

    Args:
        kind: what the registry holds, used in error messages (e.g. ``"KL estimator"``).
        entry_type: when given, :meth:`register` rejects objects of any other type (a
            plain function registered where a spec is expected fails at registration, not
            in the middle of a training step).
    """

    def __init__(self, kind: str, entry_type: type | None = None) -> None:
        self.kind = kind
        self.entry_type = entry_type
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
            if self.entry_type is not None and not isinstance(item, self.entry_type):
                raise TypeError(
                    f"{self.kind} {name!r} must be a {self.entry_type.__name__}, got "
                    f"{type(item).__name__} (wrap the function, see the registry's docs)"
                )
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

    def unregister(self, name: str) -> T:
        """Remove ``name`` and return its object (tests and reloaded plugins); ``KeyError``
        naming valid names when it is not registered."""
        obj = self.get(name)
        del self._entries[name]
        return obj

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


ADVANTAGE_ESTIMATORS: Registry[AdvantageEstimator] = Registry(
    "advantage estimator", AdvantageEstimator
)
"""Advantage estimators (``gae``, ``grpo``, ``drgrpo``, ``rloo``, ``reinforce_pp``,
``reinforce_pp_baseline``, ``discounted_returns``); add one with
:func:`~rlinf.algos.advantage_estimator`."""

POLICY_LOSSES: Registry[PolicyLoss] = Registry("policy loss", PolicyLoss)
"""Policy losses (``ppo``, ``decoupled_ppo``); add one with :func:`~rlinf.algos.policy_loss`."""

LOSS_AGGREGATIONS: Registry[Callable[..., Any]] = Registry("loss aggregation mode")
"""Token/sequence loss aggregation modes (``token-mean``, ``seq-mean-token-sum``, ...)."""

KL_ESTIMATORS: Registry[Callable[..., Any]] = Registry("KL estimator")
"""Per-token KL estimators ``fn(log_probs, ref_log_probs) -> kl`` (``k1``, ``k2``, ``k3``,
``abs``); add one with ``@KL_ESTIMATORS.register("name")``."""


def advantage_estimator(
    name: str,
    *,
    needs_values: bool = False,
    group_relative: bool = False,
    uses_step_rewards: bool = False,
    description: str = "",
) -> Callable[[AdvantageFn], AdvantageFn]:
    """Decorator: register ``fn(inputs: AdvantageInputs) -> (adv, returns | None)`` as
    ``name`` in :data:`ADVANTAGE_ESTIMATORS` (flags as in :class:`AdvantageEstimator`)."""

    def deco(fn: AdvantageFn) -> AdvantageFn:
        ADVANTAGE_ESTIMATORS.register(
            name,
            AdvantageEstimator(
                fn,
                needs_values=needs_values,
                group_relative=group_relative,
                uses_step_rewards=uses_step_rewards,
                description=description,
            ),
        )
        return fn

    return deco


def policy_loss(
    name: str, *, decoupled: bool = False, description: str = ""
) -> Callable[[PolicyLossFn], PolicyLossFn]:
    """Decorator: register ``fn(inputs: PolicyLossInputs, config: PPOLossConfig) -> (loss,
    metrics)`` as ``name`` in :data:`POLICY_LOSSES` (flags as in :class:`PolicyLoss`)."""

    def deco(fn: PolicyLossFn) -> PolicyLossFn:
        POLICY_LOSSES.register(name, PolicyLoss(fn, decoupled=decoupled, description=description))
        return fn

    return deco
