"""Loading math rows from JSONL, Parquet and Hugging Face datasets on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlinf.envs.math import MathDataConfig, MathDataError, MathRow, load_math_rows

GOOD = [
    {"id": "q1", "prompt": "What is 1 + 1?", "answer": "2", "level": 1},
    {"prompt": "Half of one?", "answer": "\\frac{1}{2}"},
    {"id": 7, "prompt": "Six times seven?", "answer": 42},
]


def _write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _load(path: Path, **kwargs: Any) -> list[MathRow]:
    return load_math_rows(MathDataConfig(paths=(str(path),), **kwargs))


def test_jsonl_good_rows(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in GOOD]
    lines.insert(1, "   ")  # blank lines are not rows and not errors
    rows = _load(_write_jsonl(tmp_path / "d.jsonl", lines))
    assert [r.id for r in rows] == ["q1", "d.jsonl:3", "7"]
    assert [r.answer for r in rows] == ["2", "\\frac{1}{2}", "42"]
    assert rows[0].prompt == "What is 1 + 1?"
    assert rows[0].metadata == {"level": 1}
    assert rows[1].metadata == {}


def test_jsonl_custom_and_nested_keys(tmp_path: Path) -> None:
    record = {"question": "2+2?", "reward_model": {"ground_truth": "4"}, "uid": "a"}
    path = _write_jsonl(tmp_path / "d.jsonl", [json.dumps(record)])
    (row,) = _load(
        path, prompt_key="question", answer_key="reward_model.ground_truth", id_key="uid"
    )
    assert (row.id, row.prompt, row.answer) == ("a", "2+2?", "4")
    (row,) = _load(path, prompt_key="question", answer_key="reward_model.ground_truth", id_key=None)
    assert row.id == "d.jsonl:1"


BAD_JSONL = [
    ("{not json", "invalid JSON"),
    (json.dumps({"answer": "1"}), "missing prompt field 'prompt'"),
    (json.dumps({"prompt": "p"}), "missing answer field 'answer'"),
    (json.dumps({"prompt": 3, "answer": "1"}), "must be a string, got int"),
    (json.dumps({"prompt": "  ", "answer": "1"}), "is empty"),
    (json.dumps({"prompt": "p", "answer": ["1"]}), "must be a string or a number, got list"),
    (json.dumps({"prompt": "p", "answer": True}), "got bool"),
    (json.dumps({"prompt": "p", "answer": None}), "got NoneType"),
    (json.dumps({"prompt": "p", "answer": ""}), "is empty"),
    (json.dumps({"prompt": "p", "answer": "1", "id": [1]}), "id field 'id'"),
    (json.dumps(["p", "1"]), "expected an object"),
]


@pytest.mark.parametrize(("bad_line", "reason"), BAD_JSONL)
def test_jsonl_malformed_row_names_file_and_line(
    tmp_path: Path, bad_line: str, reason: str
) -> None:
    path = _write_jsonl(tmp_path / "bad.jsonl", [json.dumps(GOOD[0]), "", bad_line])
    with pytest.raises(MathDataError) as info:
        _load(path)
    assert str(info.value).startswith(f"{path}:3: ")
    assert reason in str(info.value)
    assert (info.value.path, info.value.location) == (str(path), "line 3")


def test_jsonl_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"prompt": "a", "answer": "1"}\n{"prompt": "caf\xe9", "answer": "1"}\n')
    with pytest.raises(MathDataError, match=r"latin\.jsonl:2: not UTF-8"):
        _load(path)


def test_parquet_good_and_malformed(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    pq.write_table(
        pa.table({"problem": ["1+1?", "2+3?"], "solution": ["2", "5"], "src": ["a", "b"]}), good
    )
    rows = _load(good, prompt_key="problem", answer_key="solution")
    assert [(r.id, r.prompt, r.answer, r.metadata) for r in rows] == [
        ("good.parquet:0", "1+1?", "2", {"src": "a"}),
        ("good.parquet:1", "2+3?", "5", {"src": "b"}),
    ]
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"prompt": ["1+1?", None], "answer": ["2", "5"]}), bad)
    with pytest.raises(MathDataError, match=r"bad\.parquet: row 1: prompt field 'prompt' must be"):
        _load(bad)
    with pytest.raises(MathDataError, match=r"good\.parquet: row 0: missing prompt field"):
        _load(good)


def test_parquet_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.parquet"
    path.write_bytes(b"this is not parquet")
    with pytest.raises(MathDataError, match=r"junk\.parquet: cannot read Parquet file"):
        _load(path)


def test_hf_dataset_on_disk(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [{"prompt": f"{i} + 1?", "answer": str(i + 1), "id": f"r{i}"} for i in range(3)]
    single = tmp_path / "single"
    datasets.Dataset.from_list(rows).save_to_disk(str(single))
    assert [r.id for r in _load(single)] == ["r0", "r1", "r2"]

    splits = tmp_path / "splits"
    bad_rows = [*rows, {"prompt": "", "answer": "9", "id": "r3"}]
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(bad_rows)}
    ).save_to_disk(str(splits))
    assert [r.answer for r in _load(splits)] == ["1", "2", "3"]
    with pytest.raises(MathDataError, match=r"splits: row 3: prompt field 'prompt' is empty"):
        _load(splits, hf_split="test")
    with pytest.raises(MathDataError, match=r"no split 'valid'; it has \['test', 'train'\]"):
        _load(splits, hf_split="valid")


def test_multiple_paths_concatenate_in_order(tmp_path: Path) -> None:
    a = _write_jsonl(tmp_path / "a.jsonl", [json.dumps(GOOD[0])])
    b = tmp_path / "b.parquet"
    pq.write_table(pa.table({"prompt": ["x?"], "answer": ["1"]}), b)
    rows = load_math_rows(MathDataConfig(paths=(str(a), str(b))))
    assert [r.id for r in rows] == ["q1", "b.parquet:0"]


def test_path_and_format_errors(tmp_path: Path) -> None:
    with pytest.raises(MathDataError, match="no such file"):
        _load(tmp_path / "missing.jsonl")
    csv = tmp_path / "d.csv"
    csv.write_text("prompt,answer\n")
    with pytest.raises(MathDataError, match="cannot tell the format"):
        _load(csv)
    # An explicit format overrides the suffix.
    txt = _write_jsonl(tmp_path / "d.txt", [json.dumps(GOOD[0])])
    assert len(_load(txt, format="jsonl")) == 1


def test_config_validation() -> None:
    with pytest.raises(TypeError, match="tuple of paths"):
        MathDataConfig(paths="data.jsonl")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one"):
        MathDataConfig(paths=())
    with pytest.raises(ValueError, match="format"):
        MathDataConfig(paths=("a",), format="csv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prompt_key"):
        MathDataConfig(paths=("a",), prompt_key="")
    assert MathDataConfig(paths=[Path("a")]).paths == ("a",)  # type: ignore[arg-type]
