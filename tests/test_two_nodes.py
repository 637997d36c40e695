"""The apps on a Ray cluster of two nodes started on this machine with ``ray start`` (own
ports and temporary directory, stopped by pid; see ``_ray_nodes``): each app joins it with
``--address`` and its components run on the nodes their placement names."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import pytest

from rlinf.core import read_metrics
from tests._ray_nodes import RayNodes, ray_nodes, run_driver

pytestmark = pytest.mark.slow

# Node 1 carries the resource "node1", so that the node group "workers" can select it by
# resource (ray start --resources) as a user's config would.
_GROUPS = ['cluster.node_groups={"workers": "node1"}', "cluster.devices=1"]

# The smallest math run that does real RL steps: a tiny Qwen2, one-digit sums, a short SFT
# warm-up (as in apps/math's CLI tests, fewer steps: here it only has to run).
_TINY_MATH = [
    "data.arithmetic.max_digits=1",
    "data.train_rows=40",
    "data.test_rows=4",
    "model.tiny.hidden_size=32",
    "model.tiny.intermediate_size=64",
    "sft.steps=10",
    "generation.max_new_tokens=8",
    "generation.n=2",
    "runner.prompts_per_step=2",
    "runner.eval_every=0",
    "runner.progress=false",
    "checker.num_workers=1",
]

# Asked from a fresh driver after a run: the GCS keeps every actor (dead ones too) with the
# node it ran on. Workers are WorkerHost actors named "<group>:<rank>" (rlinf.core.WorkerGroup),
# the flows' groups "<run name>-<component>-<tag>"; the last run is the job whose workers
# started last.
_WHERE = """
import json, ray
ray.init(address={address!r}, logging_level="ERROR")
head = {{n["NodeID"]: "node:__internal_head__" in n["Resources"] for n in ray.nodes()}}
workers = [a for a in ray._private.state.actors().values() if a["ActorClassName"] == "WorkerHost"]
last = max(workers, key=lambda a: a["StartTime"])["JobID"]
print("RESULT", json.dumps({{
    a["Name"]: 0 if head[a["Address"]["NodeID"]] else 1 for a in workers if a["JobID"] == last
}}))
"""


@pytest.fixture(scope="module")
def nodes() -> Iterator[RayNodes]:
    with ray_nodes((2, 2), ({}, {"node1": 1})) as started:
        yield started


@pytest.fixture
def cluster(nodes: RayNodes, monkeypatch: pytest.MonkeyPatch) -> RayNodes:
    # The app runs in this process as the cluster's driver.
    for key, value in nodes.env.items():
        monkeypatch.setenv(key, value)
    return nodes


def _where(cluster: RayNodes) -> dict[str, list[int]]:
    """Component of the last run -> the node each of its ranks ran on (0: head), in rank
    order."""
    located = run_driver(cluster, _WHERE.format(address=cluster.address))
    where: dict[str, list[int]] = {}
    for name, node in sorted(located.items()):
        group, rank = name.rsplit(":", 1)
        component = group.rsplit("-", 2)[-2]
        where.setdefault(component, []).insert(int(rank), node)
    return where


def _main(app: str):
    return importlib.import_module(f"rlinf.apps.{app}.cli").main


def test_math_actor_on_node0_rollout_on_node1(cluster, tmp_path, capsys):
    run_dir = tmp_path / "math"
    args = ["train", "--config", "grpo", "--run-dir", str(run_dir), "--address", cluster.address]
    placement = ["placement.actor=0", "placement.reward=0", "placement.rollout=workers@0"]
    code = _main("math")([*args, *_TINY_MATH, *_GROUPS, *placement, "runner.steps=3"])
    assert code == 0, capsys.readouterr().err
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [int(r["step"]) for r in rows if "train/grad_norm" in r] == [1, 2, 3], rows
    where = _where(cluster)
    assert where == {"actor": [0], "reward": [0], "rollout": [1]}, where


def test_embodied_env_workers_on_node1(cluster, tmp_path, capsys):
    run_dir = tmp_path / "embodied"
    args = ["train", "--config", "cartpole", "--run-dir", str(run_dir), "--address"]
    overrides = [
        "runner.horizon=64",
        "runner.total_env_steps=512",
        "runner.progress=false",
        "placement.env=workers@0",
        "placement.rollout=0",
        "placement.actor=0",
        # A rollout worker on node 0 serving env workers on node 1 (the preset runs the
        # policy in the env worker).
        "runner.policy_in_env=false",
    ]
    code = _main("embodied")([*args, cluster.address, *_GROUPS, *overrides])
    assert code == 0, capsys.readouterr().err
    assert "(hybrid, ray)" in capsys.readouterr().out
    where = _where(cluster)
    assert where == {"env": [1], "rollout": [0], "actor": [0]}, where


def test_placement_beyond_the_cluster_fails_before_any_worker(cluster, capsys):
    args = ["train", "--config", "cartpole", "--address", cluster.address, "cluster.devices=1"]
    assert _main("embodied")([*args, "placement.env=2"]) == 2
    err = capsys.readouterr().err
    assert "placement of 'env' (2): device 2 is out of range: the cluster has 2 device(s)" in err
    assert "cluster: 2 node(s) with 2 CPU slot(s): node 0 (" in err
    assert _main("embodied")([*args, "placement.env=gpus@0"]) == 2
    assert "unknown node group 'gpus'; node groups: (none defined)" in capsys.readouterr().err
