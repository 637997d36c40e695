"""StepLending's driver side: which slots go to the actor's update of a step, and when
(the decisions are rlinf.sched.SlotLender's; the actor group here records the calls)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from rlinf.core import validate_placement
from rlinf.models.llm import GenerationConfig, LLMUpdaterConfig, StepLending, check_llm_dynamic
from rlinf.sched import Topology

COMPONENTS = ("actor", "rollout", "reward")


def _placement(actor: str, rollout: str = "0", reward: str = "0"):
    spec = {"actor": actor, "rollout": rollout, "reward": reward}
    return validate_placement(spec, Topology.uniform(1, 2), COMPONENTS)


@dataclass
class _Done:
    value: Any = None

    def wait(self, timeout: float | None = None) -> list[Any]:
        return [self.value]


@dataclass
class _RecordingGroup:
    """Records the calls the lending makes on the actor group (one rank)."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def call(self, method: str, *args: Any) -> _Done:
        self.calls.append((method, *args))
        return _Done(True)


@dataclass
class _Future:
    finished: bool

    def done(self) -> bool:
        return self.finished


@dataclass
class _Ahead:
    rollout: _Future
    reward: _Future


def test_lends_the_rollout_slot_once_the_step_is_in():
    actor = _RecordingGroup()
    lending = StepLending(_placement("1"), actor, timeout_s=5.0)  # type: ignore[arg-type]
    lending.begin(3)
    assert actor.calls == []  # nothing idle while the step's rollouts run
    assert lending.lenders_done(3)
    # Rollout and reward share slot 0: one slot, lent once, for update phase 3.
    assert actor.calls == [("lend_slots", 3, 1)]
    out = lending.end(3, {"train/loss": 0.5, "sched/actor_lent_s": 0.25}, lent=True)
    assert [d.action for d in lending.decisions] == ["lend", "recall"]
    assert out["train/loss"] == 0.5
    assert out["sched/lent_slots"] == 1.0 and out["sched/decisions"] == 2.0
    assert out["sched/lent_update_s"] == 0.25 and "sched/actor_lent_s" not in out
    assert out["sched/lend_s"] >= 0.0


def test_no_loan_while_a_step_started_ahead_still_generates():
    actor = _RecordingGroup()
    lending = StepLending(_placement("1"), actor, timeout_s=5.0)  # type: ignore[arg-type]
    lending.begin(0)
    running = _Ahead(_Future(False), _Future(False))
    assert not lending.lenders_done(0, [running])
    out = lending.end(0, {}, lent=False)
    assert actor.calls == [] and lending.decisions == []
    assert out["sched/lent_slots"] == 0.0 and out["sched/decisions"] == 0.0
    # The next step: the one started ahead is done, so the slot is lent again.
    lending.begin(1)
    assert lending.lenders_done(1, [_Ahead(_Future(True), _Future(True))])
    assert actor.calls == [("lend_slots", 1, 1)]
    lending.end(1, {}, lent=True)


def _topology(nodes: int = 1, per_node: int = 2, device_type: str = "cpu") -> Topology:
    return Topology.uniform(nodes, per_node, device_type=device_type)


@pytest.mark.parametrize(
    ("spec", "topology", "message"),
    [
        ("0 0 0", _topology(), r"placement\.actor shares slots \[0\] with rollout / reward"),
        ("0-1 0-1 0-1", _topology(), "one-rank actor; placement.actor has 2 ranks"),
        ("1 0 0", _topology(nodes=2, per_node=1), r"run on nodes \[0, 1\]"),
        ("1 0 0", _topology(device_type="gpu"), "the placement's devices are 'gpu'"),
    ],
)
def test_check_names_the_cause(spec, topology, message):
    actor, rollout, reward = spec.split()
    placement = validate_placement(
        {"actor": actor, "rollout": rollout, "reward": reward}, topology, COMPONENTS
    )
    with pytest.raises(ValueError, match=message):
        check_llm_dynamic(placement, GenerationConfig(), LLMUpdaterConfig())
    # The lending itself refuses the same placements (not the GPU one: a device check).
    if "gpu" not in message:
        with pytest.raises(ValueError, match=message):
            StepLending(placement, _RecordingGroup(), timeout_s=1.0)  # type: ignore[arg-type]
