"""Config loading, registry, timers, metric logger, batch split/concat, wire encoding."""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import time
from collections.abc import Mapping
from typing import ClassVar, Literal

import pytest
import torch

from rlinf.core import (
    ConfigError,
    MetricLogger,
    Registry,
    RegistryError,
    Timers,
    concat_batches,
    config_to_dict,
    load_config,
    split_batch,
)
from rlinf.core._wire import decode_skeleton, encode, rebuild


class Agg(enum.Enum):
    TOKEN = "token"
    SEQ = "seq"


@dataclasses.dataclass(frozen=True)
class AlgoConfig:
    clip_low: float = 0.2
    clip_high: float = 0.2
    group_size: int = 8
    agg: Agg = Agg.TOKEN
    kl: Literal["k1", "k3"] = "k3"

    RENAMED_KEYS: ClassVar[Mapping[str, str]] = {"kl_kind": "kl"}


@dataclasses.dataclass(frozen=True)
class RunConfig:
    name: str
    algo: AlgoConfig = dataclasses.field(default_factory=AlgoConfig)
    devices: tuple[int, ...] = (0,)
    seed: int | None = None


def test_yaml_preset_with_dotted_overrides(tmp_path):
    preset = tmp_path / "preset.yaml"
    preset.write_text("name: math\nalgo:\n  clip_high: 0.25\n  agg: seq\ndevices: [0, 1]\n")
    cfg = load_config(RunConfig, preset, ["algo.clip_high=0.28", "algo.group_size=16", "seed=3"])
    assert cfg == RunConfig("math", AlgoConfig(0.2, 0.28, 16, Agg.SEQ, "k3"), (0, 1), 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "x"  # type: ignore[misc]
    assert config_to_dict(cfg)["algo"] == {
        "clip_low": 0.2,
        "clip_high": 0.28,
        "group_size": 16,
        "agg": "seq",
        "kl": "k3",
    }
    assert load_config(RunConfig, {"name": "a"}, ["algo.clip_low=1"]).algo.clip_low == 1.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["algo.clip_hgih=0.3"],
            r"unknown key .algo.clip_hgih. in AlgoConfig; valid keys: agg, clip_high, ",
        ),
        (["algo.group_size=abc"], r"algo.group_size: expected int, got str 'abc'"),
        (["algo.group_size=2.5"], r"algo.group_size: expected int, got float 2.5"),
        (["algo.clip_high=true"], r"algo.clip_high: expected float, got bool True"),
        (["algo.agg=mean"], r"algo.agg: expected one of \['token', 'seq'\], got 'mean'"),
        (["algo.kl=k2"], r"algo.kl: expected one of \['k1', 'k3'\], got 'k2'"),
        (["algo.kl_kind=k1"], r"'algo.kl_kind' was renamed to 'algo.kl' \(AlgoConfig\)"),
        (["devices=[0, x]"], r"devices\[1\]: expected int"),
        (["name.sub=1"], r"override name.sub: name is a value, not a section"),
        (["bogus"], r"override 'bogus' must look like 'key.sub=value'"),
    ],
)
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(RunConfig, {"name": "run"}, overrides)


def test_config_missing_required_key():
    with pytest.raises(ConfigError, match="missing required key 'name'"):
        load_config(RunConfig, None)


def test_registry_eager_lazy_duplicates_and_misses():
    reg: Registry[object] = Registry("policy loss")

    @reg.register("ppo")
    def ppo():
        return 1

    reg.register("sqrt", "math:sqrt")
    reg.register(
        "engine", "rlinf_missing_engine_mod:Engine", install_hint="pip install 'rlinf-models[vllm]'"
    )
    assert reg.get("ppo") is ppo
    assert reg.get("sqrt")(9.0) == 3.0
    assert reg.names() == ["engine", "ppo", "sqrt"] and "ppo" in reg and len(reg) == 3
    with pytest.raises(RegistryError, match="policy loss 'ppo' is already registered"):
        reg.register("ppo", ppo)
    with pytest.raises(
        RegistryError, match=r"unknown policy loss 'ppp'; valid names: engine, ppo, sqrt"
    ):
        reg.get("ppp")
    with pytest.raises(
        RegistryError, match=r"needs module 'rlinf_missing_engine_mod'.*rlinf-models\[vllm\]"
    ):
        reg.get("engine")
    with pytest.raises(RegistryError, match="must be 'module:attr'"):
        reg.register("bad", "no_colon")


def test_timers_accumulate_under_time_prefix():
    timers = Timers()
    with timers("rollout"):
        time.sleep(0.05)
    with timers("rollout"):
        time.sleep(0.05)
    timers.add("train", 1.5)
    m = timers.pop()
    assert set(m) == {"time/rollout", "time/train"}
    assert 0.09 <= m["time/rollout"] < 1.0 and m["time/train"] == 1.5
    assert timers.metrics() == {}


def test_metric_logger_writes_tensorboard_and_jsonl(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with MetricLogger(tmp_path) as logger:
        logger.log({"train/loss": 0.5, "time/step": torch.tensor(2.0)}, step=1)
        logger.log({"train/loss": 0.25}, step=2)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows == [
        {"step": 1, "train/loss": 0.5, "time/step": 2.0},
        {"step": 2, "train/loss": 0.25},
    ]
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(1, 0.5), (2, 0.25)]
    with pytest.raises(ValueError, match=r"unknown metric backend\(s\) \['mlflow'\]"):
        MetricLogger(tmp_path, backends=["mlflow"])


def test_wandb_backend_is_optional(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match=r"pip install 'rlinf-core\[wandb\]'"):
        MetricLogger(tmp_path, backends=["wandb"])


def test_split_and_concat_batches():
    assert split_batch(list(range(5)), 3) == [[0, 1], [2, 3], [4]]
    t = torch.arange(10).reshape(5, 2)
    parts = split_batch(t, 2)
    assert [p.shape[0] for p in parts] == [3, 2]
    assert torch.equal(concat_batches(parts), t)
    d = {"a": torch.arange(4), "b": [1, 2, 3, 4]}
    assert concat_batches(split_batch(d, 3))["b"] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="different lengths"):
        split_batch({"a": [1], "b": [1, 2]}, 2)


def test_wire_keeps_tensors_out_of_the_header():
    big = torch.randn(256, 1024)
    obj = {"w": big, "same": big, "list": [torch.ones(2, dtype=torch.int8), "s"]}
    header, tensors = encode(obj)
    assert len(tensors) == 2 and len(header) < 1000
    skeleton, metas = decode_skeleton(header)
    assert metas[0].shape == (256, 1024) and metas[0].dtype == "float32"
    back = rebuild(skeleton, [t.clone() for t in tensors])
    assert torch.equal(back["w"], big) and back["w"] is back["same"]
    assert back["list"][1] == "s"
