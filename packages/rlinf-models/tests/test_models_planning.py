"""The planning code every app shares (rlinf.models.planning) and the LLM flow's profile
(rlinf.models.llm._plan_profile): pure, no Ray; numbers checked by hand."""

from __future__ import annotations

import math

import pytest
import yaml

from rlinf.core import ConfigError
from rlinf.models.llm._plan_profile import (
    is_auto_placement,
    llm_plan_block,
    llm_profile_from_metrics,
)
from rlinf.models.planning import (
    Plan,
    choose,
    describe,
    merge_device_profiles,
    parse_profile_devices,
    write_plan_files,
)
from rlinf.sched import ComponentProfile, FlowProfile, Topology, predict

# Step 1 is warm-up (ignored); the medians of steps 2-4 are generate 0.6, reward 0.1,
# update 0.4, sync 0.05, step 1.2, so the unexplained 1.2 - 1.15 = 0.05 s is the
# rollout's per-step overhead.
ROWS = [
    {"time/generate": 9.0, "time/reward": 9.0, "time/update": 9.0, "time/weight_sync": 9.0,
     "time/step": 40.0},
    {"time/generate": 0.5, "time/reward": 0.1, "time/update": 0.3, "time/weight_sync": 0.05,
     "time/step": 1.0},
    {"time/generate": 0.6, "time/reward": 0.1, "time/update": 0.4, "time/weight_sync": 0.05,
     "time/step": 1.2},
    {"time/generate": 0.7, "time/reward": 0.2, "time/update": 0.5, "time/weight_sync": 0.06,
     "time/step": 1.4},
]  # fmt: skip


def test_llm_profile_from_metrics_medians_and_overhead():
    p = llm_profile_from_metrics(ROWS)
    assert p.names == ("rollout", "reward", "actor") and p.update == "actor"
    assert p["rollout"].seconds == {1: pytest.approx(0.6)}
    assert p["reward"].seconds == {1: pytest.approx(0.1)}
    assert p["actor"].seconds == {1: pytest.approx(0.4)}
    assert p.weight_sync_s == pytest.approx(0.05)
    assert p["rollout"].overhead_s == pytest.approx(0.05)
    assert p.micro_batches == (1,) and p.overlap_update
    # Collocated on one device: the measured step (1.2 s).
    assert predict(p, dict.fromkeys(p.names, (0,))).seconds == pytest.approx(1.2)
    # rollout+reward on 0, actor on 1 overlapping: max(chain 0.75, update 0.4) + sync 0.05.
    split = {"rollout": (0,), "reward": (0,), "actor": (1,)}
    assert predict(p, split, overlap_update=True).seconds == pytest.approx(0.8)
    assert predict(p, split).seconds == pytest.approx(1.2)


def test_llm_profile_refuses_short_or_incomplete_metrics():
    with pytest.raises(ValueError, match="at least 2 steps"):
        llm_profile_from_metrics(ROWS[:1])
    bad = [ROWS[0], {k: v for k, v in ROWS[1].items() if k != "time/reward"}]
    with pytest.raises(ValueError, match=r"step 2 lacks \['time/reward'\]"):
        llm_profile_from_metrics(bad)


def test_is_auto_placement():
    assert is_auto_placement("auto")
    assert not is_auto_placement({"actor": "0", "rollout": "0", "reward": "0"})
    with pytest.raises(ValueError, match="placement: expected a mapping"):
        is_auto_placement("automatic")
    with pytest.raises(ValueError, match=r"placement\.actor: 'auto' plans every component"):
        is_auto_placement({"actor": "auto", "rollout": "0", "reward": "0"})


def _profile(times: dict[str, float], devices: int) -> FlowProfile:
    return FlowProfile(
        components=tuple(
            ComponentProfile(n, seconds={devices: t}, memory_bytes=1, overhead_s=0.01)
            for n, t in times.items()
        ),
        update="actor",
        device_memory_bytes=2**40,
        weight_sync_s=0.05 * devices,
        overlap_update=True,
    )


def test_merge_device_profiles_caps_components_that_slow_down():
    one = _profile({"rollout": 0.10, "reward": 0.04, "actor": 0.02}, 1)
    two = _profile({"rollout": 0.06, "reward": 0.05, "actor": 0.13}, 2)
    merged = merge_device_profiles({1: one, 2: two})
    assert merged["rollout"].seconds == {1: 0.10, 2: 0.06}
    assert merged["rollout"].max_devices is None
    assert merged["reward"].seconds == {1: 0.04} and merged["reward"].max_devices == 1
    assert merged["actor"].seconds == {1: 0.02} and merged["actor"].max_devices == 1
    # Flow facts come from the one-device reference.
    assert merged.weight_sync_s == 0.05 and merged["actor"].overhead_s == 0.01
    # Rollout fit through both points: a = 0.02, b = 0.08, so 2 devices -> 0.06 s.
    roll2 = predict(merged, {"rollout": (0, 1), "reward": (0,), "actor": (0,)})
    assert roll2.stages[0].seconds == pytest.approx(0.06 + 0.01 + 0.04 + 0.01)
    with pytest.raises(ValueError, match="needs the one-device profile"):
        merge_device_profiles({2: two})
    with pytest.raises(ValueError, match="no 2-device point for rollout"):
        merge_device_profiles({1: one, 2: one})


def test_parse_profile_devices():
    assert parse_profile_devices("2,1", 2) == (1, 2)
    assert parse_profile_devices("1", 4) == (1,)
    with pytest.raises(ConfigError, match="must include 1"):
        parse_profile_devices("2", 2)
    with pytest.raises(ConfigError, match=r"3 is not a device count in 1\.\.2"):
        parse_profile_devices("1,3", 2)
    with pytest.raises(ConfigError, match="comma-separated"):
        parse_profile_devices("1;2", 2)


def _reject_two_actor_ranks(c):
    if c.specs["actor"] == "0-1":
        return "training.backend: 'torch' trains in one process but placement.actor has 2"
    return None


def test_choose_filters_counts_and_records(tmp_path):
    p = llm_profile_from_metrics(ROWS)
    topo = Topology.uniform(1, 2)
    ranked, dropped, examples = choose(p, topo, _reject_two_actor_ranks)
    assert all(r.specs["actor"] != "0-1" for r in ranked)
    assert dropped["training.backend"] >= 1
    assert examples["training.backend"].startswith("training.backend: 'torch'")
    plan = Plan(p, ranked, dropped, examples, "not checked", 1.2, block_of=llm_plan_block)
    # Best: rollout+reward on one slot, actor on the other, overlapping (0.8 s by hand).
    assert plan.chosen.seconds == pytest.approx(0.8)
    assert plan.block() == {
        "placement": {"rollout": "0", "reward": "0", "actor": "1"},
        "runner": {"max_staleness": 1},
    }
    rec = plan.record(top=3)
    assert rec["chosen"] == plan.block() and len(rec["ranking"]) == 3
    assert rec["ranking"][0]["block"] == plan.block()
    lines = describe(plan, top=3)
    assert "measured 1.200 s/iter, predicted 1.200" in lines[2]
    assert "dropped" in lines[1] and "training.backend" in lines[1]
    out, prof = write_plan_files(plan, tmp_path / "p" / "plan.yaml")
    assert yaml.safe_load(out.read_text()) == plan.block()
    assert FlowProfile.from_json(prof.read_text()) == p
    with pytest.raises(ConfigError, match="accepts none of the planner's candidates"):
        choose(p, topo, lambda c: "placement.actor: never")
    assert math.isfinite(plan.chosen.seconds)
