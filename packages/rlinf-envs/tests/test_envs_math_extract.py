"""Answer extraction: boxed answers with balanced braces, then the last number."""

from __future__ import annotations

import pytest

from rlinf.envs.math import extract_answer, extract_boxed, extract_last_number

CASES = [
    # (response, expected text, expected method)
    (r"so the answer is \boxed{42}.", "42", "boxed"),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}", "boxed"),
    (r"\boxed{ {a}^{2} + \sqrt{b} }", r"{a}^{2} + \sqrt{b}", "boxed"),
    (r"first \boxed{1}, then \boxed{2}", "2", "boxed"),
    (r"\boxed 5", "5", "boxed"),
    (r"$\boxed 17$ done", "17", "boxed"),
    (r"\fbox{7}", "7", "boxed"),
    (r"\boxed{\{1, 2\}}", r"\{1, 2\}", "boxed"),
    (r"\boxed{3} and then a cut-off \boxed{12", "3", "boxed"),
    (r"\boxed{} but 9 apples", "9", "number"),
    (r"\boxedfoo{3} gives 4", "4", "number"),
    (r"truncated \boxed{12", "12", "number"),
    ("There are 1,234,567 grains", "1234567", "number"),
    ("a list 1,2,3", "3", "number"),
    ("x = -3.5.", "-3.5", "number"),
    ("the result is \u22127", "-7", "number"),
    ("7-3 = 4", "4", "number"),
    ("5-3", "3", "number"),
    ("about 3/4 of them", "3/4", "number"),
    ("0.25 then 12", "12", "number"),
    ("version 1,2345", "2345", "number"),
    ("no digits at all", None, "none"),
    ("", None, "none"),
]


@pytest.mark.parametrize(("text", "expected", "method"), CASES)
def test_extract_answer_table(text: str, expected: str | None, method: str) -> None:
    ex = extract_answer(text)
    assert (ex.text, ex.method) == (expected, method)
    assert ex.found == (expected is not None)


def test_no_number_fallback_when_disabled() -> None:
    ex = extract_answer("the answer is 12", fallback_to_number=False)
    assert (ex.text, ex.method, ex.found) == (None, "none", False)
    assert extract_answer(r"\boxed{12}", fallback_to_number=False).text == "12"


def test_helpers_directly() -> None:
    assert extract_boxed("no box 5") is None
    assert extract_boxed(r"\boxed{a{b{c}}d}") == "a{b{c}}d"
    assert extract_last_number("none") is None
    assert extract_last_number("-12 and -1,000") == "-1000"


def test_long_unbalanced_input_is_fast() -> None:
    # Extraction runs in the driver, so it must stay linear even on adversarial text.
    assert extract_answer(r"\boxed{" * 20_000 + "1").text == "1"
    assert extract_answer(r"\boxed  " * 20_000 + "7").text == "7"
    assert extract_answer("1," * 200_000).text == "1"
