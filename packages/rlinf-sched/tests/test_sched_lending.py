"""SlotLender: hand-written event sequences and the decisions they must give."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rlinf.sched import LendDecision, LendError, SchedulerSection, SlotLender


def overlapped() -> SlotLender:
    """The embodied overlapped flow on 2 slots: env + rollout on 0, actor on 1."""
    return SlotLender({"env": [0], "rollout": [0], "actor": [1]}, borrowers=["actor"])


def test_rollout_done_first_lends_its_slot_until_the_update_ends() -> None:
    lender = overlapped()
    assert lender.start("actor", 0, 0.0) == []
    assert lender.start("env", 0, 0.0) == []
    assert lender.start("rollout", 0, 0.0) == []
    assert lender.need("actor", 0, 0.1) == []  # slot 0 still busy
    assert lender.done("env", 0, 1.0) == []  # rollout still runs on slot 0
    lent = lender.done("rollout", 0, 1.5)
    assert lent == [LendDecision("lend", "env", "actor", (0,), 0, 1.5, "rollout done")]
    assert lender.leases == (("env", "actor", (0,)),)
    back = lender.done("actor", 0, 4.0)
    assert back == [LendDecision("recall", "env", "actor", (0,), 0, 4.0, "actor done")]
    assert lender.leases == ()
    assert lender.take_metrics() == {
        "sched/lent_slots": 1.0,
        "sched/lend_s": 2.5,
        "sched/decisions": 2.0,
    }
    # reset after taking
    assert lender.take_metrics()["sched/decisions"] == 0.0


def test_update_done_first_lends_nothing() -> None:
    lender = overlapped()
    for c in ("actor", "env", "rollout"):
        lender.start(c, 3, 0.0)
    lender.need("actor", 3, 0.0)
    assert lender.done("actor", 3, 1.0) == []
    assert lender.done("env", 3, 2.0) == []
    assert lender.done("rollout", 3, 2.0) == []  # nobody needs slot 0 or 1
    assert lender.take_metrics()["sched/lent_slots"] == 0.0


def test_lender_starting_again_recalls_before_it_runs() -> None:
    lender = SlotLender({"rollout": [0, 1], "actor": [2, 3]}, borrowers=["actor"])
    lender.start("actor", 0, 0.0)
    lender.need("actor", 0, 0.0)
    lender.start("rollout", 1, 0.0)
    assert lender.done("rollout", 1, 2.0)[0].slots == (0, 1)
    # max_staleness: the next generation starts while the update still runs
    back = lender.start("rollout", 2, 3.25)
    assert back == [LendDecision("recall", "rollout", "actor", (0, 1), 2, 3.25, "rollout starts")]
    assert lender.done("actor", 0, 5.0) == []  # nothing left to recall
    assert lender.take_metrics()["sched/lend_s"] == pytest.approx(1.25)


def test_need_after_idle_lends_at_once_and_priority_decides() -> None:
    lender = SlotLender(
        {"reward": [0], "rollout": [1], "actor": [2], "critic": [3]},
        borrowers=["critic", "actor"],
    )
    for c in ("reward", "rollout", "actor", "critic"):
        lender.start(c, 0, 0.0)
    lender.done("reward", 0, 1.0)  # idle, nobody needs it yet
    assert lender.need("actor", 0, 1.5) == [
        LendDecision("lend", "reward", "actor", (0,), 0, 1.5, "actor needs slots")
    ]
    lender.need("critic", 0, 1.6)  # nothing idle left
    # actor done: its borrowed slot and its own slot go to the critic
    out = lender.done("actor", 0, 2.0)
    assert [(d.action, d.lender, d.borrower, d.slots) for d in out] == [
        ("recall", "reward", "actor", (0,)),
        ("lend", "reward", "critic", (0,)),
        ("lend", "actor", "critic", (2,)),
    ]


def test_shared_slot_is_idle_only_when_every_owner_is_done() -> None:
    lender = SlotLender({"env": [0, 1], "rollout": [1], "actor": [2]}, borrowers=["actor"])
    for c in ("env", "rollout", "actor"):
        lender.start(c, 0, 0.0)
    lender.need("actor", 0, 0.0)
    out = lender.done("env", 0, 1.0)
    assert [(d.lender, d.slots) for d in out] == [("env", (0,))]  # slot 1: rollout runs
    out = lender.done("rollout", 0, 2.0)
    # a shared slot is lent in the name of its first owner in the lender's order
    assert [(d.lender, d.slots) for d in out] == [("env", (1,))]
    # env starts again: slot 1 is its too, so both leases touching 0 or 1 come back
    out = lender.start("env", 1, 3.0)
    assert sorted(d.slots for d in out) == [(0,), (1,)]
    assert all(d.action == "recall" for d in out)


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([("done", "actor", 0, 1.0)], "'actor' reports step 0 done but is not running it"),
        ([("start", "gpu", 0, 0.0)], "unknown component 'gpu'; known: ['actor', 'env', 'rollout']"),
        ([("start", "actor", 0, 0.0), ("start", "actor", 1, 0.5)], "still runs"),
        ([("start", "actor", 0, 1.0), ("need", "actor", 0, 0.5)], "is before the last one"),
        ([("start", "env", 0, 0.0), ("need", "env", 0, 0.1)], "'env' is not a borrower"),
        ([("start", "actor", 0, 0.0), ("need", "actor", 1, 0.1)], "is not running it"),
    ],
)
def test_bad_events_name_the_cause(events: list[tuple], message: str) -> None:
    lender = overlapped()
    with pytest.raises(LendError, match=message.replace("[", r"\[").replace("]", r"\]")):
        for kind, component, step, at in events:
            getattr(lender, kind)(component, step, at)


def test_bad_construction() -> None:
    with pytest.raises(LendError, match=r"borrowers \['critic'\] are not components"):
        SlotLender({"actor": [0]}, borrowers=["critic"])
    with pytest.raises(LendError, match="component 'env' owns no slot"):
        SlotLender({"actor": [0], "env": []}, borrowers=["actor"])
    with pytest.raises(LendError, match=r"scheduler\.dynamic must be true or false, got 'yes'"):
        SchedulerSection(dynamic="yes")  # type: ignore[arg-type]


def test_pure_python() -> None:
    code = (
        "import sys; from rlinf.sched import SlotLender, SchedulerSection; "
        "print(sorted({'ray', 'torch', 'numpy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert SchedulerSection().dynamic is False
