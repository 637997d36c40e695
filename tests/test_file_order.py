"""The root conftest's file order for xdist (``--dist loadfile``): whole files, longest
expected first by their ``slow(seconds=N)`` marks, then the files that use ``ray_cluster``,
the rest by test count, ties and the order inside a file kept."""

from __future__ import annotations

import importlib.util

import pytest

from tests._workspace import ROOT

_spec = importlib.util.spec_from_file_location("_root_conftest", ROOT / "conftest.py")
_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conftest)


class _Item:
    """What the ordering reads of a pytest item: its node id and its closest marks."""

    def __init__(self, nodeid: str, *marks: pytest.MarkDecorator, ray: bool = False) -> None:
        self.nodeid = nodeid
        self._marks = {m.mark.name: m.mark for m in marks}
        self.fixturenames = ("ray_cluster",) if ray else ()
        self._fixtureinfo = type("Info", (), {"name2fixturedefs": {}})()

    def get_closest_marker(self, name: str):
        return self._marks.get(name)

    def getparent(self, cls: type) -> _Module:
        return _Module(self.nodeid.split("::")[0])


class _Module:
    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid


def test_longest_files_first_then_ray_files_then_by_count_and_stable():
    items = [
        _Item("a.py::t1"),
        _Item("b.py::t1", pytest.mark.slow(seconds=30)),
        _Item("c.py::t1"),
        _Item("c.py::t2"),
        _Item("d.py::t[x]", pytest.mark.slow(seconds=20)),
        _Item("d.py::t[y]", pytest.mark.slow(seconds=20)),  # 40 in all: before b's 30
        _Item("e.py::t1", pytest.mark.slow),  # no estimate: counts as 0
        _Item("b.py::t2"),  # a file's own order stays
        _Item("r.py::t1", ray=True),  # uses Ray: after the estimated files, before the rest
    ]
    _conftest._order_files(items)
    assert [i.nodeid for i in items] == [
        "d.py::t[x]",
        "d.py::t[y]",
        "b.py::t1",
        "b.py::t2",
        "r.py::t1",
        "c.py::t1",  # two tests, no estimate: before the one-test files
        "c.py::t2",
        "a.py::t1",  # a, e: one test each, collection order
        "e.py::t1",
    ]
