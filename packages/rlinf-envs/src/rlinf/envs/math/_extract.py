"""Pull the final answer out of a model response: the last ``\\boxed{...}``, else the last number.

The rules (:func:`extract_answer`), chosen so that a response earns credit only for an
answer it actually gave:

1. A box is ``\\boxed`` or ``\\fbox`` followed by a balanced, non-empty ``{...}`` (or a bare
   token: ``\\boxed 5``). The answer is the content of the **last well-formed box**; several
   boxes: the last one counts, whatever the earlier ones say; a broken box after it (a
   restatement cut off by the length limit) does not cancel it.
2. A response that **tried to box** (has a box command) but has no well-formed box (unclosed
   ``\\boxed{12``, empty ``\\boxed{}``, ``\\boxed`` with nothing after it) has **no answer**:
   it never falls back to a number, so a cut-off or broken box cannot earn credit from a
   stray number in the text (a reward hack: an unclosed box used to score through rule 3).
3. Only a response **without any box command** falls back (when allowed) to its **last
   number** (rules in :func:`extract_last_number`). Only that one number is checked, so an
   answer hidden among other numbers earns credit only if it is the very last one. The
   fallback cannot tell an answer from a later check ("42, and 42 * 2 = 84" gives 84); turn
   it off (``fallback_to_number=False``) to require boxes.

Everything here is linear-time string scanning, so it runs in the driver; only the
(potentially slow) symbolic comparison goes to the checker's subprocess pool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Extraction", "extract_answer", "extract_boxed", "extract_last_number"]

# ``\boxed`` and ``\fbox`` both draw a box; models trained on different corpora use either.
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_BARE_ARGUMENT = re.compile(r"[^\s$]+")

# A number: optional sign (only where it cannot be a binary minus, i.e. not right after a
# digit, letter, closing bracket or dot), then either thousands-grouped digits (exactly three
# per group and no digit after, so "1,2,3" is a list and "1,2345" is not 12345) or plain
# digits, then an optional decimal part or
# an optional "/denominator".
_NUMBER = re.compile(
    r"(?:(?<![\w.)\]}])[-\u2212])?"
    r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)"
    r"(?:\.\d+|/\d+)?"
)


@dataclass(frozen=True)
class Extraction:
    """The answer found in a response.

    Attributes:
        text: the answer text (box content, or the number with thousands separators
            removed); ``None`` when nothing was found.
        method: where it came from: ``"boxed"``, ``"number"`` (fallback) or ``"none"``.
    """

    text: str | None
    method: Literal["boxed", "number", "none"]

    @property
    def found(self) -> bool:
        """Whether an answer was found."""
        return self.text is not None


def _matching_braces(text: str) -> dict[int, int]:
    """Index of each ``{`` -> index of its closing ``}``, in one pass.

    Escaped ``\\{``/``\\}`` do not count (set notation ``\\{1, 2\\}`` stays inside its box);
    unclosed braces are absent. One pass for the whole text keeps extraction linear even
    for adversarial responses with thousands of unclosed boxes.
    """
    matches: dict[int, int] = {}
    stack: list[int] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2  # an escaped character never opens or closes a group
            continue
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            matches[stack.pop()] = i
        i += 1
    return matches


def _box_argument(text: str, start: int, braces: dict[int, int]) -> str | None:
    """The argument of a box command whose name ends at ``start``, or None if malformed.

    ``{...}`` is read with balanced braces; a bare argument (``\\boxed 5``) runs to the next
    whitespace or ``$``, which is what people mean by it even though TeX would box one token.
    An empty box counts as no box.
    """
    i = start
    while i < len(text) and text[i] in " \t":
        i += 1
    if i >= len(text):
        return None
    if text[i] == "{":
        close = braces.get(i)
        if close is None:
            return None  # unbalanced: the response was cut off inside the box
        return text[i + 1 : close].strip() or None
    if i == start:
        return None  # "\\boxed5" is not a box command followed by an argument
    match = _BARE_ARGUMENT.match(text, i)
    return match.group(0) if match else None


def extract_boxed(text: str) -> str | None:
    """The content of the last well-formed ``\\boxed{...}`` / ``\\fbox{...}`` in ``text``.

    A truncated last box (unbalanced braces) or an empty one is skipped in favour of the
    previous box, since an unfinished box holds no answer.
    """
    commands = list(_BOX_COMMAND.finditer(text))
    if not commands:
        return None
    braces = _matching_braces(text)
    for match in reversed(commands):
        argument = _box_argument(text, match.end(), braces)
        if argument is not None:
            return argument
    return None


def extract_last_number(text: str) -> str | None:
    """The last number in ``text``, normalized: ``"1,234"`` -> ``"1234"``, ``"\u22125"`` -> ``"-5"``.

    Integers, decimals, negatives and simple fractions (``3/4``) are recognised.
    """
    last = None
    for last in _NUMBER.finditer(text):  # noqa: B007 - only the final match is wanted
        pass
    if last is None:
        return None
    return last.group(0).replace(",", "").replace("\u2212", "-")


def extract_answer(text: str, *, fallback_to_number: bool = True) -> Extraction:
    """Find the final answer (rules in the module docstring): the last well-formed box;
    else none if the response has a box command (a failed box); else, if allowed, the last
    number; else none."""
    boxed = extract_boxed(text)
    if boxed is not None:
        return Extraction(boxed, "boxed")
    if _BOX_COMMAND.search(text) is not None:
        return Extraction(None, "none")  # it tried to box and failed: no stray number
    if fallback_to_number:
        number = extract_last_number(text)
        if number is not None:
            return Extraction(number, "number")
    return Extraction(None, "none")
