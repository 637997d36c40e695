"""The unit of a math task: one prompt with its ground-truth answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MathDataError", "MathRow"]


@dataclass(frozen=True)
class MathRow:
    """One math problem.

    Attributes:
        id: stable identifier of the row (from the data's id field, or ``"<file>:<line>"`` /
            ``"<dir>:<row>"`` when the data has none), used to trace a reward back to its row.
        prompt: the problem text shown to the policy (non-empty).
        answer: the ground-truth answer as text (e.g. ``"42"``, ``"\\frac{1}{2}"``).
        metadata: every other field of the source row, unchanged (difficulty, source, ...).
    """

    id: str
    prompt: str
    answer: str
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)


class MathDataError(ValueError):
    """A malformed row or unreadable data file.

    The message always names the file and the location: ``"<path>:<line>: <reason>"`` for
    JSONL (1-based line numbers, as editors show them) and ``"<path>: row <i>: <reason>"``
    for Parquet files and Hugging Face datasets (0-based row index, as ``dataset[i]``).

    Attributes:
        path: the file or dataset directory.
        location: ``"line N"`` or ``"row N"``; ``None`` for errors about the whole file.
        reason: what is wrong, without the location.
    """

    def __init__(self, path: str, location: str | None, reason: str) -> None:
        self.path = path
        self.location = location
        self.reason = reason
        if location is None:
            message = f"{path}: {reason}"
        elif location.startswith("line "):
            message = f"{path}:{location.removeprefix('line ')}: {reason}"
        else:
            message = f"{path}: {location}: {reason}"
        super().__init__(message)
