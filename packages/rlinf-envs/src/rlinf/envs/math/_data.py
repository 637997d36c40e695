"""Load math rows from JSONL, Parquet or a Hugging Face dataset saved on disk.

Every row is validated; a malformed one raises :class:`MathDataError` naming the file and
the line (JSONL) or row index (Parquet, HF). Nothing is skipped silently: a dataset that
quietly loses rows changes the training distribution without anyone noticing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ._rows import MathDataError, MathRow

__all__ = ["MathDataConfig", "load_math_rows", "write_math_jsonl"]

_MISSING = object()
_JSONL_SUFFIXES = (".jsonl", ".ndjson")
_PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class MathDataConfig:
    """Where the rows are and how to read them.

    Attributes:
        paths: data files or dataset directories, read in order and concatenated.
        format: ``"jsonl"``, ``"parquet"``, ``"hf"`` (a directory written by
            ``datasets.Dataset.save_to_disk``) or ``"auto"``: by suffix (``.jsonl``/
            ``.ndjson``, ``.parquet``/``.pq``), directories are ``"hf"``.
        prompt_key: field holding the prompt (a non-empty string). A dotted path
            (``"extra.question"``) reaches into nested objects when no field has that name.
        answer_key: field holding the ground truth: a string, or an integer / finite float,
            which is converted to a string. Dotted paths work as for ``prompt_key``.
        id_key: field holding a row id (string or integer); rows without it get
            ``"<file name>:<line>"`` (JSONL) or ``"<file name>:<row>"``. ``None`` always
            uses the generated id.
        hf_split: split to read when a ``"hf"`` path holds a ``DatasetDict``; ignored for a
            single ``Dataset``.
        shuffle: iterate in a seeded random order, reshuffled every epoch.
        seed: seed of the shuffle; the order of epoch ``e`` depends only on ``seed`` and ``e``.
    """

    paths: tuple[str, ...]
    format: Literal["auto", "jsonl", "parquet", "hf"] = "auto"
    prompt_key: str = "prompt"
    answer_key: str = "answer"
    id_key: str | None = "id"
    hf_split: str = "train"
    shuffle: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.paths, (str, Path)):
            raise TypeError("paths must be a tuple of paths, not a single string")
        object.__setattr__(self, "paths", tuple(str(p) for p in self.paths))
        if not self.paths:
            raise ValueError("paths must name at least one file or directory")
        if self.format not in ("auto", "jsonl", "parquet", "hf"):
            raise ValueError(
                f"format must be 'auto', 'jsonl', 'parquet' or 'hf', got {self.format!r}"
            )
        for name in ("prompt_key", "answer_key"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string")
        if self.id_key is not None and not self.id_key:
            raise ValueError("id_key must be a non-empty string or None")


def _lookup(record: Mapping[str, Any], key: str) -> Any:
    """``record[key]``, else follow ``key`` as a dotted path; ``_MISSING`` if absent."""
    if key in record:
        return record[key]
    value: Any = record
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _to_row(
    record: Any, config: MathDataConfig, path: str, location: str, default_id: str
) -> MathRow:
    """Validate one raw record and build the row; raises MathDataError on any problem."""

    def fail(reason: str) -> MathDataError:
        return MathDataError(path, location, reason)

    if not isinstance(record, Mapping):
        raise fail(f"expected an object with fields, got {type(record).__name__}")
    prompt = _lookup(record, config.prompt_key)
    if prompt is _MISSING:
        raise fail(f"missing prompt field {config.prompt_key!r}")
    if not isinstance(prompt, str):
        raise fail(
            f"prompt field {config.prompt_key!r} must be a string, got {type(prompt).__name__}"
        )
    if not prompt.strip():
        raise fail(f"prompt field {config.prompt_key!r} is empty")
    answer = _lookup(record, config.answer_key)
    if answer is _MISSING:
        raise fail(f"missing answer field {config.answer_key!r}")
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
        raise fail(
            f"answer field {config.answer_key!r} must be a string or a number, "
            f"got {type(answer).__name__}"
        )
    if isinstance(answer, float) and not math.isfinite(answer):
        raise fail(f"answer field {config.answer_key!r} is {answer}")
    answer_text = str(answer).strip()
    if not answer_text:
        raise fail(f"answer field {config.answer_key!r} is empty")
    row_id: Any = _MISSING if config.id_key is None else _lookup(record, config.id_key)
    if row_id is _MISSING or row_id is None:
        row_id = default_id
    elif isinstance(row_id, bool) or not isinstance(row_id, (str, int)):
        raise fail(f"id field {config.id_key!r} must be a string or an integer")
    used = {config.prompt_key, config.answer_key, config.id_key}
    metadata = {k: v for k, v in record.items() if k not in used}
    return MathRow(id=str(row_id), prompt=prompt, answer=answer_text, metadata=metadata)


def _read_jsonl(path: Path, config: MathDataConfig) -> Iterator[MathRow]:
    # Binary lines decoded one by one, so a bad byte is reported on its own line (a text
    # stream decodes whole buffers ahead and would blame the wrong line).
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            location = f"line {lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MathDataError(str(path), location, f"not UTF-8: {exc.reason}") from None
            if not line.strip():
                continue  # blank lines (e.g. a trailing one) hold no row
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise MathDataError(str(path), location, f"invalid JSON: {exc.msg}") from None
            yield _to_row(record, config, str(path), location, f"{path.name}:{lineno}")


def _read_parquet(path: Path, config: MathDataConfig) -> Iterator[MathRow]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise MathDataError(str(path), None, f"cannot read Parquet file: {exc}") from None
    index = 0
    # Batches keep memory bounded for large files; rows are numbered across batches.
    for batch in parquet.iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            yield _to_row(record, config, str(path), f"row {index}", f"{path.name}:{index}")
            index += 1


def _read_hf(path: Path, config: MathDataConfig) -> Iterator[MathRow]:
    try:
        import datasets
    except ImportError as exc:
        raise ImportError(
            f"reading the Hugging Face dataset at {path} needs the 'datasets' package: "
            "install rlinf-envs[hf]"
        ) from exc
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise MathDataError(str(path), None, f"cannot load Hugging Face dataset: {exc}") from None
    if isinstance(loaded, datasets.DatasetDict):
        if config.hf_split not in loaded:
            raise MathDataError(
                str(path), None, f"no split {config.hf_split!r}; it has {sorted(loaded)}"
            )
        loaded = loaded[config.hf_split]
    for index, record in enumerate(loaded):
        yield _to_row(record, config, str(path), f"row {index}", f"{path.name}:{index}")


def _format_of(path: Path, config: MathDataConfig) -> str:
    if config.format != "auto":
        return config.format
    if path.is_dir():
        return "hf"
    suffix = path.suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        return "jsonl"
    if suffix in _PARQUET_SUFFIXES:
        return "parquet"
    raise MathDataError(
        str(path), None, "cannot tell the format from the name; set format to jsonl/parquet/hf"
    )


def load_math_rows(config: MathDataConfig) -> list[MathRow]:
    """Read and validate every row of every path in ``config.paths``, in file order.

    Raises:
        MathDataError: a path is missing or unreadable, or a row is malformed; the message
            names the file and the line / row.
    """
    readers = {"jsonl": _read_jsonl, "parquet": _read_parquet, "hf": _read_hf}
    rows: list[MathRow] = []
    for name in config.paths:
        path = Path(name)
        if not path.exists():
            raise MathDataError(name, None, "no such file or directory")
        fmt = _format_of(path, config)
        rows.extend(readers[fmt](path, config))
    return rows


def write_math_jsonl(rows: Iterable[MathRow], path: str | Path) -> Path:
    """Write rows as JSONL that :func:`load_math_rows` reads back with the default keys.

    Each line is ``{"id", "prompt", "answer", **metadata}``; metadata must be
    JSON-serializable and must not reuse those three names.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            clash = {"id", "prompt", "answer"} & set(row.metadata)
            if clash:
                raise ValueError(f"row {row.id!r}: metadata reuses reserved keys {sorted(clash)}")
            record = {"id": row.id, "prompt": row.prompt, "answer": row.answer, **row.metadata}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(path)  # readers never see a half-written file
    return path
