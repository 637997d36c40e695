"""Apps on a joined Ray cluster, without Ray: ``--address``, node groups in the cluster
section, placement checks against a two-node topology, and a clear error for an address
where no cluster answers."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys

import pytest

from rlinf.core import ConfigError, add_train_command, load_config, train_or_resume
from rlinf.core._appconfig import ClusterSection, validate_placement
from rlinf.core._cluster_probe import check_reachable, joined_topology
from rlinf.sched import Topology

TWO_NODES = Topology.uniform(2, 2, node_groups={"workers": [1]})


def test_placement_on_the_second_node_and_by_node_group():
    p = validate_placement(
        {"actor": "0-1", "rollout": "2-3", "env": "workers@1"},
        TWO_NODES,
        ["actor", "rollout", "env"],
    )
    assert [(r.node_index, r.local_devices) for r in p["actor"].ranks] == [(0, (0,)), (0, (1,))]
    assert [(r.node_index, r.local_devices) for r in p["rollout"].ranks] == [(1, (0,)), (1, (1,))]
    assert [(r.node_index, r.devices) for r in p["env"].ranks] == [(1, (3,))]


def test_placement_the_cluster_lacks_names_component_spec_and_cluster():
    with pytest.raises(ConfigError) as e:
        validate_placement({"actor": "0", "rollout": "4"}, TWO_NODES, ["actor", "rollout"])
    assert str(e.value) == (
        "placement: placement of 'rollout' ('4'): device 4 is out of range: the cluster has "
        "4 device(s); cluster: 2 node(s) with 4 CPU slot(s): node 0 2 (devices 0-1), "
        "node 1 2 (devices 2-3); node groups: workers = node(s) [1]"
    )
    with pytest.raises(
        ConfigError,
        match=r"placement of 'rollout' \('gpus@0'\): unknown node "
        r"group 'gpus'; node groups: workers; cluster: 2 node\(s\)",
    ):
        validate_placement({"actor": "0", "rollout": "gpus@0"}, TWO_NODES, ["actor", "rollout"])
    # An int still stands for one node of that many slots (a local cluster).
    with pytest.raises(ConfigError, match=r"device 2 is out of range.*cluster: 1 node\(s\) with 2"):
        validate_placement({"actor": "2"}, 2, ["actor"])


def test_cluster_section_node_groups():
    section = load_config(ClusterSection, {"devices": 3, "node_groups": {"all": [0]}})
    assert section.node_groups == {"all": (0,)}
    topo = section.topology()
    assert (topo.num_nodes, topo.num_devices, dict(topo.node_groups)) == (1, 3, {"all": (0,)})
    assert section.cluster_config().node_groups == {"all": (0,)}
    with pytest.raises(ConfigError, match=r"cluster.node_groups: node group 'far' names node 1"):
        ClusterSection(node_groups={"far": (1,)}).topology()
    # By resource: only a joined cluster has resources to select nodes by.
    with pytest.raises(ConfigError, match=r"node_groups.gpu: a group by Ray resource \('a100'\)"):
        load_config(ClusterSection, {"node_groups": {"gpu": "a100"}})
    joined = load_config(ClusterSection, {"address": "auto", "node_groups": {"gpu": "a100"}})
    assert joined.cluster_config().node_groups == {"gpu": "a100"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_or_malformed_address_fails_fast_without_ray():
    port = _closed_port()
    with pytest.raises(
        ConfigError, match=rf"cluster.address: no Ray cluster answers at 127.0.0.1:{port}"
    ):
        check_reachable(f"127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="'head' is not 'auto' or 'host:port'"):
        check_reachable("head")
    with pytest.raises(ConfigError, match="is a client URL"):
        check_reachable("ray://head:10001")
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        check_reachable(f"127.0.0.1:{listening.getsockname()[1]}")  # something answers
    section = ClusterSection(address=f"127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="no Ray cluster answers"):
        joined_topology(section.cluster_config())
    with pytest.raises(ConfigError, match="no Ray cluster answers"):
        section.topology()


def test_address_option_becomes_the_last_override():
    p = argparse.ArgumentParser(prog="demo")
    add_train_command(p.add_subparsers(dest="command", required=True), help="h", config_help="c")
    calls = []

    def train(config, overrides, run_dir):
        calls.append(("train", config, list(overrides)))

    def resume(run_dir, overrides):
        calls.append(("resume", run_dir, list(overrides)))

    args = p.parse_args(["train", "--config", "c", "--address", "10.0.0.1:6379", "a=1"])
    train_or_resume(args, train, resume)
    train_or_resume(p.parse_args(["train", "--resume", "r", "--address", "auto"]), train, resume)
    train_or_resume(p.parse_args(["train", "--config", "c"]), train, resume)
    assert calls == [
        ("train", "c", ["a=1", 'cluster.address="10.0.0.1:6379"']),
        ("resume", "r", ['cluster.address="auto"']),
        ("train", "c", []),
    ]
    # The quoted value loads as the string it was, even where YAML reads base-60 numbers.
    loaded = load_config(ClusterSection, {}, ['address="1:30"'])
    assert loaded.address == "1:30"


def test_loading_a_local_config_imports_no_ray():
    code = (
        "import sys\n"
        "from rlinf.core._appconfig import ClusterSection, validate_placement\n"
        "validate_placement({'a': 'g@0'}, ClusterSection(node_groups={'g': [0]}).topology(), ['a'])\n"
        "assert 'ray' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
