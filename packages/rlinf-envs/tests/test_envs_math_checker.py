"""Answer checking with math-verify in the worker pool (real checks, no injection)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rlinf.envs.math import MathChecker, MathCheckerConfig

pytest.importorskip("math_verify")


@pytest.fixture(scope="module")
def checker() -> Iterator[MathChecker]:
    # One pool for the module: starting workers (importing sympy) is the slow part.
    with MathChecker(MathCheckerConfig(num_workers=2, timeout_s=20.0)) as c:
        yield c


# (response, ground truth, expected status)
CASES = [
    (r"\boxed{0.5}", "1/2", "correct"),
    (r"\boxed{1/2}", "0.5", "correct"),
    (r"so $\boxed{\frac{1}{2}}$", "0.5", "correct"),
    (r"\boxed{\dfrac{1}{2}}", r"\frac{1}{2}", "correct"),
    (r"\boxed{2.0}", "2", "correct"),
    (r"\boxed{2}", "2.0", "correct"),
    (r"\boxed{1,234}", "1234", "correct"),
    (r"\boxed{-7}", "-7", "correct"),
    (r"\boxed{x = 5}", "5", "correct"),
    (r"\boxed{\sqrt{4}}", "2", "correct"),
    (r"\boxed{\{1, 2\}}", r"\{2, 1\}", "correct"),
    ("I think it is 3/4 overall.", "0.75", "correct"),
    ("The total is 1,000 apples.", "1000", "correct"),
    (r"\boxed{3}", "4", "wrong"),
    (r"\boxed{1/3}", "0.5", "wrong"),
    (r"\boxed{-2}", "2", "wrong"),
    ("I give up.", "1", "no_answer"),
]


def test_equivalences(checker: MathChecker) -> None:
    results = checker.score([c[0] for c in CASES], [c[1] for c in CASES])
    got = [(c[0], c[1], r.status) for c, r in zip(CASES, results, strict=True)]
    assert got == CASES
    assert [r.score for r in results] == [1.0 if c[2] == "correct" else 0.0 for c in CASES]
    assert results[0].method == "boxed" and results[0].extracted == "0.5"
    assert results[11].method == "number" and results[11].extracted == "3/4"
    assert results[-1].method == "none" and results[-1].extracted is None


def test_failed_boxes_score_no_answer_not_a_stray_number(checker: MathChecker) -> None:
    # Each of these scored "correct" through the last-number fallback before.
    responses = [r"truncated \boxed{12", r"\boxed{} so 12", r"12 \boxed", r"\fbox{12"]
    results = checker.score(responses, ["12"] * len(responses))
    assert [(r.status, r.extracted, r.score) for r in results] == [("no_answer", None, 0.0)] * 4
    # while an unboxed response and a good box after a broken one still score
    good = checker.score([r"it is 12", r"\boxed{12 no, \boxed{12}"], ["12", "12"])
    assert [(r.status, r.method) for r in good] == [("correct", "number"), ("correct", "boxed")]


def test_unparsable_ground_truth_is_an_error_not_a_crash(checker: MathChecker) -> None:
    (result,) = checker.score([r"\boxed{1}"], ["   "])
    assert result.status == "error" and result.score == 0.0
    assert "ground truth" in (result.detail or "")


def test_counts_and_batch_validation(checker: MathChecker) -> None:
    before = checker.counts
    results = checker.score([r"\boxed{4}", r"\boxed{5}", "nothing"], ["4", "4", "4"])
    assert [r.status for r in results] == ["correct", "wrong", "no_answer"]
    after = checker.counts
    assert after["correct"] - before["correct"] == 1
    assert after["wrong"] - before["wrong"] == 1
    assert after["no_answer"] - before["no_answer"] == 1
    assert after["total"] - before["total"] == 3
    assert checker.score([], []) == []
    with pytest.raises(ValueError, match="must pair up"):
        checker.score(["a"], [])


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="num_workers"):
        MathCheckerConfig(num_workers=0)
    with pytest.raises(ValueError, match="inner_timeout_s"):
        MathCheckerConfig(timeout_s=2.0, inner_timeout_s=2)
    with pytest.raises(ValueError, match="start_method"):
        MathCheckerConfig(start_method="fork")
