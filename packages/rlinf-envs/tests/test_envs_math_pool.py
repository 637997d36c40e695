"""The checker pool under hostile checks: hangs, crashes and exceptions never stall it."""

from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from rlinf.envs.math import MathChecker, MathCheckerConfig, PoolError, TimeoutPool


def scripted_check(prediction: str, gold: str) -> str:
    """A check whose behaviour the prediction picks: hang, crash, raise, or compare."""
    if prediction == "hang":
        time.sleep(3600)  # stands in for sympy stuck in C code
    if prediction == "crash":
        os._exit(3)  # stands in for a segfault in a native extension
    if prediction == "raise":
        raise RuntimeError("checker bug")
    return "correct" if prediction == gold else "wrong"


class BrokenWarmup:
    """A check whose worker cannot start (e.g. a missing dependency)."""

    def warmup(self) -> None:
        raise ImportError("no such module")

    def __call__(self, prediction: str, gold: str) -> str:
        return "wrong"


@pytest.fixture(scope="module")
def this_module() -> Iterator[ModuleType]:
    # Workers unpickle the injected checks by module name. pytest's importlib mode gives this
    # file a name no other process can import, so import it again under its plain name with
    # its folder on sys.path; spawned workers inherit sys.path from the parent at start.
    folder = str(Path(__file__).parent)
    name = Path(__file__).stem
    sys.path.insert(0, folder)
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(folder)
        sys.modules.pop(name, None)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_hang_crash_and_raise_score_zero_and_the_pool_recovers(this_module: ModuleType) -> None:
    config = MathCheckerConfig(num_workers=2, timeout_s=1.5, inner_timeout_s=1)
    with MathChecker(config, check_fn=this_module.scripted_check) as checker:
        # Warm up so the timing below measures the timeout, not worker start-up.
        assert [r.status for r in checker.score([r"\boxed{1}"], ["1"])] == ["correct"]
        first_pids = set(checker._pool.pids())

        responses = [r"\boxed{1}", r"\boxed{hang}", r"\boxed{2}", r"\boxed{crash}"]
        responses += [r"\boxed{raise}", "no answer", r"\boxed{5}"]
        start = time.monotonic()
        results = checker.score(responses, ["1", "1", "3", "1", "1", "1", "5"])
        elapsed = time.monotonic() - start
        assert [r.status for r in results] == [
            "correct", "timeout", "wrong", "error", "error", "no_answer", "correct",
        ]  # fmt: skip
        assert [r.score for r in results] == [1.0, 0, 0, 0, 0, 0, 1.0]
        assert "1.5 s" in (results[1].detail or "")
        assert "exit code 3" in (results[3].detail or "")
        assert "RuntimeError: checker bug" in (results[4].detail or "")
        # The hang cost one timeout, not the hour it asked for; replacement workers start
        # in the background while the other worker keeps checking.
        assert elapsed < config.timeout_s + 15
        assert checker.worker_restarts == 2
        counts = checker.counts
        assert (counts["timeout"], counts["error"], counts["no_answer"]) == (1, 2, 1)
        assert counts["total"] == 8

        # The killed workers are gone (reaped, not zombies), the pool is full and works.
        killed = first_pids - set(checker._pool.pids())
        assert len(killed) == 2 and not any(_alive(pid) for pid in killed)
        assert checker._pool.num_alive == 2
        again = checker.score([r"\boxed{7}", r"\boxed{8}", r"\boxed{9}"], ["7", "0", "9"])
        assert [r.status for r in again] == ["correct", "wrong", "correct"]
        pids = checker._pool.pids()
    # Closing stops every worker.
    assert pids and not any(_alive(pid) for pid in pids)


def test_timeouts_on_every_worker_at_once(this_module: ModuleType) -> None:
    with TimeoutPool(this_module.scripted_check, num_workers=2, timeout_s=1.0) as pool:
        outcomes = pool.run([("hang", "x"), ("hang", "x"), ("a", "a")])
        assert [o.status for o in outcomes] == ["timeout", "timeout", "ok"]
        assert outcomes[2].value == "correct"
        assert pool.restarts == 2


def test_worker_that_cannot_start_raises_pool_error(this_module: ModuleType) -> None:
    pool = TimeoutPool(this_module.BrokenWarmup(), num_workers=1, timeout_s=5.0)
    with pytest.raises(PoolError, match="before it was ready"):
        pool.run([("1", "1")])
    assert pool.num_alive == 0
    pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.run([("1", "1")])


def test_pool_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="num_workers"):
        TimeoutPool(scripted_check, num_workers=0, timeout_s=1.0)
    with pytest.raises(ValueError, match="timeout_s"):
        TimeoutPool(scripted_check, num_workers=1, timeout_s=0)
    with pytest.raises(ValueError, match="start_method"):
        TimeoutPool(scripted_check, num_workers=1, timeout_s=1.0, start_method="fork")


def test_forgotten_pool_stops_its_workers_when_collected(this_module: ModuleType) -> None:
    import gc

    pool = TimeoutPool(this_module.scripted_check, num_workers=1, timeout_s=5.0)
    assert pool.run([("a", "a")])[0].value == "correct"
    pids = pool.pids()
    del pool
    gc.collect()
    assert pids and not any(_alive(pid) for pid in pids)
