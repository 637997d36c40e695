"""``rlinf-embodied plan`` and ``placement: auto`` end to end on CartPole (tiny sizes)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from rlinf.apps.embodied._config import load_embodied_config
from rlinf.apps.embodied.cli import main
from rlinf.core import read_metrics
from rlinf.sched import FlowProfile

TINY = ["runner.horizon=16", "env.num_envs=4"]
ROW = re.compile(
    r"^\s*1\s+(?P<s>[\d.]+)\s+(?P<mb>\d+)\s+(?P<ov>yes|no)\s+(?P<sched>static|lend|wide)\s+"
    r"(?P<reason>.*)$"
)


def _layout(reason: str) -> dict[str, str]:
    """Component -> devices from a table reason's layout, e.g. ``"env+rollout 0 | actor 1"``
    or ``"env 0 | rollout 1 (actor with env)"``."""
    layout = reason.split(":")[0]
    specs: dict[str, str] = {}
    with_part = re.search(r" \((\w+) with ([\w+]+)\)$", layout)
    if with_part:
        layout = layout[: with_part.start()]
    for group in layout.split(" | "):
        names, devices = group.rsplit(" ", 1)
        specs.update(dict.fromkeys(names.split("+"), devices))
    if with_part:
        specs[with_part.group(1)] = specs[with_part.group(2).split("+")[0]]
    return specs


# A reference run plus the search (~30 s on a quiet machine): slow. The quick suite keeps
# the profile, the filtering by the app's checks and the CLI's config errors
# (test_embodied_plan_profile.py, no Ray).
@pytest.mark.slow
def test_plan_prints_a_table_and_writes_the_block(ray_cluster, tmp_path, capsys):
    out = tmp_path / "plan.yaml"
    args = ["plan", "--config", "cartpole", "--iterations", "3", "--out", str(out)]
    assert main([*args, *TINY]) == 0
    printed = capsys.readouterr().out
    first = next(m for line in printed.splitlines() if (m := ROW.match(line)))
    block = yaml.safe_load(out.read_text())
    # The table's first row is the block written, and the app accepts it.
    assert _layout(first["reason"]) == block["placement"]
    assert int(first["mb"]) == block["runner"]["pipeline_stages"]
    assert (first["ov"] == "yes") == block["runner"]["overlap_update"]
    assert (first["sched"] == "lend") == block["scheduler"]["dynamic"]
    assert (first["sched"] == "wide") == ("torch_threads" in block["runner"])
    overrides = [f"placement.{c}={d}" for c, d in block["placement"].items()]
    overrides += [f"runner.{k}={str(v).lower()}" for k, v in block["runner"].items()]
    overrides += [f"scheduler.dynamic={str(block['scheduler']['dynamic']).lower()}"]
    cfg = load_embodied_config("cartpole", [*TINY, *overrides])
    assert cfg.runner.pipeline_stages == block["runner"]["pipeline_stages"]
    assert cfg.scheduler.dynamic == block["scheduler"]["dynamic"]
    profile = FlowProfile.from_json((tmp_path / "plan.profile.json").read_text())
    assert profile.names == ("env", "rollout", "actor") and profile.micro_batches == (1, 2, 4)
    assert re.search(r"dropped \d+ candidate", printed)
    assert "reference (all on device 0, 1 stage, no overlap" in printed
    # 2 CPU slots: the wide point is measured, so the actor's thread speed-up is known.
    assert profile["actor"].wide_seconds is not None
    assert "wide point at 2 threads on device 0" in printed


@pytest.mark.slow(seconds=95)
def test_auto_placement_plans_then_trains(ray_cluster, tmp_path, capsys):
    run_dir = tmp_path / "auto"
    args = ["train", "--config", "cartpole", "--run-dir", str(run_dir), "placement=auto"]
    assert main([*args, *TINY, "runner.total_env_steps=128", "runner.progress=false"]) == 0
    printed = capsys.readouterr().out
    assert "placement: auto chose" in printed
    record = json.loads((run_dir / "plan.json").read_text())
    written = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert written["placement"] == record["chosen"]["placement"]
    for key, value in record["chosen"]["runner"].items():
        assert written["runner"][key] == value
    assert written["scheduler"]["dynamic"] == record["chosen"]["scheduler"]["dynamic"]
    assert record["ranking"][0]["placement"] == record["chosen"]["placement"]
    FlowProfile.from_dict(record["profile"])
    assert [r["step"] for r in read_metrics(run_dir)] == [64, 128]
