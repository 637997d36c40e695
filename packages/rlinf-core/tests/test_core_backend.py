"""Which backend a flow runs on: ``cluster.backend`` auto / ray / inprocess."""

from __future__ import annotations

import pytest

from rlinf.core import ClusterSection, ConfigError
from rlinf.core._backend import choose_backend, ray_running
from rlinf.sched import Placement, Topology

TOPO = Topology.uniform(1, 2)
ONE_SLOT = Placement.parse({"actor": "0", "env": "0"}, TOPO)
TWO_SLOTS = Placement.parse({"actor": "0", "env": "1"}, TOPO)


def test_auto_runs_one_slot_in_process_and_everything_else_on_ray() -> None:
    kw = {"address": None, "gpu_visible": False}
    assert choose_backend("auto", ONE_SLOT, **kw) == "inprocess"
    assert choose_backend("auto", TWO_SLOTS, **kw) == "ray"
    assert choose_backend("auto", ONE_SLOT, address="auto", gpu_visible=False) == "ray"
    assert choose_backend("auto", ONE_SLOT, address=None, gpu_visible=True) == "ray"
    assert choose_backend("auto", ONE_SLOT, **kw, unsupported="needs channels") == "ray"
    assert choose_backend("ray", ONE_SLOT, **kw) == "ray"


def test_inprocess_where_it_cannot_run_says_why() -> None:
    kw = {"address": None, "gpu_visible": False}
    with pytest.raises(ValueError, match=r"every component on one device.*\[0, 1\]"):
        choose_backend("inprocess", TWO_SLOTS, **kw)
    with pytest.raises(ValueError, match="needs channels"):
        choose_backend("inprocess", ONE_SLOT, **kw, unsupported="needs channels")
    with pytest.raises(ValueError, match="CPU slots only"):
        choose_backend("inprocess", ONE_SLOT, address=None, gpu_visible=True)


def test_cluster_section_names_the_key() -> None:
    section = ClusterSection(backend="inprocess")
    with pytest.raises(ConfigError, match=r"cluster\.backend=inprocess: .*'actor' has 2 rank"):
        section.choose_backend({"actor": "0-1", "env": "0"}, ("actor", "env"))
    import torch

    expected = "ray" if torch.cuda.is_available() or ray_running() else "inprocess"
    assert ClusterSection().choose_backend({"actor": "0", "env": "0"}, ("actor", "env")) == expected
    assert ClusterSection(backend="ray").choose_backend({"a": "0"}, ("a",)) == "ray"
    with pytest.raises(ValueError, match="cannot join an address"):
        ClusterSection(backend="inprocess", address="auto")
    with pytest.raises(ValueError, match="backend must be 'auto', 'ray' or 'inprocess'"):
        ClusterSection(backend="threads")  # type: ignore[arg-type]
