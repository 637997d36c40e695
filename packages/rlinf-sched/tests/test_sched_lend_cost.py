"""Lending and wide candidates of the cost model and the search, against hand-computed
seconds (no Ray)."""

from __future__ import annotations

import json

import pytest

from rlinf.sched import (
    ComponentProfile,
    FlowProfile,
    ProfileError,
    Topology,
    analyze,
    evaluate_lending,
    format_ranking,
    lending_speedup,
    overlap_slowdown_from,
    predict,
    predict_wide,
    search,
)

GiB = 2**30


def profile(
    actor_s: float = 1.0,
    actor_wide: float | None = 0.625,
    wide: bool = True,
    slowdown: float = 1.0,
) -> FlowProfile:
    # Chain C = env 0.3 + rollout 0.2 = 0.5 s; update U = actor_s; s = actor_s / actor_wide
    # (1.0 / 0.625 = 1.6); sync W = 0.05. max_devices 1: the layouts are the 2-slot ones.
    return FlowProfile(
        components=(
            ComponentProfile(
                "env", {1: 0.3}, GiB, max_devices=1, wide_seconds=0.25 if wide else None
            ),
            ComponentProfile(
                "rollout", {1: 0.2}, GiB, max_devices=1, wide_seconds=0.15 if wide else None
            ),
            ComponentProfile("actor", {1: actor_s}, GiB, max_devices=1, wide_seconds=actor_wide),
        ),
        update="actor",
        device_memory_bytes=16 * GiB,
        weight_sync_s=0.05,
        overlap_update=True,
        overlap_slowdown=slowdown,
    )


SPLIT = {"env": (0,), "rollout": (0,), "actor": (1,)}


def test_lending_formulas_hand_computed():
    p = profile()
    assert lending_speedup(p) == pytest.approx(1.6)
    layout = analyze(p, SPLIT)
    seq = evaluate_lending(p, layout, 1, False)
    # C + U/s + W = 0.5 + 1.0/1.6 + 0.05
    assert seq.seconds == pytest.approx(1.175)
    assert seq.feasible and seq.chain_s == pytest.approx(0.5) and seq.update_s == 1.0
    ov = evaluate_lending(p, layout, 1, True)
    # C + (U - C)/s + W = 0.5 + 0.5/1.6 + 0.05
    assert ov.seconds == pytest.approx(0.8625)
    assert "lent the chain's devices for its last 0.5 s (speed-up 1.60 measured)" in ov.reason
    assert ov.reason.startswith("env+rollout 0 | actor 1: env+rollout take turns 0.5 s;")


def test_lending_overlap_equals_static_overlap_when_update_is_shorter():
    p = profile(actor_s=0.4, actor_wide=0.25)
    ov = evaluate_lending(p, analyze(p, SPLIT), 1, True)
    assert ov.seconds == pytest.approx(0.55)  # C + 0 + W: the update never gets the slot


def test_wide_candidate_hand_computed():
    w = predict_wide(profile())
    # env 0.25 + rollout 0.15 + actor 0.625 + sync 0.05
    assert w.seconds == pytest.approx(1.075)
    assert w.reason.startswith("env+rollout 0 (actor with env+rollout), 2 devices' compute:")


def test_search_ranks_lending_and_wide_with_static():
    ranked = search(profile(), Topology.uniform(1, 2))
    rows = [
        (r.seconds, dict(r.specs)["actor"], r.overlap_update, r.lending, r.wide) for r in ranked
    ]
    expected = [
        (0.8625, "1", True, True, False),  # lend overlap
        (1.05, "1", True, False, False),  # static overlap: max(0.5, 1.0) + 0.05
        (1.075, "0", False, False, True),  # wide
        (1.175, "1", False, True, False),  # lend sequential
        (1.25, "1", True, False, False),  # env 0 | rollout+actor 1: max(0.5, 1.0 + 0.2) + W
        (1.35, "0", True, False, False),  # env+actor 0 | rollout 1: max(0.5, 1.0 + 0.3) + W
    ]
    assert [(pytest.approx(s), a, o, lend, w) for s, a, o, lend, w in expected] == rows[:6]
    # The three sequential static layouts follow at C + U + W = 1.55.
    assert [r.seconds for r in ranked[6:]] == pytest.approx([1.55] * 3)
    assert ranked[0].to_config()["lending"] is True
    table = format_ranking(ranked, top=3).splitlines()
    assert table[1].split()[:5] == ["1", "0.863", "1", "yes", "lend"]
    assert table[3].split()[:5] == ["3", "1.075", "1", "no", "wide"]


def test_search_drops_lending_that_does_not_pay():
    # s = 1.0 / 2.0 = 0.5: a second thread halves the update's speed.
    ranked = search(profile(actor_wide=2.0), Topology.uniform(1, 2))
    assert not any(r.lending for r in ranked)
    # No wide point for the update: no lending and no wide candidate at all.
    ranked = search(profile(actor_wide=None), Topology.uniform(1, 2))
    assert not any(r.lending or r.wide for r in ranked)
    # Chain components without wide points: lending yes, wide no.
    ranked = search(profile(wide=False), Topology.uniform(1, 2))
    assert any(r.lending for r in ranked) and not any(r.wide for r in ranked)


def test_no_lending_or_wide_across_nodes():
    ranked = search(profile(), Topology.uniform(2, 1))
    assert ranked and not any(r.lending or r.wide for r in ranked)


def test_lending_errors_name_the_cause():
    p = profile()
    with pytest.raises(ValueError, match="lending needs actor on devices of its own; it shares"):
        evaluate_lending(p, analyze(p, {"env": (0,), "rollout": (1,), "actor": (1,)}), 1, True)
    no_wide = profile(actor_wide=None)
    with pytest.raises(ProfileError, match="lending needs actor's wide_seconds"):
        evaluate_lending(no_wide, analyze(no_wide, SPLIT), 1, False)
    with pytest.raises(
        ProfileError, match=r"wide candidate needs wide_seconds of \['env', 'rollout'\]"
    ):
        predict_wide(profile(wide=False))


def test_profile_wide_seconds_round_trip_and_version_1():
    p = profile()
    assert FlowProfile.from_json(p.to_json()) == p
    data = p.to_dict()
    assert data["version"] == 2 and data["components"][2]["wide_seconds"] == 0.625
    # A version-1 file (before wide points) reads with wide_seconds None.
    data["version"] = 1
    for c in data["components"]:
        del c["wide_seconds"]
    del data["overlap_slowdown"]
    old = FlowProfile.from_json(json.dumps(data))
    assert all(c.wide_seconds is None for c in old.components)
    assert old.overlap_slowdown == 1.0
    with pytest.raises(ProfileError, match=r"'actor': wide_seconds must be > 0, got 0"):
        ComponentProfile("actor", {1: 1.0}, GiB, wide_seconds=0)


def test_overlap_slowdown_hand_computed():
    p = profile(slowdown=1.4)
    # Static overlap, env+rollout 0 | actor 1: max(0.5, 1.0) + 0.4 * min(0.5, 1.0) + 0.05.
    ov = predict(p, SPLIT, overlap_update=True)
    assert ov.seconds == pytest.approx(1.25)
    assert "+ 0.2 s sharing the host (x1.40)" in ov.reason
    # Lending overlap: 0.5 + 0.4 * 0.5 + (1.0 - 0.5) / 1.6 + 0.05.
    assert evaluate_lending(p, analyze(p, SPLIT), 1, True).seconds == pytest.approx(1.0625)
    # env 0 | rollout+actor 1: only env runs beside the update's devices (busy 1.0 + 0.2):
    # 1.2 + 0.4 * 0.3 + 0.05.
    mixed = {"env": (0,), "rollout": (1,), "actor": (1,)}
    assert predict(p, mixed, overlap_update=True).seconds == pytest.approx(1.37)
    # All on one device: nothing runs beside the update, no slowdown: 1.0 + 0.5 + 0.05.
    one = dict.fromkeys(("env", "rollout", "actor"), (0,))
    assert predict(p, one, overlap_update=True).seconds == pytest.approx(1.55)
    # Without overlap the term never applies: 0.5 + 1.0 + 0.05.
    assert predict(p, SPLIT).seconds == pytest.approx(1.55)


def test_overlap_slowdown_from_measurement():
    assert overlap_slowdown_from(1.3, 0.5, 1.0, 0.1) == pytest.approx(1.4)
    assert overlap_slowdown_from(1.6, 1.0, 0.5, 0.1) == pytest.approx(2.0)  # sequential
    assert overlap_slowdown_from(0.9, 0.5, 1.0, 0.1) == 1.0  # faster than the bound: noise
    with pytest.raises(ValueError, match=r"needs positive seconds, got measured 1\.0, chain 0"):
        overlap_slowdown_from(1.0, 0.0, 1.0, 0.1)
    with pytest.raises(ProfileError, match=r"overlap_slowdown must be >= 1, got 0\.9"):
        profile(slowdown=0.9)
    p = profile(slowdown=1.4)
    assert FlowProfile.from_json(p.to_json()).overlap_slowdown == 1.4
