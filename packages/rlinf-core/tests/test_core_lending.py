"""ThreadLoans: lent slots become intra-op threads on the compute thread, for one phase."""

from __future__ import annotations

import threading

import pytest
import torch

from rlinf.core import ThreadLoans


@pytest.fixture(autouse=True)
def _restore_threads() -> None:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_loan_raises_threads_until_the_phase_ends() -> None:
    loans = ThreadLoans(base_threads=1, threads_per_slot=2)
    loans.begin(0)
    assert torch.get_num_threads() == 1
    # the loan comes from another thread, as a Ray call beside the update does
    t = threading.Thread(target=lambda: loans.lend(0, 1))
    t.start()
    t.join()
    assert torch.get_num_threads() == 1  # not before the next work unit
    loans.apply()
    assert torch.get_num_threads() == 3
    assert loans.end() > 0.0
    assert torch.get_num_threads() == 1
    # a late loan for the ended phase is ignored, and the next phase starts at the base
    assert loans.lend(0, 1) is False
    loans.begin(1)
    loans.apply()
    assert torch.get_num_threads() == 1
    assert loans.end() == 0.0


def test_loan_before_begin_is_kept_and_recall_gives_back() -> None:
    loans = ThreadLoans(base_threads=1, threads_per_slot=1)
    assert loans.lend(4, 1) is True  # overtook the update's own call
    loans.begin(4)
    loans.apply()
    assert torch.get_num_threads() == 2
    loans.recall(4)
    loans.apply()
    assert torch.get_num_threads() == 1
    lent = loans.lent_s
    assert lent > 0.0
    assert loans.end() == lent  # nothing added after the recall


def test_bad_use() -> None:
    with pytest.raises(ValueError, match=r"base_threads \(0\) and threads_per_slot \(1\)"):
        ThreadLoans(0, 1)
    loans = ThreadLoans(1, 1)
    with pytest.raises(ValueError, match="a loan needs >= 1 slot, got 0"):
        loans.lend(0, 0)
    loans.begin(2)
    loans.end()
    with pytest.raises(ValueError, match="phase 1 begins after phase 2 ended"):
        loans.begin(1)
