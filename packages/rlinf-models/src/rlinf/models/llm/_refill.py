"""DAPO dynamic sampling with refill: the bookkeeping, without Ray.

A step wants ``target`` informative groups (prompts whose responses did not all get the
same reward). Each scored shard is judged as soon as it arrives; every flat group in it
is replaced by one new prompt drawn from the data stream right away (a refill of the
next round), so the batch fills up while the step's other shards are still generating.
A flat group of round ``max_rounds`` is not replaced: the step trains a short batch and
records how many groups it lacks. Drawing exactly one prompt per flat group never
overshoots, so every generated group is either trained on or counted as dropped.

Groups are judged on the scorer's rewards (DAPO's ``acc`` filter); the updater's own filter
still runs on the shaped rewards (overlong penalty) and reports ``train/dropped_groups``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from rlinf.algos import dynamic_sampling_filter

__all__ = ["RefillLedger", "check_max_refill_rounds", "selection_of"]


def check_max_refill_rounds(value: Any) -> int:
    """``value`` as a refill bound: an ``int`` >= 0 (``bool`` refused).

    Raises:
        ValueError: naming ``max_refill_rounds`` and the value.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"max_refill_rounds must be an int >= 0, got {value!r}")
    return value


@dataclass
class RefillLedger:
    """Counts of one step's dynamic sampling with refill.

    Args:
        target: informative groups the step trains on (its prompts per step).
        max_rounds: the deepest refill round; flat groups of that round are not replaced.

    Attributes:
        kept: informative groups seen (trained on).
        dropped: flat groups seen (generated, scored, not trained on).
        prompts: prompts generated (every round).
        rounds: the deepest refill round started (0: none).
    """

    target: int
    max_rounds: int
    kept: int = 0
    dropped: int = 0
    prompts: int = 0
    rounds: int = 0
    _round_of: dict[int, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.target < 1:
            raise ValueError(f"target must be >= 1 group, got {self.target}")
        check_max_refill_rounds(self.max_rounds)

    def started(self, shard: int, prompts: int, round_: int) -> None:
        """Record a shard of ``prompts`` prompts with id ``shard`` started in ``round_``.

        Raises:
            ValueError: the shard id was used already.
        """
        if shard in self._round_of:
            raise ValueError(f"shard {shard} was started twice")
        self._round_of[shard] = round_
        self.prompts += prompts
        self.rounds = max(self.rounds, round_)

    def observe(self, shard: int, rewards: torch.Tensor, prompts: int) -> tuple[torch.Tensor, int]:
        """Judge a scored shard.

        Args:
            shard: the shard's id (a started one).
            rewards: ``[prompts * n]`` scorer rewards, ``n`` consecutive per prompt.
            prompts: the shard's prompts.

        Returns:
            ``(keep [prompts * n] bool, replace)``: the rows of its informative groups, and
            how many new prompts the next round must generate (0 past ``max_rounds``).

        Raises:
            ValueError: an unknown shard, or rewards not ``n >= 2`` per prompt.
        """
        if shard not in self._round_of:
            raise ValueError(f"shard {shard} was never started")
        rewards = torch.as_tensor(rewards, dtype=torch.float32).reshape(-1)
        if prompts < 1 or rewards.numel() % prompts or rewards.numel() // prompts < 2:
            raise ValueError(
                f"shard {shard}: {rewards.numel()} rewards for {prompts} prompts "
                "(dynamic sampling needs n >= 2 responses per prompt)"
            )
        keep, flat = dynamic_sampling_filter(rewards, rewards.numel() // prompts)
        self.kept += prompts - flat
        self.dropped += flat
        # Past the deepest round a flat group stays a shortfall (``short``: target - kept).
        return keep, 0 if self._round_of[shard] >= self.max_rounds else flat

    def round_of(self, shard: int) -> int:
        """The refill round a started shard belongs to (0: the step's own prompts)."""
        return self._round_of[shard]

    def metrics(self) -> dict[str, float]:
        """``train/dynamic_sampling_*``: ``kept``, ``dropped``, ``refill_rounds``,
        ``refill_prompts`` (prompts beyond the step's own), ``short`` (groups the batch
        lacks) and ``prompts_per_trained`` (prompts generated per trained prompt; inf
        when none was trained).

        Raises:
            RuntimeError: the counts do not add up (a group lost or counted twice).
        """
        if self.kept + self.dropped != self.prompts:
            raise RuntimeError(
                f"dynamic sampling lost track: {self.prompts} prompts generated but "
                f"{self.kept} kept + {self.dropped} dropped"
            )
        p = "train/dynamic_sampling_"
        return {
            f"{p}kept": float(self.kept),
            f"{p}dropped": float(self.dropped),
            f"{p}refill_rounds": float(self.rounds),
            f"{p}refill_prompts": float(self.prompts - self.target),
            f"{p}short": float(self.target - self.kept),
            f"{p}prompts_per_trained": self.prompts / self.kept if self.kept else float("inf"),
        }


def selection_of(scores: Sequence[Mapping[str, Any]]) -> torch.Tensor | None:
    """``[B]`` bool rows to train on from score items in shard order (their ``"keep"``
    masks concatenated), or ``None`` when no item carries one (no refill: train all).

    Raises:
        RuntimeError: some items carry a mask and others do not.
    """
    masks = [s.get("keep") for s in scores]
    if all(m is None for m in masks):
        return None
    if any(m is None for m in masks):
        raise RuntimeError("some score shards carry a dynamic-sampling mask and others do not")
    return torch.cat([torch.as_tensor(m, dtype=torch.bool).reshape(-1) for m in masks])
