"""Planner profiles: JSON round trip, errors naming the bad field, data-parallel scaling fits."""

from __future__ import annotations

import json

import pytest

from rlinf.sched import ComponentProfile, FlowProfile, ProfileError, ScalingFit, fit_scaling

GiB = 2**30


def profile() -> FlowProfile:
    return FlowProfile(
        components=(
            ComponentProfile("env", {1: 2.0, 2: 1.1}, GiB, overhead_s=0.01),
            ComponentProfile("rollout", {1: 1.0}, 4 * GiB, idle_bytes=GiB, floor_s=0.05),
            ComponentProfile("actor", {1: 3.0, 2: 1.6}, 8 * GiB, max_devices=4),
        ),
        update="actor",
        device_memory_bytes=16 * GiB,
        weight_sync_s=0.1,
        micro_batches=(1, 2, 4),
        overlap_update=True,
    )


def test_json_round_trip_and_chain():
    p = profile()
    back = FlowProfile.from_json(p.to_json())
    assert back == p
    assert back["rollout"].seconds == {1: 1.0} and back["rollout"].resident_bytes == GiB
    assert back["env"].resident_bytes == GiB  # no idle_bytes: keeps its peak
    assert back.chain == ("env", "rollout")
    assert json.loads(p.to_json())["components"][0]["seconds"] == {"1": 2.0, "2": 1.1}


def edited(path: tuple[object, ...], value: object) -> str:
    data = profile().to_dict()
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(data)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("components", 1, "secs"), 1, r"components\[1\]: unknown field\(s\) \['secs'\]"),
        (("components", 0, "memory_bytes"), KeyError, r"components\[0\]: missing .*memory_bytes"),
        (("components", 0, "seconds"), {"x": 1.0}, r"components\[0\]\.seconds: key 'x' is not"),
        (("components", 0, "seconds"), {"2": -1.0}, r"'env': seconds\[2\] must be > 0"),
        (("components", 0, "seconds"), {}, r"'env': seconds needs at least one"),
        (("components", 2, "max_devices"), 0, r"'actor': max_devices must be a positive int"),
        (("components", 1, "idle_bytes"), 5 * GiB, r"'rollout': idle_bytes must be in \[0"),
        (("components", 0, "overhead_s"), float("nan"), r"'env': overhead_s must be a finite"),
        (("components",), [], r"components: a profile needs at least one component"),
        (("version",), 3, r"version: expected one of \[1, 2\], got 3"),
        (("update",), "critic", r"update: 'critic' is not a profiled component"),
        (("micro_batches",), [1, 0], r"micro_batches entry must be a positive int, got 0"),
        (("micro_batches",), 4, r"micro_batches must be a list"),
        (("overlap_update",), "yes", r"overlap_update must be a bool"),
        (("device_memory_bytes",), KeyError, r"profile: missing field\(s\) \['device_memory"),
        (("weight_sync_s",), -0.5, r"weight_sync_s must be >= 0"),
    ],
)
def test_json_errors_name_the_field(path, value, message):
    with pytest.raises(ProfileError, match=message):
        FlowProfile.from_json(edited(path, value))


def test_json_errors_not_json_and_duplicates():
    with pytest.raises(ProfileError, match="profile is not valid JSON"):
        FlowProfile.from_json("{oops")
    with pytest.raises(ProfileError, match="profile must be a JSON object, got list"):
        FlowProfile.from_json("[]")
    data = profile().to_dict()
    data["components"][1]["name"] = "env"
    with pytest.raises(ProfileError, match="component 'env' is profiled twice"):
        FlowProfile.from_dict(data)
    with pytest.raises(ProfileError, match="no profile for component 'critic'"):
        profile()["critic"]


def test_fit_two_points_is_exact():
    # 2.0 = a + b, 1.1 = a + b/2  ->  b = 1.8, a = 0.2; t(4) = 0.2 + 0.45.
    fit = fit_scaling({1: 2.0, 2: 1.1})
    assert fit.serial == pytest.approx(0.2) and fit.parallel == pytest.approx(1.8)
    assert fit.seconds(4) == pytest.approx(0.65)
    assert fit.seconds(1000) == pytest.approx(0.2018)
    assert fit.floor == pytest.approx(0.2)


def test_fit_least_squares_three_points():
    # x = 1/D = (1, .5, .25), t = (4, 2.5, 1.5): mean x = 7/12, mean t = 8/3,
    # Sxt = 23/24, Sxx = 7/24 -> b = 23/7, a = 8/3 - 23/12 = 0.75.
    fit = fit_scaling({1: 4.0, 2: 2.5, 4: 1.5})
    assert fit.parallel == pytest.approx(23 / 7) and fit.serial == pytest.approx(0.75)
    assert fit.seconds(8) == pytest.approx(0.75 + 23 / 56)


def test_fit_one_point_assumes_perfect_scaling_down_to_the_floor():
    fit = fit_scaling({2: 3.0})  # b = 6, a = 0
    assert (fit.serial, fit.parallel) == (0.0, 6.0)
    assert fit.seconds(1) == 6.0 and fit.seconds(3) == 2.0 and fit.seconds(6) == 1.0
    assert fit_scaling({2: 3.0}, floor=1.5).seconds(6) == 1.5


def test_fit_clamps_negative_parts():
    # Super-linear (1.0 -> 0.4): a would be -0.2; through the origin b = 1.2 / 1.25.
    fit = fit_scaling({1: 1.0, 2: 0.4})
    assert fit.serial == 0.0 and fit.parallel == pytest.approx(0.96)
    # Slower with more devices: no parallel part, the mean serial time.
    fit = fit_scaling({1: 1.0, 2: 1.2})
    assert fit.parallel == 0.0 and fit.seconds(8) == pytest.approx(1.1)


def test_fit_bad_points():
    with pytest.raises(ProfileError, match="bad scaling point 0"):
        fit_scaling({0: 1.0})
    with pytest.raises(ProfileError, match="at least one measured point"):
        fit_scaling({})
    with pytest.raises(ValueError, match="devices must be a positive int, got 0"):
        ScalingFit(0.0, 1.0, 0.0).seconds(0)
