"""The planner's side of the embodied app without Ray: the profile from a metrics file,
the pipeline-stage options, the app's filter over the search's candidates, and the
``placement: auto`` config errors (before Ray starts)."""

from __future__ import annotations

import json

import pytest

from rlinf.apps.embodied._config import check_run, load_embodied_config
from rlinf.apps.embodied._plan import apply_plan, choose, plan_facts
from rlinf.apps.embodied._plan_profile import (
    UNCHECKED_MEMORY,
    MemoryFacts,
    PlanFacts,
    micro_batch_options,
    profile_from_metrics,
)
from rlinf.core import ConfigError, probe_cli, read_metrics
from rlinf.sched import ComponentProfile, FlowProfile, Topology

GiB = 2**30

# Iteration 1 is warm-up (ignored); the medians of iterations 2-4 are hand-computed below.
ROWS = [
    {"time/env_step": 9.0, "time/rollout_infer": 9.0, "time/rollout": 30.0,
     "time/update": 9.0, "time/weight_sync": 9.0, "time/iteration": 50.0},
    {"time/env_step": 1.0, "time/rollout_infer": 0.5, "time/rollout": 2.0,
     "time/update": 3.0, "time/weight_sync": 0.1, "time/iteration": 5.1},
    {"time/env_step": 1.2, "time/rollout_infer": 0.4, "time/rollout": 2.2,
     "time/update": 2.0, "time/weight_sync": 0.3, "time/iteration": 4.5},
    {"time/env_step": 0.8, "time/rollout_infer": 0.6, "time/rollout": 1.6,
     "time/update": 4.0, "time/weight_sync": 0.2, "time/iteration": 5.8},
]  # fmt: skip


def test_profile_from_hand_written_metrics(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": 8 * i, **r}) + "\n" for i, r in enumerate(ROWS)))
    memory = MemoryFacts({"env": GiB, "rollout": 2 * GiB, "actor": 3 * GiB}, 16 * GiB, "measured")
    profile = profile_from_metrics(read_metrics(path), PlanFacts((1, 2), True, memory))
    # medians: env 1.0, infer 0.5, rollout 2.0 -> exchange 2.0 - 1.0 - 0.5 = 0.5, half on
    # each side; update 3.0; sync 0.2.
    expected = FlowProfile(
        components=(
            ComponentProfile("env", {1: 1.0}, memory_bytes=GiB, overhead_s=0.25),
            ComponentProfile("rollout", {1: 0.5}, memory_bytes=2 * GiB, overhead_s=0.25),
            ComponentProfile("actor", {1: 3.0}, memory_bytes=3 * GiB),
        ),
        update="actor",
        device_memory_bytes=16 * GiB,
        weight_sync_s=0.2,
        micro_batches=(1, 2),
        overlap_update=True,
    )
    assert profile == expected
    assert profile.to_json() == expected.to_json()


def test_profile_without_memory_and_bad_rows():
    unchecked = PlanFacts((1,), False, MemoryFacts({}, 1, "not checked"))
    profile = profile_from_metrics(ROWS, unchecked)
    assert profile.device_memory_bytes == UNCHECKED_MEMORY
    assert [c.memory_bytes for c in profile.components] == [1, 1, 1]
    with pytest.raises(ValueError, match="at least 2 iterations"):
        profile_from_metrics(ROWS[:1], unchecked)
    broken = [ROWS[0], {k: v for k, v in ROWS[1].items() if k != "time/update"}]
    with pytest.raises(ValueError, match=r"iteration 2 lacks \['time/update'\]"):
        profile_from_metrics(broken, unchecked)


def test_micro_batch_options():
    assert micro_batch_options(8) == (1, 2, 4, 8)
    assert micro_batch_options(6) == (1, 2, 3, 6)
    assert micro_batch_options(64) == (1, 2, 4, 8)  # capped at MAX_STAGES
    assert micro_batch_options(1) == (1,)


def test_choose_keeps_only_what_the_app_accepts():
    # 6 envs on a 4-slot node: env workers must split 6 envs x stages evenly.
    cfg = load_embodied_config("cartpole", ["env.num_envs=6", "cluster.devices=4"])
    facts = plan_facts(cfg, MemoryFacts({}, 1, "not checked"))
    assert facts.micro_batches == (1, 2, 3, 6) and facts.overlap_update
    profile = profile_from_metrics(ROWS, facts)
    topology = Topology.uniform(1, 4)
    ranked, dropped, examples = choose(cfg, profile, topology)
    assert ranked and dropped["env.num_envs"] > 0
    assert "cannot be split over" in examples["env.num_envs"]
    assert [r.seconds for r in ranked] == sorted(r.seconds for r in ranked)
    for r in ranked:
        planned = apply_plan(cfg, r)
        placement = check_run(planned, topology)  # raises if the app rejects it
        env_links = placement["env"].world_size * r.micro_batches
        assert placement["rollout"].world_size <= env_links


def test_off_policy_is_not_planned():
    cfg = load_embodied_config("sac_pendulum")
    with pytest.raises(ConfigError, match="off-policy"):
        plan_facts(cfg, MemoryFacts({}, 1, ""))


BAD = {
    ("train", "cartpole", "placement=automatic"): "placement: expected a mapping component "
    "-> devices or 'auto', got 'automatic'",
    ("train", "cartpole", "placement.actor=auto"): "placement.actor: 'auto' plans every "
    "component at once",
    ("train", "cartpole", "placement=auto", "placement.actor=1"): "override placement.actor: "
    "placement is a value, not a section",
    ("train", "sac_pendulum", "placement=auto"): "placement: 'auto' plans on-policy runs",
    ("plan", "sac_pendulum"): "plan: algo.name=sac is off-policy",
    ("plan", "cartpole", "--iterations", "1"): "--iterations must be an int >= 2",
}


def test_auto_config_errors_fail_before_ray(tmp_path):
    runs = tmp_path / "runs"
    argvs = [
        [cmd, "--config", preset, f"runner.runs_root={runs}", *rest] for cmd, preset, *rest in BAD
    ]
    probes = probe_cli("rlinf.apps.embodied.cli", argvs)
    for probe, message in zip(probes, BAD.values(), strict=True):
        assert (probe.code, probe.started_ray) == (2, False), probe.stderr
        assert probe.stderr.startswith(f"rlinf-embodied: error: {message}"), probe.stderr
    assert not runs.exists()


def test_resume_refuses_auto(tmp_path):
    from rlinf.apps.embodied._train import _load_resumed
    from rlinf.core import write_config

    path = write_config(load_embodied_config("cartpole"), tmp_path)
    assert _load_resumed(path, ["placement.actor=1"]).placement["actor"] == 1
    with pytest.raises(ConfigError, match="plans new runs only; a resumed run keeps"):
        _load_resumed(path, ["placement=auto"])


def test_second_device_count_reference_is_checked_before_ray():
    from rlinf.apps.embodied._config import reference_config
    from rlinf.apps.embodied._plan import plan

    cfg = load_embodied_config("cartpole", ["env.num_envs=3"])
    ref = reference_config(cfg, 2, devices=2)
    assert dict(ref.placement) == {"actor": "0-1", "rollout": "0-1", "env": "0-1"}
    # 3 envs do not split over 2 env workers: refused before any reference run starts.
    with pytest.raises(ConfigError, match=r"reference run on 2 device\(s\) is refused: env"):
        plan(cfg, 2, (1, 2))
    profile = profile_from_metrics(ROWS, PlanFacts((1,), False, MemoryFacts({}, 1, "")), 2)
    assert set(profile["actor"].seconds) == {2}


def test_auto_profiles_two_device_counts_when_the_app_accepts_them():
    from rlinf.apps.embodied._plan import auto_profile_devices

    assert auto_profile_devices(load_embodied_config("cartpole", ["env.num_envs=4"])) == (1, 2)
    assert auto_profile_devices(load_embodied_config("cartpole", ["env.num_envs=3"])) == (1,)


def test_wide_point_gives_lending_and_wide_candidates_the_app_accepts():
    from rlinf.apps.embodied._plan import plan_block, wants_wide, with_wide_point

    cfg = load_embodied_config("cartpole", ["env.num_envs=4", "runner.torch_threads=1"])
    assert wants_wide(cfg)  # CPU slots, 2 on node 0, PPO
    assert not wants_wide(load_embodied_config("sac_pendulum"))
    facts = plan_facts(cfg, MemoryFacts({}, 1, "not checked"))
    # The wide reference run: the same, with the update twice as fast (median 1.5 s).
    wide_rows = [{**r, "time/update": r["time/update"] / 2} for r in ROWS]
    profile = with_wide_point(
        profile_from_metrics(ROWS, facts), profile_from_metrics(wide_rows, facts)
    )
    assert [c.wide_seconds for c in profile.components] == [1.0, 0.5, 1.5]
    ranked, _, _ = choose(cfg, profile, Topology.uniform(1, 2))
    best = ranked[0]
    # env+rollout 0 | actor 1, overlapped, lent: chain C = (1.0 + 0.25) + (0.5 + 0.25) = 2.0,
    # U = 3.0, s = 3.0 / 1.5 = 2: C + (U - C) / s + W = 2.0 + 0.5 + 0.2 (static overlap: 3.2).
    assert best.lending and best.overlap_update and best.seconds == pytest.approx(2.7)
    block = plan_block(best, cfg)
    assert block == {
        "placement": {"env": "0", "rollout": "0", "actor": "1"},
        "runner": {"pipeline_stages": 1, "overlap_update": True},
        "scheduler": {"dynamic": True},
    }
    assert apply_plan(cfg, best).scheduler.dynamic
    wide = next(r for r in ranked if r.wide)
    # all on slot 0 at 2 threads: 1.0 + 0.25 + 0.5 + 0.25 + 1.5 + 0.2
    assert wide.seconds == pytest.approx(3.7)
    assert plan_block(wide, cfg)["runner"]["torch_threads"] == 2
    planned = apply_plan(cfg, wide)
    assert planned.runner.torch_threads == 2 and not planned.scheduler.dynamic
    check_run(planned, Topology.uniform(1, 2))
    with pytest.raises(ValueError, match="a wide candidate's block needs the config"):
        plan_block(wide)


def test_overlap_slowdown_from_the_overlapped_reference():
    from rlinf.apps.embodied._plan import overlap_reference, with_overlap_slowdown
    from rlinf.sched import predict

    cfg = load_embodied_config("cartpole", ["env.num_envs=4"])
    ref = overlap_reference(cfg, 3)
    assert ref.placement == {"env": "0", "rollout": "0", "actor": "1"}
    assert ref.runner.overlap_update and ref.runner.pipeline_stages == 1
    check_run(ref, Topology.uniform(1, 2))
    profile = profile_from_metrics(ROWS, plan_facts(cfg, MemoryFacts({}, 1, "not checked")))
    # Overlapped iterations: 9.0 (warm-up), then median 4.0 s. Alone: chain 2.0 (env 1.0 +
    # rollout 0.5 + overheads 0.5), update 3.0, sync 0.2 -> f = 1 + (4.0 - 0.2 - 3.0) / 2.0.
    rows = [{"time/iteration": t} for t in (9.0, 4.0, 3.8, 4.2)]
    slowed = with_overlap_slowdown(profile, rows)
    assert slowed.overlap_slowdown == pytest.approx(1.4)
    split = {"env": (0,), "rollout": (0,), "actor": (1,)}
    # The model now predicts the measured overlapped iteration: 3.0 + 0.4 * 2.0 + 0.2.
    assert predict(slowed, split, overlap_update=True).seconds == pytest.approx(4.0)
    assert predict(profile, split, overlap_update=True).seconds == pytest.approx(3.2)
